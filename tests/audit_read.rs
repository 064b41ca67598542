// tier: unit, no cluster — reading audit logs (plain, gzip, rotated sets, malformed lines, huge
// lines, v1beta1) and the library API: events(), summarize(), timeline(), query::ask().

// Inside `mod audit` so that `cargo test audit` selects these tests by name.
mod audit {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use klab::audit::filter::{CodeMatch, Filter};
    use klab::audit::query::{Question, ask};
    use klab::audit::read::{ReadOptions, Source, events, sources};
    use klab::audit::summary::{Key, Summary, SummaryOptions, summarize};
    use klab::audit::timeline::{TimelineOptions, timeline};
    use klab::audit::{AuditError, Event};
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    const SMALL: &str = "tests/fixtures/audit/small.log";

    fn summary_of(paths: &[PathBuf], by: &str, filter: Filter, read: ReadOptions) -> Summary {
        let srcs = sources(paths).expect("sources");
        summarize(&srcs, &SummaryOptions { by: Key::parse_list(by).expect("keys"), filter, top: 0, read })
            .expect("summary")
    }

    fn counts(s: &Summary) -> BTreeMap<String, u64> {
        s.rows.iter().map(|r| (r.key.join("|"), r.count)).collect()
    }

    fn with_codes(codes: &[&str]) -> Filter {
        Filter { codes: codes.iter().map(|c| c.parse::<CodeMatch>().expect("code")).collect(), ..Filter::default() }
    }

    #[test]
    fn top_users_count_each_request_once() {
        let s = summary_of(&[SMALL.into()], "user", Filter::default(), ReadOptions::default());
        let c = counts(&s);
        assert_eq!(s.read.events, 20);
        assert_eq!(s.matched, 19, "the RequestReceived copy of alice's get is left out");
        assert_eq!(c["bob@example.com"], 4);
        assert_eq!(c["alice@example.com"], 3);
        assert_eq!(c["system:node:kind-worker"], 3);
        assert_eq!(c[""], 3, "the 401s have no user");
        assert_eq!(s.rows[0].key, ["bob@example.com"]);
    }

    #[test]
    fn the_questions_of_the_talk_have_the_hand_counted_answers() {
        let p = [PathBuf::from(SMALL)];
        let codes = counts(&summary_of(&p, "code", Filter::default(), ReadOptions::default()));
        assert_eq!(
            codes,
            BTreeMap::from([
                ("200".into(), 7),
                ("201".into(), 3),
                ("401".into(), 3),
                ("403".into(), 3),
                ("422".into(), 2),
                ("500".into(), 1)
            ])
        );
        let by_ip = counts(&summary_of(&p, "source-ip", with_codes(&["401"]), ReadOptions::default()));
        assert_eq!(by_ip, BTreeMap::from([("172.18.0.5".into(), 2), ("172.18.0.4".into(), 1)]));
        let forbidden = counts(&summary_of(&p, "user,resource", with_codes(&["403"]), ReadOptions::default()));
        assert_eq!(
            forbidden,
            BTreeMap::from([
                ("system:serviceaccount:ingress:traefik|secrets".into(), 2),
                ("alice@example.com|secrets".into(), 1)
            ])
        );
        let invalid = counts(&summary_of(&p, "user", with_codes(&["422"]), ReadOptions::default()));
        assert_eq!(
            invalid,
            BTreeMap::from([("system:serviceaccount:kube-system:generic-garbage-collector".into(), 2)])
        );
        let four = summary_of(&p, "code", with_codes(&["4xx"]), ReadOptions::default());
        assert_eq!(four.matched, 8);
    }

    #[test]
    fn groups_count_an_event_under_each_of_its_groups() {
        let c = counts(&summary_of(&[SMALL.into()], "group", Filter::default(), ReadOptions::default()));
        assert_eq!(c["system:authenticated"], 16);
        assert_eq!(c["ops"], 4);
        assert_eq!(c[""], 3);
    }

    #[test]
    fn latency_is_stage_minus_received() {
        let s = summary_of(
            &[SMALL.into()],
            "user,verb",
            Filter {
                users: vec![klab::audit::filter::Pattern("bob@example.com".into())],
                verbs: vec!["patch".into()],
                ..Filter::default()
            },
            ReadOptions::default(),
        );
        let l = s.rows[0].latency.as_ref().expect("latency");
        assert!((l.max_ms - 40.0).abs() < 1e-9 && (l.p50_ms - 40.0).abs() < 1e-9, "{l:?}");
    }

    #[test]
    fn time_windows_filter_on_the_received_time() {
        let f = Filter {
            since: klab::audit::time::parse_bound("2024-05-01T10:00:10Z"),
            until: klab::audit::time::parse_bound("2024-05-01T10:00:15Z"),
            ..Filter::default()
        };
        assert_eq!(summary_of(&[SMALL.into()], "user", f, ReadOptions::default()).matched, 5);
    }

    #[test]
    fn malformed_lines_are_skipped_counted_and_placed() {
        let s = summary_of(
            &["tests/fixtures/audit/malformed.log".into()],
            "user",
            Filter::default(),
            ReadOptions::default(),
        );
        assert_eq!(s.read.events, 5);
        assert_eq!(s.read.malformed, 3);
        let lines: Vec<u64> = s.read.reported.iter().map(|m| m.line).collect();
        assert_eq!(lines, [3, 5, 7]);
        assert!(s.read.reported[1].reason.contains("not a JSON object"), "{:?}", s.read.reported);
        assert!(s.read.reported[2].reason.contains("not an audit Event"));
    }

    #[test]
    fn the_typed_iterator_gives_events_and_placed_errors() {
        let items: Vec<Result<Event, AuditError>> =
            events(&["tests/fixtures/audit/malformed.log".into()]).expect("opens").collect();
        assert_eq!(items.iter().filter(|r| r.is_ok()).count(), 5);
        let bad: Vec<u64> = items
            .iter()
            .filter_map(|r| match r {
                Err(AuditError::Malformed { line, .. }) => Some(*line),
                _ => None,
            })
            .collect();
        assert_eq!(bad, [3, 5, 7]);
        let all: Vec<Event> = events(&[SMALL.into()]).expect("opens").collect::<Result<_, _>>().expect("all valid");
        assert_eq!(all.len(), 20);
        let e = &all[19];
        assert_eq!(e.impersonated_user.as_ref().map(|u| u.username.as_str()), Some("alice@example.com"));
        assert_eq!(all[3].decision(), Some("forbid"));
        assert_eq!(all[1].latency().map(|d| d.as_millis()), Some(5));
    }

    #[test]
    fn redacted_events_hide_secret_data_and_tokens() {
        let all: Vec<Event> = events(&[SMALL.into()]).expect("opens").collect::<Result<_, _>>().expect("valid");
        let secret = serde_json::to_string(&all[5].redacted()).expect("json");
        assert!(!secret.contains("aHVudGVyMg==") && secret.contains("db-pass"), "{secret}");
        let review = serde_json::to_string(&all[17].redacted()).expect("json");
        assert!(!review.contains("eyJzdWIi") && !review.contains("c2VjcmV0LXRva2VuLXZhbHVl"), "{review}");
    }

    #[test]
    fn v1beta1_events_read_the_same() {
        let p = [PathBuf::from("tests/fixtures/audit/v1beta1.log")];
        let s = summary_of(&p, "user,verb", Filter::default(), ReadOptions::default());
        assert_eq!(s.matched, 4);
        assert_eq!(counts(&s)["laurent@example.com|get"], 1);
        assert_eq!(s.first.as_deref(), Some("2019-11-19T13:49:30.882Z"));
        let f = Filter { since: klab::audit::time::parse_bound("2019-11-19T13:49:31Z"), ..Filter::default() };
        assert_eq!(
            summary_of(&p, "user", f, ReadOptions::default()).matched,
            3,
            "`timestamp` stands in for requestReceivedTimestamp"
        );
        let typed: Vec<Event> = events(&p).expect("opens").collect::<Result<_, _>>().expect("valid");
        assert!(typed[1].request_received_timestamp.is_none() && typed[1].received().is_some());
    }

    fn gz(path: &Path, text: &[u8]) {
        let mut e = GzEncoder::new(std::fs::File::create(path).expect("create"), Compression::fast());
        e.write_all(text).expect("write");
        e.finish().expect("finish");
    }

    #[test]
    fn a_rotated_set_with_gzip_reads_as_one_log_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let small = std::fs::read(SMALL).expect("fixture");
        let beta = std::fs::read("tests/fixtures/audit/v1beta1.log").expect("fixture");
        std::fs::write(dir.path().join("audit.log"), &small).expect("write");
        std::fs::write(dir.path().join("audit.log.1"), &small[..small.len() / 2]).expect("write");
        gz(&dir.path().join("audit-2024-04-30T23-00-00.000.log.gz"), &beta);
        std::fs::write(dir.path().join("notes.txt"), "not a log").expect("write");
        let srcs = sources(&[dir.path().to_path_buf()]).expect("sources");
        let names: Vec<String> = srcs
            .iter()
            .map(|s| match s {
                Source::File(p) => p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string(),
                Source::Stdin => "-".into(),
            })
            .collect();
        assert_eq!(names, ["audit-2024-04-30T23-00-00.000.log.gz", "audit.log.1", "audit.log"]);
        let s = summarize(
            &srcs,
            &SummaryOptions { by: vec![Key::User], filter: Filter::default(), top: 0, read: ReadOptions::default() },
        )
        .expect("summary");
        assert_eq!(s.read.malformed, 1, "the half-cut last line of audit.log.1");
        assert_eq!(s.read.reported[0].source, dir.path().join("audit.log.1").display().to_string());
        assert_eq!(s.read.events, 4 + 20 + (s.read.lines - 4 - 20 - 1));
        assert!(sources(&[dir.path().join("missing.log")]).is_err());
    }

    #[test]
    fn block_boundaries_and_threads_do_not_change_the_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gen.log");
        let mut buf = Vec::new();
        klab::audit::generate::generate(
            &mut buf,
            &klab::audit::generate::GenOptions { bytes: 3 << 20, seed: 42, ..Default::default() },
        )
        .expect("generate");
        std::fs::write(&path, &buf).expect("write");
        let mut naive: BTreeMap<String, u64> = BTreeMap::new();
        for e in events(std::slice::from_ref(&path)).expect("opens") {
            let e = e.expect("valid");
            if e.stage != klab::audit::event::Stage::RequestReceived {
                *naive.entry(format!("{}|{}|{}", e.user.username, e.verb, e.resource())).or_default() += 1;
            }
        }
        for (threads, block) in [(1, 4 << 20), (2, 1024), (3, 7777)] {
            let read = ReadOptions { threads, block_size: block, ..ReadOptions::default() };
            let s = summary_of(std::slice::from_ref(&path), "user,verb,resource", Filter::default(), read);
            assert_eq!(counts(&s), naive, "threads={threads} block={block}");
            assert_eq!(s.read.malformed, 0);
        }
    }

    #[test]
    fn a_line_of_several_megabytes_is_read_and_an_oversized_one_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.log");
        let small = std::fs::read_to_string(SMALL).expect("fixture");
        let first = small.lines().nth(1).expect("a line");
        let blob = "x".repeat(6 << 20);
        let big = first.replacen("\"verb\":", &format!("\"requestObject\":{{\"data\":\"{blob}\"}},\"verb\":"), 1);
        std::fs::write(&path, format!("{first}\n{big}\n{first}\n")).expect("write");
        let s = summary_of(
            std::slice::from_ref(&path),
            "user",
            Filter::default(),
            ReadOptions { block_size: 1 << 20, ..ReadOptions::default() },
        );
        assert_eq!((s.read.events, s.read.malformed), (3, 0));
        let s = summary_of(
            std::slice::from_ref(&path),
            "user",
            Filter::default(),
            ReadOptions { block_size: 1 << 20, max_line: 2 << 20, ..ReadOptions::default() },
        );
        assert_eq!((s.read.events, s.read.malformed), (2, 1));
        assert_eq!(s.read.reported[0].line, 2);
    }

    #[test]
    fn timelines_are_in_time_order_and_follow_one_object() {
        let srcs = sources(&[SMALL.into()]).expect("sources");
        let t = timeline(
            &srcs,
            &TimelineOptions {
                object: Some("shop/deployment/web".parse().expect("object")),
                ..TimelineOptions::default()
            },
        )
        .expect("timeline");
        let story: Vec<(String, String, u64)> =
            t.entries.iter().map(|e| (e.user.clone(), e.verb.clone(), e.line)).collect();
        assert_eq!(
            story,
            [
                ("bob@example.com".into(), "create".into(), 5),
                ("alice@example.com".into(), "patch".into(), 3),
                ("bob@example.com".into(), "delete".into(), 7)
            ]
        );
        let all = timeline(&srcs, &TimelineOptions::default()).expect("timeline");
        assert_eq!(all.total, 16);
        assert!(all.entries.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn questions_get_yes_or_no_with_evidence() {
        let p = [PathBuf::from(SMALL)];
        let q = Question {
            user: Some("bob@example.com".into()),
            verb: Some("delete".into()),
            resource: Some("deployments".into()),
            namespace: Some("shop".into()),
            name: Some("web".into()),
            ..Question::default()
        };
        let a = ask(&p, &q).expect("answer");
        assert!(a.yes());
        let hit = a.first.expect("evidence");
        assert_eq!((hit.line, hit.time.as_str()), (7, "2024-05-01T10:00:30.000Z"));
        let no =
            Question { user: Some("alice@example.com".into()), verb: Some("delete".into()), ..Question::default() };
        assert!(!ask(&p, &no).expect("answer").yes());
        let sa = Question {
            user: Some("system:serviceaccount:*".into()),
            code: Some(CodeMatch::Exact(422)),
            ..Question::default()
        };
        assert_eq!(ask(&p, &sa).expect("answer").matches, 2);
        let later = Question { since: "2024-05-01T10:00:31Z".parse().ok(), ..Question::default() };
        assert!(!ask(&p, &later).expect("answer").yes());
    }
}
