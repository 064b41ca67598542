// tier: kind end to end — real kind, real Docker, real images. Runs only with KLAB_E2E=1
// (users' CI, e.g. .github/workflows); elsewhere every test prints why it skipped.
//! Every built-in drill on kind, through `klab selftest` (the same command users' CI runs):
//! setup, baseline, inject, the user-view checks fail, the reference solution fixes them, every
//! check passes, reset restores the cluster. kind (v0.24+) has cluster DNS and a
//! NetworkPolicy-enforcing CNI, so no drill may be skipped here: the drills the real-node tier
//! cannot carry (`deny-all-egress`, `coredns-down`) run on this tier.

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

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
fn every_drill_breaks_and_gets_fixed_on_kind() {
    if !enabled() {
        return;
    }
    let (code, text) = klab(&["doctor"]);
    assert_eq!(code, 0, "prerequisites: {text}");
    let (code, text) = klab(&["up", "--nodes", "2"]);
    assert_eq!(code, 0, "{text}");
    let junit = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-selftest.xml");
    let o = cargo_bin_cmd!("klab")
        .args(["--color", "never", "--lab", "klab-e2e", "-o", "json", "selftest", "--keep-going", "--junit"])
        .arg(&junit)
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).expect("selftest JSON");
    for s in r["scenarios"].as_array().unwrap() {
        eprintln!("{}: {} (tier: kind E2E) {}", s["id"], s["status"], s["reason"]);
    }
    let bad: Vec<String> = r["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "passed")
        .map(|s| format!("{} {}: {}", s["id"], s["status"], s["reason"]))
        .collect();
    assert!(bad.is_empty(), "on kind every drill must pass (none skipped):\n{}", bad.join("\n"));
    assert_eq!(o.status.code(), Some(0));
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testsuite name=\"kluster-005"));
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

/// A game day with two teams on two kind clusters: one fixes the drill with kubectl and names
/// both causes, the other takes a hint and blames a red herring; the end grades them.
#[test]
fn a_two_team_game_day_on_kind() {
    if !enabled() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let roster = tmp.path().join("roster.yaml");
    std::fs::write(
        &roster,
        "apiVersion: klab.dev/v1\nkind: GameDay\nmetadata: {name: e2e}\ntimeLimit: 15m\ndrill: token-automount\nhints: {max: 1}\nteams:\n  - {name: e2e-a, members: [alice]}\n  - {name: e2e-b, members: [bob]}\n",
    )
    .unwrap();
    let gd = |args: &[&str]| {
        let o = cargo_bin_cmd!("klab")
            .args(["--color", "never"])
            .args(args)
            .env("KLAB_STATE_DIR", tmp.path().join("state"))
            .env_remove("KLAB_LAB")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        eprintln!("klab {}: {text}", args.join(" "));
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let roster = roster.to_str().unwrap();
    assert_eq!(gd(&["gameday", "start", roster]).0, 0);
    let kubectl = |args: &[&str]| {
        std::process::Command::new("kubectl")
            .args(["--context", "kind-klab-e2e-a"])
            .args(args)
            .status()
            .unwrap()
            .success()
    };
    assert!(kubectl(&["delete", "clusterrolebinding", "report-builder-debug"]));
    assert!(kubectl(&[
        "-n",
        "reports",
        "patch",
        "serviceaccount",
        "report-builder",
        "-p",
        r#"{"automountServiceAccountToken": false}"#
    ]));
    assert!(kubectl(&[
        "-n",
        "reports",
        "patch",
        "deployment",
        "report-builder",
        "-p",
        r#"{"spec": {"template": {"spec": {"automountServiceAccountToken": false}}}}"#
    ]));
    assert!(kubectl(&["-n", "reports", "rollout", "status", "deployment", "report-builder", "--timeout", "3m"]));
    assert_eq!(gd(&["--team", "e2e-a", "check"]).0, 0);
    assert_eq!(
        gd(&["--team", "e2e-a", "diagnose", "--cause", "sa-bound-to-admin", "--cause", "token-automounted"]).0,
        0
    );
    assert_eq!(gd(&["--team", "e2e-b", "hint"]).0, 0);
    assert_eq!(gd(&["--team", "e2e-b", "hint"]).0, 1, "the roster allows one hint");
    assert_eq!(gd(&["--team", "e2e-b", "diagnose", "--cause", "anonymous-auth"]).0, 1);
    assert_eq!(gd(&["gameday", "end"]).0, 0);
    let (_, out) = gd(&["gameday", "board", "-o", "json"]);
    let b: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(b["teams"][0]["team"], "e2e-a", "{b}");
    assert_eq!(b["teams"][0]["state"], "fixed");
    assert_eq!(b["teams"][1]["state"], "not-fixed");
    assert_eq!(b["teams"][1]["score"], 100 - 5 - 5 - 3 - 20, "{b}");
    assert_eq!(
        gd(&["gameday", "report", "--format", "html", "--out", tmp.path().join("g.html").to_str().unwrap()]).0,
        0
    );
    assert_eq!(gd(&["gameday", "down"]).0, 0);
}
