// tier: unit, no cluster — audit policy lint on one fixture file per gotcha.

// Inside `mod audit` so that `cargo test audit` selects these tests by name.
mod audit {
    use klab::audit::lint::lint;
    use std::path::Path;

    const DIR: &str = "tests/fixtures/audit/policy";

    /// Each fixture says on its first line what it must produce: `# expect: clean`, or a phrase one
    /// of its diagnostics must contain. Adding a case is adding a file.
    #[test]
    fn every_policy_fixture_gives_what_it_expects() {
        let mut entries: Vec<_> = std::fs::read_dir(DIR)
            .expect("fixture folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        entries.sort();
        assert!(entries.len() >= 8, "fixtures are missing: {entries:?}");
        for path in entries {
            let name = path.file_stem().and_then(|s| s.to_str()).expect("utf-8 name").to_string();
            let text = std::fs::read_to_string(&path).expect("readable fixture");
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{name}: first line must be `# expect: …`"));
            let file = Path::new(DIR).join(format!("{name}.yaml")).display().to_string();
            let diags = lint(&file, &text);
            if expect == "clean" {
                assert!(
                    diags.is_empty(),
                    "{name} should be clean, got:\n{}",
                    diags.iter().map(|d| d.to_string()).collect::<String>()
                );
            } else {
                assert!(
                    diags.iter().any(|d| d.message.contains(expect)),
                    "{name}: no diagnostic contains `{expect}`:\n{}",
                    diags.iter().map(|d| d.to_string()).collect::<String>()
                );
                assert!(diags.iter().all(|d| d.line > 0 && d.column > 0), "{name}: every diagnostic has a place");
            }
            let rendered: String = diags.iter().map(|d| d.to_string()).collect();
            insta::assert_snapshot!(format!("audit_policy_{name}"), rendered);
        }
    }

    #[test]
    fn a_shadowed_rule_is_reported_at_the_rule_with_the_rule_that_hides_it() {
        let text = std::fs::read_to_string(format!("{DIR}/shadowed.yaml")).expect("fixture");
        let d = lint("shadowed.yaml", &text)
            .into_iter()
            .find(|d| d.message.contains("never applies"))
            .expect("a shadow warning");
        assert_eq!((d.line, d.column), (12, 5));
        assert!(d.message.contains("rule 3") && d.message.contains("rule 2 (line 8)"), "{}", d.message);
    }

    #[test]
    fn a_missing_group_is_the_core_group_too() {
        let text = std::fs::read_to_string(format!("{DIR}/core-group.yaml")).expect("fixture");
        let ds = lint("core-group.yaml", &text);
        let core: Vec<_> = ds.iter().filter(|d| d.message.contains("core API group only")).collect();
        assert_eq!(core.len(), 3, "deployments, roles and rolebindings: {ds:?}");
        assert!(
            core.iter()
                .any(|d| d.message.contains("a missing `group`") && d.message.contains("rbac.authorization.k8s.io"))
        );
    }

    #[test]
    fn the_evaluator_follows_first_match_wins() {
        use klab::audit::event::Level;
        use klab::audit::policy::{Request, ResourceAttrs, parse};
        let text = std::fs::read_to_string(format!("{DIR}/clean.yaml")).expect("fixture");
        let p = parse("clean.yaml", &text).expect("parses");
        let req = |user: &str, verb: &str, group: &str, resource: &str| Request {
            user: user.into(),
            groups: vec!["system:authenticated".into()],
            verb: verb.into(),
            resource: Some(ResourceAttrs {
                group: group.into(),
                resource: resource.into(),
                namespace: "default".into(),
                ..ResourceAttrs::default()
            }),
            path: String::new(),
        };
        assert_eq!(p.level_for(&req("alice", "create", "", "secrets")), (Level::Metadata, Some(2)));
        assert_eq!(p.level_for(&req("alice", "create", "apps", "deployments")), (Level::RequestResponse, Some(4)));
        assert_eq!(p.level_for(&req("alice", "create", "batch", "jobs")), (Level::Metadata, Some(5)));
        let health =
            Request { user: "x".into(), verb: "get".into(), path: "/healthz/etcd".into(), ..Request::default() };
        assert_eq!(p.level_for(&health).0, Level::None);
    }

    #[test]
    fn a_policy_that_is_not_yaml_or_too_big_is_an_error_not_a_panic() {
        for text in ["rules: [", "\u{0}\u{1}", "- just\n- a list\n", "rules:\n  - level: [1, 2]\n"] {
            let ds = lint("bad.yaml", text);
            assert!(ds.iter().any(|d| d.is_error()), "{text:?}: {ds:?}");
        }
        let big = "#".repeat(2 * 1024 * 1024);
        assert!(lint("big.yaml", &big).iter().any(|d| d.is_error()));
    }
}
