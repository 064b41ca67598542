// tier: fake API server (in-process, real kube-rs HTTP) + fake `docker`/`kind` on PATH; no cluster.
//! What the trainee does besides fixing, through the `klab` binary: `diagnose` (graded, never
//! revealing a missed cause before `solve`), the score `status` shows, and who fixed each cause
//! after `check` (the audit log on the fake control-plane node is the evidence).

use klab_testkit::lab_env;

use klab::fault::AUDIT_LOG_PATH;
use lab_env::{Backend, Env, GOOD};
use serde_json::{Value, json};

const DRILL: &str = "heal-course";

fn env() -> Env {
    let e = Env::new(Backend::Fake, &GOOD).unwrap();
    let (code, text) = e.out(&["drill", DRILL]);
    assert_eq!(code, 0, "{text}");
    e
}

fn stdout(e: &Env, args: &[&str]) -> (i32, String, String) {
    let o = e.klab(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn session(e: &Env) -> Value {
    serde_json::from_str(&std::fs::read_to_string(e.root.join("state/labs/klab/session.json")).unwrap()).unwrap()
}

fn node(e: &Env) -> std::path::PathBuf {
    e.root.join("docker/nodes/klab-control-plane")
}

/// The trainee's node-level fix, as `docker exec … sysctl -w` would leave it.
fn forwarding_on(e: &Env) {
    let p = node(e).join("sysctl.json");
    let mut s: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    s["net.ipv4.ip_forward"] = json!("1");
    std::fs::write(p, s.to_string()).unwrap();
}

fn audit_line(user: &str, verb: &str, resource: &str, name: &str, code: u16) -> String {
    let t = jiff::Timestamp::now().to_string();
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": format!("{t}{name}"),
        "stage": "ResponseComplete", "verb": verb, "user": {"username": user},
        "objectRef": {"resource": resource, "namespace": "shop", "name": name},
        "responseStatus": {"code": code}, "requestReceivedTimestamp": t, "stageTimestamp": t})
    .to_string()
}

fn append_audit(e: &Env, lines: &[String]) {
    let path = node(e).join("root").join(AUDIT_LOG_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// The candidate ids in the order `diagnose` lists them without a terminal.
fn listed_ids(text: &str) -> Vec<String> {
    text.lines().skip(1).filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

#[test]
fn diagnose_without_a_terminal_lists_the_candidates_in_a_stable_order_and_exits_2() {
    let e = env();
    let (code, out, err) = stdout(&e, &["diagnose"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--cause ID"), "{err}");
    let ids = listed_ids(&out);
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ["disk-full", "dns-down", "egress-denied", "fwd-off"], "{out}");
    assert!(out.contains("A policy blocks outgoing traffic.") && out.contains("DNS is down."), "{out}");
    assert!(!out.to_lowercase().contains("herring:") && !out.contains("cause:"), "which is which stays hidden: {out}");
    let (_, again, _) = stdout(&e, &["diagnose"]);
    assert_eq!(listed_ids(&again), ids, "a re-run shows the same order");
    let (code, json_out, _) = stdout(&e, &["diagnose", "-o", "json"]);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    let json_ids: Vec<&str> = v["candidates"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(json_ids, ids);
    assert!(session(&e)["diagnoses"].as_array().unwrap().is_empty(), "listing is not an attempt");
}

#[test]
fn diagnose_grades_without_naming_the_missed_cause_until_the_trainee_gives_up() {
    let e = env();
    let (code, _, err) = stdout(&e, &["diagnose", "--cause", "fwd-off", "--cause", "nope"]);
    assert_eq!(code, 2, "unknown ids are a usage error: {err}");
    assert!(err.contains("unknown cause id(s): nope"), "{err}");
    assert!(err.contains("the candidates are:") && err.contains("dns-down") && err.contains("egress-denied"), "{err}");

    let (code, out, err) =
        stdout(&e, &["diagnose", "--cause", "fwd-off", "--cause", "dns-down", "--note", "sysctl -n said 0"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("Diagnosis 1: 1 of 2 causes found"), "{out}");
    assert!(out.contains("found fwd-off — A kernel setting stops the node from routing."), "{out}");
    assert!(out.contains("wrongly blamed dns-down — DNS is down. (a red herring)"), "{out}");
    assert!(out.contains("1 cause is still missing"), "{out}");
    assert!(!out.contains("egress-denied") && !out.contains("A policy blocks"), "the missed cause is revealed: {out}");

    let (code, out, _) = stdout(&e, &["diagnose", "-o", "json", "--cause", "fwd-off"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["causesFound"].as_u64(), v["causesTotal"].as_u64(), v["complete"].as_bool()),
        (Some(1), Some(2), Some(false))
    );
    assert_eq!(v["credit"].as_f64(), Some(0.5));
    assert!(v.get("missed").is_none() && !out.contains("egress-denied"), "{out}");

    let (code, out, _) = stdout(&e, &["diagnose", "-o", "json", "--cause", "egress-denied,fwd-off"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["complete"].as_bool(), v["attempt"].as_u64()), (Some(true), Some(3)));

    let s = session(&e);
    let d = s["diagnoses"].as_array().unwrap();
    assert_eq!(d.len(), 3, "{s:#}");
    assert_eq!(d[0]["causes"], json!(["fwd-off", "dns-down"]));
    assert_eq!(d[0]["notes"], "sysctl -n said 0");
    assert_eq!(d[2]["causes"], json!(["egress-denied", "fwd-off"]));

    let (code, text) = e.out(&["solve"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("your notes:\n    - sysctl -n said 0"), "the note is in the debrief: {text}");
    let (code, out, _) = stdout(&e, &["diagnose", "--cause", "fwd-off"]);
    assert_eq!(code, 1);
    assert!(out.contains("missed egress-denied — A policy blocks outgoing traffic."), "after solve: {out}");
}

#[test]
fn status_shows_the_score_so_far_with_its_breakdown_and_check_says_who_fixed_what() {
    let e = env();
    assert_eq!(e.out(&["hint"]).0, 0);
    let (code, text) = e.out(&["check"]);
    assert_eq!(code, 1, "{text}");
    assert!(!text.contains("Who fixed what"), "nothing fixed yet: {text}");
    assert_eq!(stdout(&e, &["diagnose", "--cause", "fwd-off", "--cause", "dns-down"]).0, 1);

    let (code, out, _) = stdout(&e, &["status"]);
    assert_eq!(code, 0, "{out}");
    // 100 − 5 (hint) − 1 (failed check) − 5 (red herring) − 3 (incomplete attempt) − 10 (1 of 2 causes missed)
    assert!(out.contains("score 76/100 (so far; final once `klab check` finds the cluster fixed)"), "{out}");
    for line in [
        "−5  hints",
        "1 taken (5)",
        "−1  failed checks",
        "−5  red herrings blamed",
        "−3  incomplete diagnoses",
        "−10  causes not found",
        "1 of 2 causes found in the last diagnosis",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(!out.contains("egress-denied"), "status must not reveal the missed cause: {out}");
    let (_, json_out, _) = stdout(&e, &["status", "-o", "json"]);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v["progress"]["score"]["points"], 76, "{v:#}");
    assert_eq!(v["progress"]["score"]["provisional"], true);

    // The fix: the trainee deletes the policy (an API write in the audit log); forwarding comes
    // back because the cluster created a pod on the node (the scenario's selfHeals trigger).
    e.fake().remove("networking.k8s.io/v1", "NetworkPolicy", "shop", "deny-wip");
    forwarding_on(&e);
    append_audit(
        &e,
        &[
            audit_line("kubernetes-admin", "delete", "networkpolicies", "deny-wip", 200),
            audit_line("kubernetes-admin", "create", "pods", "klab-probe-00c0ffee", 201),
            audit_line("system:serviceaccount:kube-system:replicaset-controller", "create", "pods", "web-7d4b9", 201),
        ],
    );
    let (code, out, err) = stdout(&e, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Who fixed what"), "{out}");
    assert!(out.contains("cause check no-wip (first passed"), "{out}");
    let no_wip = out.lines().find(|l| l.contains("cause check no-wip")).unwrap();
    assert!(no_wip.ends_with(": fixed by you"), "{out}");
    assert!(out.contains("kubernetes-admin delete networkpolicies shop/deny-wip"), "{out}");
    let fwd = out.lines().find(|l| l.contains("cause check forwarding")).unwrap();
    assert!(fwd.ends_with(": healed by the cluster (a new pod on the node turns forwarding back on)"), "{out}");
    assert!(out.contains("replicaset-controller create pods shop/web-7d4b9"), "{out}");
    assert!(!out.contains("klab-probe-00c0ffee"), "klab's own probe pods are not the trainee's: {out}");
    assert!(out.contains("Score: 76/100"), "{out}");

    let s = session(&e);
    let last = s["checkAttempts"].as_array().unwrap().last().unwrap().clone();
    let firsts: Vec<&str> = last["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["firstPass"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(firsts, ["user-forwarding", "forwarding", "no-wip"], "{last:#}");
    assert_eq!(last["results"][2]["attribution"]["by"], "you");
    assert_eq!(last["results"][1]["attribution"]["by"], "cluster");

    let (_, out, _) = stdout(&e, &["status"]);
    assert!(out.contains("score 76/100 (final)"), "{out}");
    assert!(out.contains("healed by the cluster (a new pod on the node turns forwarding back on)"), "{out}");
    // A later run does not attribute again.
    let (code, out, _) = stdout(&e, &["check", "-o", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["attributions"].as_array().unwrap().len(), 2, "{v:#}");
    let s = session(&e);
    let again = s["checkAttempts"].as_array().unwrap().last().unwrap();
    assert!(
        again["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("firstPass").is_none() && r.get("attribution").is_none()),
        "{again:#}"
    );
}

#[test]
fn without_evidence_klab_says_it_cannot_tell() {
    let e = env();
    assert_eq!(e.out(&["check"]).0, 1);
    forwarding_on(&e);
    // No audit log on the node at all.
    let (code, out, _) = stdout(&e, &["check"]);
    assert_eq!(code, 1, "deny-wip is still there: {out}");
    let fwd = out.lines().find(|l| l.contains("cause check forwarding")).unwrap_or_else(|| panic!("{out}"));
    assert!(fwd.ends_with(": can't tell"), "{out}");
    assert!(
        out.contains("the audit log could not be read (no audit log at /var/log/kubernetes/kube-apiserver-audit.log"),
        "{out}"
    );
    assert!(out.contains("can also heal by itself"), "{out}");
    // With an audit log that shows no write of the trainee's, an API-only cause fixed is the cluster's.
    append_audit(
        &e,
        &[audit_line(
            "system:serviceaccount:kube-system:namespace-controller",
            "delete",
            "networkpolicies",
            "deny-wip",
            200,
        )],
    );
    e.fake().remove("networking.k8s.io/v1", "NetworkPolicy", "shop", "deny-wip");
    let (code, out, _) = stdout(&e, &["check"]);
    assert_eq!(code, 0, "{out}");
    let no_wip = out.lines().find(|l| l.contains("cause check no-wip")).unwrap();
    assert!(no_wip.ends_with(": healed by the cluster"), "{out}");
    assert!(out.contains("namespace-controller delete networkpolicies shop/deny-wip"), "{out}");
}

#[test]
fn klab_solve_is_attributed_and_scores_zero() {
    let e = env();
    assert_eq!(e.out(&["check"]).0, 1);
    assert_eq!(e.out(&["solve"]).0, 0);
    let (code, out, _) = stdout(&e, &["check"]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("cause check ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines.iter().all(|l| l.ends_with(": fixed by `klab solve`")), "{out}");
    let (_, out, _) = stdout(&e, &["status"]);
    assert!(out.contains("score 0/100 (final: gave up)"), "{out}");
}
