// tier: fake API server (in-process, real kube-rs HTTP) + fake `docker`/`kind` on PATH; no cluster.
//! `klab selftest`'s state machine: a drill that works passes; a fault that breaks nothing, a
//! solution that fixes nothing, an anti-pattern fix, a reset that leaks an object or leaves a
//! sysctl changed all fail; a lab that cannot carry a drill skips it with the reason; a phase
//! that hangs times out and reset still runs. Fixtures: `tests/fixtures/selftest/scenarios/`.

use klab_testkit as support;
use klab_testkit::lab_env;

use lab_env::{Backend, Env, GOOD};
use serde_json::{Value, json};
use std::path::Path;

fn env() -> Env {
    Env::new(Backend::Fake, &GOOD).unwrap()
}

fn catalog() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/selftest").display().to_string()
}

/// Runs `klab selftest -o json` on the fixtures; returns the exit code, the report and stderr.
fn selftest(e: &Env, extra: &[&str]) -> (i32, Value, String) {
    let cat = catalog();
    let mut args = vec!["--catalog", cat.as_str(), "-o", "json", "selftest", "--keep-going"];
    args.extend_from_slice(extra);
    let o = e.klab(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("selftest JSON ({err}):\n{stdout}\n{stderr}"));
    (o.status.code().unwrap_or(-1), report, stderr)
}

fn scenario<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["scenarios"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("{id} in {report}"))
}

fn phase<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} in {s}"))
}

#[test]
fn a_working_drill_passes_every_phase_and_leaves_the_lab_as_it_was() {
    let e = env();
    let before = e.node_state();
    let (code, r, err) = selftest(&e, &["st-good"]);
    assert_eq!(code, 0, "{r:#}\n{err}");
    let s = scenario(&r, "st-good");
    assert_eq!(s["status"], "passed", "{s:#}");
    let names: Vec<&str> = s["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, klab::selftest::PHASES, "{s:#}");
    assert!(s["phases"].as_array().unwrap().iter().all(|p| p["status"] == "passed"), "{s:#}");
    assert!(phase(s, "broken")["message"].as_str().unwrap().contains("forwarding"), "{s:#}");
    assert!(e.get("v1", "Namespace", "", "st").is_none(), "setup's namespace is gone");
    assert_eq!(e.node_state()["sysctl"], before["sysctl"]);
    assert!(err.contains("✓ broken"), "live progress per phase: {err}");
}

#[test]
fn a_fault_that_breaks_nothing_fails_and_reset_still_runs() {
    let e = env();
    let (code, r, _) = selftest(&e, &["st-breaks-nothing"]);
    assert_eq!(code, 1, "{r:#}");
    let s = scenario(&r, "st-breaks-nothing");
    assert_eq!(s["status"], "failed");
    let b = phase(s, "broken");
    assert_eq!(b["status"], "failed");
    assert!(b["message"].as_str().unwrap().contains("breaks nothing the user sees"), "{b:#}");
    assert_eq!(phase(s, "solve")["status"], "skipped");
    assert_eq!(phase(s, "reset")["status"], "passed", "{s:#}");
    assert_eq!(phase(s, "clean")["status"], "passed", "{s:#}");
    assert!(e.get("v1", "Namespace", "", "st").is_none());
}

#[test]
fn a_solution_that_does_not_fix_fails_with_the_evidence() {
    let e = env();
    let (code, r, _) = selftest(&e, &["st-no-fix"]);
    assert_eq!(code, 1);
    let f = phase(scenario(&r, "st-no-fix"), "fixed");
    assert_eq!(f["status"], "failed", "{f:#}");
    let ev = f["evidence"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>().join("\n");
    assert!(ev.contains("forwarding [user]") && ev.contains("0"), "{ev}");
}

#[test]
fn an_anti_pattern_in_the_reference_solution_fails_it() {
    let e = env();
    let (code, r, _) = selftest(&e, &["st-anti"]);
    assert_eq!(code, 1);
    let f = phase(scenario(&r, "st-anti"), "fixed");
    assert!(f["message"].as_str().unwrap().contains("1 anti-pattern"), "{f:#}");
}

#[test]
fn a_reset_that_leaves_a_sysctl_changed_or_an_object_behind_fails_clean() {
    let e = env();
    // A "controller" that leaves an object behind when the app's namespace goes.
    e.fake().set_delete_hook(|obj| {
        if obj["kind"] == "Namespace" && obj["metadata"]["name"] == "st" {
            vec![json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "st-leftover"}, "rules": []})]
        } else {
            vec![]
        }
    });
    let (code, r, _) = selftest(&e, &["st-leaky", "--timeout", "20s", "--settle", "8s"]);
    assert_eq!(code, 1, "{r:#}");
    let s = scenario(&r, "st-leaky");
    assert_eq!(phase(s, "fixed")["status"], "passed", "{s:#}");
    let c = phase(s, "clean");
    assert_eq!(c["status"], "failed", "{c:#}");
    let ev = c["evidence"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>().join("\n");
    assert!(ev.contains("klab-control-plane: sysctl net.ipv6.conf.all.forwarding: 1 → 0"), "{ev}");
    assert!(ev.contains("+ ClusterRole st-leftover was left behind"), "{ev}");
}

#[test]
fn a_drill_the_lab_cannot_carry_is_skipped_with_the_reason_and_junit_says_so() {
    let e = env();
    let junit = e.root.join("selftest.xml");
    let (code, r, _) = selftest(&e, &["st-needs-dns", "st-good", "--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 0, "a skip is not a failure: {r:#}");
    let s = scenario(&r, "st-needs-dns");
    assert_eq!(s["status"], "skipped");
    assert!(s["reason"].as_str().unwrap().contains("needs cluster DNS (CoreDNS); the lab has none"), "{s:#}");
    assert_eq!((r["passed"].as_u64(), r["skipped"].as_u64(), r["failed"].as_u64()), (Some(1), Some(1), Some(0)));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<testsuite name="st-needs-dns""#), "{xml}");
    assert!(xml.contains("<skipped message=\"the lab cannot carry it: needs cluster DNS"), "{xml}");
    assert_eq!(xml.matches("<testcase name=").count(), 1 + klab::selftest::PHASES.len(), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn a_phase_that_hangs_times_out_and_reset_still_undoes_it() {
    let e = env();
    let (code, r, _) = selftest(&e, &["st-hangs", "--timeout", "3s"]);
    assert_eq!(code, 1);
    let s = scenario(&r, "st-hangs");
    let setup = phase(s, "setup");
    assert_eq!(setup["status"], "failed");
    assert!(setup["message"].as_str().unwrap().contains("timed out after 3s"), "{setup:#}");
    assert_eq!(phase(s, "reset")["status"], "passed", "{s:#}");
    assert!(e.get("v1", "Namespace", "", "st").is_none(), "reset removed what setup made before the hang");
    let (code, text) = e.out(&["status"]);
    assert_eq!(code, 0);
    assert!(!text.contains("change(s) that `klab reset` will undo"), "journal is clean: {text}");
}

#[test]
fn without_keep_going_the_first_failure_stops_the_run_and_the_rest_say_why() {
    let e = env();
    let cat = catalog();
    let o = e
        .klab(&["--catalog", cat.as_str(), "-o", "json", "selftest", "st-breaks-nothing", "st-good"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = scenario(&r, "st-good");
    assert_eq!(s["status"], "skipped");
    assert!(s["reason"].as_str().unwrap().contains("`st-breaks-nothing` failed"), "{s:#}");
}

/// Puts `st/app-ready` into the fake `delay` after the namespace `st` appears (a controller
/// that finishes the setup late, as kube-proxy programs a new Service a moment late).
fn mark_ready_late(api: &support::FakeApiServer, delay: std::time::Duration) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while api.get("v1", "Namespace", "", "st").is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(delay);
    api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "app-ready", "namespace": "st"}, "data": {}}));
}

#[test]
fn a_setup_that_settles_late_passes_the_baseline_after_waiting() {
    let e = env();
    let (code, r, err) = std::thread::scope(|sc| {
        sc.spawn(|| mark_ready_late(e.fake(), std::time::Duration::from_secs(4)));
        selftest(&e, &["st-settles"])
    });
    assert_eq!(code, 0, "{r:#}\n{err}");
    let b = phase(scenario(&r, "st-settles"), "baseline");
    assert_eq!(b["status"], "passed", "{b:#}");
    assert!(b["message"].as_str().unwrap().contains("(after "), "it says that it waited: {b:#}");
}

#[test]
fn a_setup_that_never_settles_fails_the_baseline_within_the_settle_time() {
    let e = env();
    let (code, r, _) = selftest(&e, &["st-settles", "--settle", "4s"]);
    assert_eq!(code, 1, "{r:#}");
    let s = scenario(&r, "st-settles");
    let b = phase(s, "baseline");
    assert_eq!(b["status"], "failed", "{b:#}");
    let ev = b["evidence"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>().join("\n");
    assert!(ev.contains("app-ready"), "{ev}");
    let msg = b["message"].as_str().unwrap();
    assert!(
        msg.contains("still after 4s of looking again"),
        "--settle 4s bounds the wait, not the 60 s default: {msg}"
    );
    assert_eq!(phase(s, "reset")["status"], "passed", "{s:#}");
}
