// tier: fake API server (in-process, real kube-rs HTTP) + fake `docker`/`kind` on PATH; no cluster.
//! The lab commands end to end: drill → check → solve → check → reset, the guard, and the
//! journal's promise — a crash at any step boundary of an injection, then `reset`, leaves the
//! cluster and the nodes exactly as they were. The flows live in `testkit/src/lab_env.rs`, shared
//! with the real API server tier (`tests/real_apiserver.rs`).

use klab_testkit::lab_env;

use lab_env::{Backend, Env, GOOD, flows};
use serde_json::Value;

/// A good lab on the fake API server (the shared harness, `testkit/src/lab_env.rs`).
fn env() -> Env {
    Env::new(Backend::Fake, &GOOD).unwrap()
}

#[test]
fn drill_check_solve_check_reset_restores_everything() {
    flows::drill_check_solve_check_reset_restores_everything(Backend::Fake);
}

#[test]
fn a_crash_at_every_step_boundary_is_undone_by_reset() {
    flows::a_crash_at_every_step_boundary_is_undone_by_reset(Backend::Fake);
}

#[test]
fn a_drill_cannot_start_while_another_is_injected() {
    flows::a_drill_cannot_start_while_another_is_injected(Backend::Fake);
}

#[test]
fn the_guard_refuses_clusters_klab_did_not_create() {
    flows::the_guard_refuses_clusters_klab_did_not_create(Backend::Fake);
}

#[test]
fn a_context_that_now_points_elsewhere_is_refused() {
    flows::a_context_that_now_points_elsewhere_is_refused(Backend::Fake);
}

#[test]
fn an_unreachable_apiserver_fails_checks_with_a_reason_and_reset_still_undoes_node_changes() {
    let e = env();
    let before_nodes = e.node_state();
    assert_eq!(e.out(&["drill", "crash-course"]).0, 0);
    e.fake().refuse();
    let (code, text) = e.out(&["check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL [cause] no unfinished deny-all egress policy"), "{text}");
    assert!(text.contains("apiserver"), "{text}");
    let (code, text) = e.out(&["reset"]);
    assert_eq!(code, 5, "object changes cannot be undone without an apiserver: {text}");
    assert!(text.contains("klab reset` again"), "{text}");
    assert_eq!(e.node_state()["sysctl"], before_nodes["sysctl"], "node changes were undone: {text}");
    assert_eq!(e.node_state()["manifest"], before_nodes["manifest"]);
}

#[test]
fn the_journal_holds_exactly_the_rendered_plan_in_order() {
    let e = env();
    let (code, text) = e.out(&["render", "crash-course", "-o", "json"]);
    assert_eq!(code, 0, "{text}");
    let plan: Value = serde_json::from_str(&text).unwrap();
    let planned: Vec<String> = plan["setup"]
        .as_array()
        .unwrap()
        .iter()
        .chain(plan["faults"].as_array().unwrap())
        .map(|s| format!("{}:{}", s["phase"].as_str().unwrap(), s["id"].as_str().unwrap()))
        .collect();
    assert_eq!(e.out(&["drill", "crash-course"]).0, 0);
    let journal = std::fs::read_to_string(e.root.join("state/labs/klab/journal.jsonl")).unwrap();
    let journalled: Vec<String> = journal
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["record"] == "intent")
        .map(|r| format!("{}:{}", r["phase"].as_str().unwrap(), r["step"].as_str().unwrap()))
        .collect();
    assert_eq!(planned, journalled);
    assert_eq!(e.out(&["reset"]).0, 0);
}

#[test]
fn doctor_says_which_variant_each_drill_would_run_in_the_lab_and_why() {
    let e = env();
    assert_eq!(e.out(&["up"]).0, 0);
    for (git, minor, variant) in [("v1.20.2", 20, "psp"), ("v1.31.0", 31, "psa")] {
        e.fake().set_git_version(git);
        e.fake().set_version(1, minor);
        let o = e.klab(&["doctor", "-o", "json"]).output().unwrap();
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        let d = r["lab"]["variants"].as_array().unwrap().iter().find(|d| d["drill"] == "privileged-blocked").cloned();
        let d = d.unwrap_or_else(|| panic!("privileged-blocked in {r:#}"));
        assert_eq!(d["variant"], variant, "{r:#}");
        assert!(d["reason"].as_str().unwrap().contains(&format!("server 1.{minor} matches")), "{d}");
    }
    let (_, text) = e.out(&["doctor"]);
    assert!(text.contains("privileged-blocked") && text.contains("variant psa (server 1.31 matches"), "{text}");
}

#[test]
fn a_drill_the_lab_cannot_carry_is_refused_with_the_reason_unless_forced() {
    let e = env();
    let cat = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/selftest");
    let cat = cat.to_str().unwrap();
    let (code, text) = e.out(&["--catalog", cat, "drill", "st-needs-dns"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("cannot carry `st-needs-dns`: needs cluster DNS (CoreDNS); the lab has none"), "{text}");
    assert!(e.get("v1", "Namespace", "", "st").is_none(), "nothing was touched");
    let (code, text) = e.out(&["--catalog", cat, "drill", "st-needs-dns", "--force"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("--force: starting anyway"), "{text}");
    assert_eq!(e.out(&["reset"]).0, 0);
}

/// A lab that kind has just created: listed by the fake kind no more, its control plane's pods
/// present in the API (klab waits for them after marking).
fn env_before_up() -> Env {
    let e = env();
    std::fs::write(e.root.join("docker/clusters"), "").unwrap();
    for c in ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        e.fake().put(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": format!("{c}-klab-control-plane"), "namespace": "kube-system",
            "labels": {"tier": "control-plane", "component": c}}}));
    }
    e
}

#[test]
fn up_asks_a_new_lab_s_apiserver_again_while_it_is_not_ready() {
    let e = env_before_up();
    // A 500 (what an apiserver says while its etcd is not ready): kube-rs itself asks again on
    // 429, 503 and 504, but not on this nor on a dropped connection.
    e.fake().fail_path("configmaps", 500, "etcdserver: leader changed");
    let (code, text) = std::thread::scope(|s| {
        // The apiserver comes good once klab has asked for the marker twice.
        s.spawn(|| {
            let asked = || e.fake().requests().iter().filter(|(_, p)| p.contains("configmaps/klab-lab")).count();
            while asked() < 2 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            e.fake().clear_failures();
        });
        e.out(&["up"])
    });
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("marking the lab: the new apiserver is not ready yet"), "{text}");
    assert!(text.contains("lab `klab` is up"), "{text}");
    let marker = e.get("v1", "ConfigMap", "kube-system", "klab-lab").expect("the marker");
    assert_eq!(marker["data"]["lab"], "klab", "{marker:#}");
}

#[test]
fn up_gives_up_at_once_when_the_apiserver_refuses_the_marker() {
    let e = env_before_up();
    e.fake().fail_path("configmaps", 403, "configmaps is forbidden");
    let (code, text) = e.out(&["up"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("cannot mark the lab: apiserver answered 403"), "{text}");
    assert!(!text.contains("asking again"), "a refusal is not asked again: {text}");
}

#[test]
fn up_on_a_left_over_cluster_it_cannot_open_says_how_to_clear_it() {
    // kind lists `klab` (a cluster left by an earlier run) but its kubeconfig is gone: CI lost
    // three labs so, and `up` answered "create it with `klab up`".
    let e = env();
    let missing = e.root.join("gone/kubeconfig");
    let (code, text) = e.out(&["--kubeconfig", missing.to_str().unwrap(), "up"]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("kind cluster `klab` exists, but klab cannot open it as a lab: cannot read kubeconfig"),
        "{text}"
    );
    assert!(text.contains("kind delete cluster --name klab"), "{text}");
    assert!(!text.contains("create it with `klab up`"), "{text}");
    // `drill` finds the cluster the same way, and says the same.
    let (code, text) = e.out(&["--kubeconfig", missing.to_str().unwrap(), "drill", "crash-course"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("kind cluster `klab` exists, but klab cannot open it as a lab"), "{text}");
}
