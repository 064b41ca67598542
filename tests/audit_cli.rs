// tier: CLI, no cluster — `klab audit …` as users run it: tables and JSON (snapshotted), stdin,
// malformed lines on stderr, redaction, policy lint exit codes, bad arguments.

// Inside `mod audit` so that `cargo test audit` selects these tests by name.
mod audit {
    use assert_cmd::cargo::cargo_bin_cmd;
    use predicates::prelude::*;

    const SMALL: &str = "tests/fixtures/audit/small.log";

    fn klab(args: &[&str]) -> assert_cmd::assert::Assert {
        cargo_bin_cmd!("klab").args(["--color", "never"]).args(args).assert()
    }

    fn stdout(a: &assert_cmd::assert::Assert) -> String {
        String::from_utf8_lossy(&a.get_output().stdout).into_owned()
    }

    #[test]
    fn summary_table_by_user_verb_resource() {
        let a = klab(&["audit", "summary", SMALL]).success();
        insta::assert_snapshot!("audit_cli_summary_table", stdout(&a));
    }

    #[test]
    fn summary_json_of_403s_by_user_and_resource() {
        let a = klab(&["audit", "summary", SMALL, "--code", "403", "--by", "user,resource", "-o", "json"]).success();
        let v: serde_json::Value = serde_json::from_str(&stdout(&a)).expect("JSON on stdout");
        assert_eq!(v["groups"][0]["user"], "system:serviceaccount:ingress:traefik");
        assert_eq!(v["groups"][0]["count"], 2);
        assert_eq!(v["matched"], 3);
        insta::assert_snapshot!("audit_cli_summary_403_json", stdout(&a));
    }

    #[test]
    fn summary_401s_by_source_ip_point_at_the_nodes() {
        let a = klab(&["audit", "summary", SMALL, "--code", "401", "--by", "ip", "-o", "json"]).success();
        let v: serde_json::Value = serde_json::from_str(&stdout(&a)).expect("JSON");
        assert_eq!(v["groups"][0]["source-ip"], "172.18.0.5");
        assert_eq!(v["groups"][0]["count"], 2);
        assert_eq!(v["groups"][1]["count"], 1);
    }

    #[test]
    fn summary_reads_stdin() {
        let text = std::fs::read(SMALL).expect("fixture");
        let a = cargo_bin_cmd!("klab")
            .args(["audit", "summary", "-", "--by", "verb", "-o", "json"])
            .write_stdin(text)
            .assert()
            .success();
        let v: serde_json::Value = serde_json::from_str(&stdout(&a)).expect("JSON");
        assert_eq!(v["matched"], 19);
        assert_eq!(v["read"]["sources"][0], "<stdin>");
    }

    #[test]
    fn malformed_lines_are_warned_about_on_stderr_and_skipped() {
        klab(&["audit", "summary", "tests/fixtures/audit/malformed.log", "-o", "json"])
            .success()
            .stderr(
                predicate::str::contains("malformed.log:3:")
                    .and(predicate::str::contains("malformed.log:5: not a JSON object"))
                    .and(predicate::str::contains("malformed.log:7:")),
            )
            .stdout(predicate::str::contains("\"malformed\": 3"));
    }

    #[test]
    fn timeline_table_shows_writes_and_failures_redacted() {
        let a = klab(&["audit", "timeline", SMALL]).success();
        let out = stdout(&a);
        assert!(!out.contains("abcdefghijklmnopqrstu"), "a bearer token leaked:\n{out}");
        insta::assert_snapshot!("audit_cli_timeline_table", out);
    }

    #[test]
    fn timeline_json_of_one_object_and_no_credentials() {
        let a = klab(&["audit", "timeline", SMALL, "--object", "shop/deploy/web", "-o", "json"]).success();
        insta::assert_snapshot!("audit_cli_timeline_object_json", stdout(&a));
        let all = stdout(&klab(&["audit", "timeline", SMALL, "--all-verbs", "-o", "json"]).success());
        for secret in ["c2VjcmV0LXRva2VuLXZhbHVl", "aHVudGVyMg==", "eyJzdWIi", "abcdefghijklmnopqrstu"] {
            assert!(!all.contains(secret), "{secret} leaked");
        }
        assert!(all.contains("token=<redacted>"));
    }

    #[test]
    fn policy_lint_passes_a_clean_policy_and_warns_on_gotchas() {
        klab(&["audit", "policy", "lint", "tests/fixtures/audit/policy/clean.yaml"])
            .success()
            .stdout(predicate::str::contains("0 error(s), 0 warning(s)"));
        let a = klab(&["audit", "policy", "lint", "tests/fixtures/audit/policy/secrets-request.yaml"]).success();
        insta::assert_snapshot!("audit_cli_policy_lint_secrets", stdout(&a));
        klab(&["audit", "policy", "lint", "tests/fixtures/audit/policy/secrets-request.yaml", "--deny-warnings"])
            .code(1);
        klab(&["audit", "policy", "lint", "tests/fixtures/audit/policy/bad-level.yaml"])
            .code(1)
            .stdout(predicate::str::contains("bad-level.yaml:6:12: error: unknown level `Everything`"));
        let j = stdout(
            &klab(&["audit", "policy", "lint", "tests/fixtures/audit/policy/shadowed.yaml", "-o", "json"]).success(),
        );
        let v: serde_json::Value = serde_json::from_str(&j).expect("JSON");
        assert_eq!(v["warnings"], 1);
        assert_eq!(v["diagnostics"][0]["line"], 12);
    }

    #[test]
    fn bad_arguments_say_what_is_expected() {
        klab(&["audit", "summary", SMALL, "--by", "colour"])
            .code(1)
            .stderr(predicate::str::contains("bad grouping key `colour`").and(predicate::str::contains("user-agent")));
        klab(&["audit", "summary", SMALL, "--code", "9xx"]).code(1).stderr(predicate::str::contains("bad status code"));
        klab(&["audit", "summary", SMALL, "--since", "yesterday"]).code(1).stderr(predicate::str::contains("RFC 3339"));
        klab(&["audit", "summary", "no/such/audit.log"]).code(1).stderr(predicate::str::contains("no/such/audit.log"));
        klab(&["audit", "timeline", SMALL, "--object", "web"])
            .code(1)
            .stderr(predicate::str::contains("namespace/kind/name"));
    }

    #[test]
    fn generated_logs_pipe_into_summary() {
        let log = cargo_bin_cmd!("klab")
            .args(["audit", "generate", "--size", "300K", "--seed", "3"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert!(log.len() >= 300 << 10);
        let a = cargo_bin_cmd!("klab")
            .args(["audit", "summary", "-", "--by", "code", "--top", "0", "-o", "json"])
            .write_stdin(log)
            .assert()
            .success();
        let v: serde_json::Value = serde_json::from_str(&stdout(&a)).expect("JSON");
        assert_eq!(v["read"]["malformed"], 0);
        assert!(v["groups"].as_array().is_some_and(|g| g.len() >= 5), "a realistic mix of codes");
    }
}
