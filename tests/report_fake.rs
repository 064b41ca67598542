// tier: fake API server (in-process, real kube-rs HTTP) + fake `docker`/`kind` on PATH; the
// HTML test also runs Debian's chromium headless (skipped, with the reason, where it is absent).
//! `klab report`: the debrief of a drill as Markdown, JSON and one self-contained HTML page —
//! what was injected, every check attempt, hints, the graded diagnosis, fix quality, and the
//! trainee's own calls from the audit log (not klab's, not the cluster's components).

use klab_testkit as support;
use klab_testkit::lab_env;

use lab_env::{Backend, Env, GOOD};
use serde_json::{Value, json};
use std::io::Write;

/// A drill played through: drill, a failed check, a hint, a diagnosis, give up, check; with
/// an audit log holding the trainee's calls, klab's calls and a controller's.
fn played() -> Env {
    let e = Env::new(Backend::Fake, &GOOD).unwrap();
    assert_eq!(e.out(&["drill", "crash-course"]).0, 0);
    assert_eq!(e.out(&["check"]).0, 1);
    assert_eq!(e.out(&["hint"]).0, 0);
    write_session_diagnosis(&e, &["fwd", "dns"], "ip_forward was 0 on the node");
    write_audit_log(&e);
    assert_eq!(e.out(&["solve"]).0, 0);
    assert_eq!(e.out(&["check"]).0, 0);
    e
}

/// A diagnosis attempt as `klab diagnose --cause fwd --cause dns` records it.
fn write_session_diagnosis(e: &Env, causes: &[&str], notes: &str) {
    let path = e.root.join("state/labs/klab/session.json");
    let mut s: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let at = jiff::Timestamp::now().to_string();
    s["diagnoses"] = json!([{"at": at, "causes": causes, "notes": notes}]);
    std::fs::write(&path, serde_json::to_string_pretty(&s).unwrap()).unwrap();
}

fn event(user: &str, agent: &str, verb: &str, resource: &str, name: &str, code: u16) -> String {
    let now = jiff::Timestamp::now();
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("{:08x}", fastrand::u32(..)), "stage": "ResponseComplete",
        "requestURI": format!("/api/v1/namespaces/shop/{resource}/{name}"), "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["172.18.0.1"], "userAgent": agent,
        "objectRef": {"resource": resource, "namespace": "shop", "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": now.to_string(), "stageTimestamp": now.to_string()
    })
    .to_string()
}

fn write_audit_log(e: &Env) {
    let dir = e.root.join("state/labs/klab/audit-log");
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = std::fs::File::create(dir.join("kube-apiserver-audit.log")).unwrap();
    for line in [
        event("kubernetes-admin", "kubectl/v1.32.4 (linux/amd64)", "patch", "configmaps", "app-config", 200),
        event("alice", "kubectl/v1.32.4 (linux/amd64)", "delete", "networkpolicies", "deny-wip", 403),
        event("kubernetes-admin", "klab/0.1.0", "create", "configmaps", "klab-write-probe-1", 201),
        event("system:kube-controller-manager", "kube-controller-manager/v1.20.2", "update", "endpoints", "web", 200),
    ] {
        writeln!(f, "{line}").unwrap();
    }
}

fn report(e: &Env, format: &str) -> String {
    let o = e.klab(&["report", "--format", format]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Times and durations vary from run to run; the rest must not.
fn stable(text: &str) -> String {
    let t = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let m = regex::Regex::new(r"\d+(\.\d+)? min").unwrap();
    m.replace_all(&t.replace_all(text, "<time>"), "<n> min").into_owned()
}

#[test]
fn the_json_debrief_holds_injections_attempts_hints_diagnosis_and_only_the_trainees_calls() {
    let e = played();
    let d: Value = serde_json::from_str(&report(&e, "json")).unwrap();
    assert_eq!(d["outcome"], "gave-up");
    assert_eq!(d["scenario"]["id"], "crash-course");
    let steps: Vec<&str> = d["injections"].as_array().unwrap().iter().map(|i| i["step"].as_str().unwrap()).collect();
    assert!(steps.starts_with(&["workload", "mislabel", "forwarding-off"]), "{steps:?}");
    assert!(d["injections"].as_array().unwrap().iter().all(|i| i["result"] == "done"), "{d:#}");
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!((attempts[0]["passed"].as_bool(), attempts[1]["passed"].as_bool()), (Some(false), Some(true)));
    assert!(attempts[0]["failing"].as_array().unwrap().iter().any(|f| f.as_str().unwrap().starts_with("forwarding:")));
    assert_eq!(d["hints"].as_array().unwrap().len(), 1);
    assert_eq!(d["hintPoints"], 5);
    let g = &d["diagnosis"];
    assert_eq!(g["found"], json!(["forwarding"]));
    assert_eq!(g["wronglyBlamed"], json!(["DNS"]));
    assert_eq!(g["missed"], json!(["etcd", "policy"]), "the drill is over (given up): missed causes are named");
    let users: Vec<(&str, &str)> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["user"].as_str().unwrap(), t["verb"].as_str().unwrap()))
        .collect();
    assert_eq!(users, [("kubernetes-admin", "patch"), ("alice", "delete")], "no klab or controller calls");
    assert!(d["minutesToFix"].is_null(), "gave up: no time to fix");
}

#[test]
fn markdown_debrief_snapshot() {
    let e = played();
    insta::assert_snapshot!("report_markdown", stable(&report(&e, "md")));
}

#[test]
fn a_running_drill_does_not_name_missed_causes_and_reset_keeps_the_report() {
    let e = Env::new(Backend::Fake, &GOOD).unwrap();
    assert_eq!(e.out(&["drill", "crash-course"]).0, 0);
    write_session_diagnosis(&e, &["fwd"], "");
    let d: Value = serde_json::from_str(&report(&e, "json")).unwrap();
    assert_eq!(d["diagnosis"]["missed"], json!([]), "{d:#}");
    assert_eq!(d["diagnosis"]["missedCount"], 2);
    let md = report(&e, "md");
    assert!(md.contains("missed: 2 (named when the drill is over)"), "{md}");
    assert!(!md.contains("etcd;") && !md.contains("- missed: etcd"), "{md}");
    assert_eq!(e.out(&["reset"]).0, 0);
    let d: Value = serde_json::from_str(&report(&e, "json")).unwrap();
    assert_eq!(d["diagnosis"]["missed"], json!(["etcd", "policy"]), "after reset the drill is over: {d:#}");
    assert!(d["injections"].as_array().unwrap().len() >= 7, "the archived journal is read: {d:#}");
}

#[test]
fn the_html_page_is_self_contained() {
    let e = played();
    let html = report(&e, "html");
    assert!(html.contains(r#"<table id="summary">"#) && html.contains(r#"<table id="timeline">"#));
    assert!(
        html.contains(r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="check results over time""#)
    );
    assert!(html.contains("default-src 'none'"), "a CSP forbids every load");
    let loads = regex::Regex::new(r#"(?i)<(script|link|img|iframe|object|embed)\b|\bsrc\s*=|url\("#).unwrap();
    assert!(!loads.is_match(&html), "nothing is loaded: {:?}", loads.find(&html));
    assert!(html.contains("alice") && !html.contains("klab-write-probe-1"), "the trainees' calls only");
}

/// Runs chromium headless with every request sent through a local proxy that records it.
#[test]
fn the_html_page_renders_in_a_real_browser_and_requests_nothing() {
    let Some(chromium) = support::browser::chromium() else { return };
    let e = played();
    let page = e.root.join("debrief.html");
    std::fs::write(&page, report(&e, "html")).unwrap();
    let r = support::browser::render(chromium, &page, &e.root);
    assert!(r.dom.contains(r#"id="summary""#) && r.dom.contains(r#"id="timeline""#), "rendered DOM: {}", r.dom);
    assert!(r.dom.contains("<svg"), "the chart is in the DOM");
    r.assert_shown_offline();
    support::browser::control_is_caught(chromium, &e.root);
}
