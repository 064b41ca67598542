// tier: kind end to end — real kind, real Docker, real images. Runs only with KLAB_E2E=1
// (users' CI, e.g. .github/workflows); elsewhere every test prints why it skipped.
//! For every Kluster-005 drill: the lab comes up, the drill injects, the user-view checks
//! fail with evidence, the reference solution fixes it, every check passes, and reset brings
//! the checks' baseline back. One lab serves all drills (as `klab selftest` will).

use assert_cmd::cargo::cargo_bin_cmd;
use std::time::Instant;

const DRILLS: &[&str] = &["etcd-quota", "deny-all-egress", "ip-forward-off", "privileged-blocked", "kluster-005"];

fn enabled() -> bool {
    if std::env::var("KLAB_E2E").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: KLAB_E2E is not 1 (this tier needs Docker and kind; see docs/testing.md)");
    false
}

fn klab(args: &[&str]) -> (i32, String) {
    let o = cargo_bin_cmd!("klab").args(["--color", "never", "--lab", "klab-e2e"]).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
    )
}

#[test]
fn kluster_005_drills_break_and_get_fixed_on_kind() {
    if !enabled() {
        return;
    }
    let (code, text) = klab(&["doctor"]);
    assert_eq!(code, 0, "prerequisites: {text}");
    let (code, text) = klab(&["up", "--nodes", "2"]);
    assert_eq!(code, 0, "{text}");
    for d in DRILLS {
        let start = Instant::now();
        eprintln!("=== {d} (tier: kind E2E)");
        let (code, text) = klab(&["drill", d]);
        assert_eq!(code, 0, "{d}: drill: {text}");
        let (code, text) = klab(&["check"]);
        assert_eq!(code, 1, "{d}: the checks must fail while the fault is live: {text}");
        assert!(text.contains("FAIL [user]"), "{d}: a user-view check must fail: {text}");
        let (code, text) = klab(&["solve"]);
        assert_eq!(code, 0, "{d}: solve: {text}");
        let (code, text) = klab(&["check"]);
        assert_eq!(code, 0, "{d}: after the reference solution every check passes: {text}");
        let (code, text) = klab(&["reset"]);
        assert_eq!(code, 0, "{d}: reset: {text}");
        eprintln!("{d}: ok in {:?}", start.elapsed());
    }
    let (code, text) = klab(&["down"]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn the_guard_refuses_a_kind_cluster_klab_did_not_create() {
    if !enabled() {
        return;
    }
    let name = "klab-foreign";
    let kind = |args: &[&str]| std::process::Command::new("kind").args(args).status().unwrap();
    assert!(kind(&["create", "cluster", "--name", name]).success());
    let o = cargo_bin_cmd!("klab").args(["--lab", name, "drill", "ip-forward-off"]).output().unwrap();
    let _ = kind(&["delete", "cluster", "--name", name]);
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
}
