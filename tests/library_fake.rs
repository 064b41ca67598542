// tier: fake API server + cluster model (testkit/src/cluster_model.rs) + fake `docker`/`kind` on PATH; no cluster.
//! The incident library's two drills that nothing real on this machine can carry, proven with
//! the product command on the built-in, unmodified drills: `deny-all-egress` (needs a
//! NetworkPolicy enforcer; no Debian package gives one) and `coredns-down` (needs CoreDNS; no
//! image can be had offline). Every other drill runs on the real-node tier; these two also run
//! on kind in the E2E tier (`tests/e2e_kind.rs`, `KLAB_E2E=1`).
//!
//! `klab selftest` runs each through every phase — the user-view checks fail after inject, pass
//! after the reference solution, reset restores the start — and the model can fail honestly:
//! without NetworkPolicy enforcement, or without CoreDNS endpoints, selftest skips the drill
//! with the reason; with the fault injected `klab check` shows the failing user view with its
//! evidence; the wrong fixes the scenarios list as anti-patterns are reported as such; and the
//! model's own log says why each packet passed or was dropped.

use klab_testkit::lab_env;

use klab::cluster::kube::Kube;
use klab::scenario::kinds::PatchType;
use lab_env::{Backend, Env, GOOD, key};
use serde_json::{Value, json};
use std::time::Duration;

const TIER_EGRESS: &str =
    "tier: fake API server + cluster model (nothing real here can carry deny-all-egress: no NetworkPolicy enforcer)";
const TIER_DNS: &str = "tier: fake API server + cluster model (nothing real here can carry coredns-down: no CoreDNS)";

/// A lab on the fake API server with the cluster model on (kind's kube-system, controllers,
/// the pod network enforcing NetworkPolicies).
fn lab() -> Env {
    let e = Env::new(Backend::Fake, &GOOD).unwrap();
    e.fake().model_cluster();
    e
}

/// `klab …` on the built-in catalog only (the harness adds a fixture catalog; not here).
fn builtin(e: &Env, args: &[&str]) -> (i32, String, String) {
    let o = e.klab(args).env_remove("KLAB_CATALOG").output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `klab -o json selftest ID`; the exit code, the report and stderr.
fn selftest(e: &Env, id: &str) -> (i32, Value, String) {
    let (code, out, err) = builtin(e, &["-o", "json", "selftest", id]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|x| panic!("selftest JSON ({x}):\n{out}\n{err}"));
    (code, report, err)
}

/// `klab -o json check`; the exit code and the report.
fn check(e: &Env) -> (i32, Value) {
    let (code, out, err) = builtin(e, &["-o", "json", "check"]);
    (code, serde_json::from_str(&out).unwrap_or_else(|x| panic!("check JSON ({x}):\n{out}\n{err}")))
}

fn result<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn evidence(r: &Value) -> String {
    r["evidence"]
        .as_array()
        .map(|e| e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

fn passed(report: &Value, id: &str) -> bool {
    result(report, id)["passed"] == true
}

/// The harness's own client, as a trainee's kubectl would talk to the cluster.
fn kube(e: &Env) -> (Kube, tokio::runtime::Runtime) {
    let rt = lab_env::rt();
    let k = rt.block_on(Kube::connect(Some(&e.kubeconfig), &e.context)).unwrap();
    (k, rt)
}

fn exec(e: &Env, ns: &str, pod: &str, argv: &[&str]) -> (i32, String, String) {
    let (k, rt) = kube(e);
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    rt.block_on(k.exec(ns, pod, None, &argv, Duration::from_secs(20))).unwrap()
}

fn log_has(e: &Env, needle: &str) -> bool {
    log_since(e, 0, needle)
}

/// Whether a line of the network log after the first `from` ones contains `needle`.
fn log_since(e: &Env, from: usize, needle: &str) -> bool {
    e.fake().network_log().iter().skip(from).any(|l| l.contains(needle))
}

/// Every object (the model's ReplicaSets, pods and Endpoints included) and the nodes' state
/// as before. Compared as JSON values: a restore through PUT may order an object's keys
/// differently, which is no difference.
fn assert_same(before: &(Vec<Value>, Value), after: &(Vec<Value>, Value), what: &str) {
    assert_eq!(before.1, after.1, "{what}: node state differs");
    for x in &before.0 {
        assert!(after.0.contains(x), "{what}: lost or changed object {x:#}\nafter: {:#?}", after.0);
    }
    for x in &after.0 {
        assert!(before.0.contains(x), "{what}: leaked or changed object {x:#}");
    }
}

fn assert_every_phase_passed(report: &Value, id: &str) -> Value {
    let s = report["scenarios"].as_array().unwrap().iter().find(|s| s["id"] == id).cloned().unwrap();
    assert_eq!(s["status"], "passed", "{s:#}");
    let names: Vec<&str> = s["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, klab::selftest::PHASES, "{s:#}");
    for p in s["phases"].as_array().unwrap() {
        assert_eq!(p["status"], "passed", "phase {} of {id}: {p:#}", p["name"]);
    }
    s
}

fn phase<'a>(s: &'a Value, name: &str) -> &'a str {
    s["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["message"].as_str().unwrap()
}

// ------------------------------------------------------------------------------ deny-all-egress

#[test]
fn deny_all_egress_selftest_passes_every_phase() {
    println!("{TIER_EGRESS}");
    let e = lab();
    let before = e.world();
    let (code, r, err) = selftest(&e, "deny-all-egress");
    assert_eq!(code, 0, "{r:#}\n{err}");
    assert!(r["tier"].as_str().unwrap().contains("fake"), "the report names the fake kind: {r:#}");
    assert_eq!(r["facts"]["networkPolicy"], json!({"Ok": true}), "the probe found enforcement: {r:#}");
    assert_eq!(r["facts"]["dns"], json!({"Ok": true}), "{r:#}");
    let s = assert_every_phase_passed(&r, "deny-all-egress");
    assert!(
        phase(&s, "broken").starts_with(
            "3 user-view check(s) fail: toolbox-reaches-web, toolbox-reaches-web-by-name, toolbox-reaches-api"
        ),
        "{s:#}"
    );
    // The user view broke because the policy dropped the packets — DNS, the Service, the API.
    for what in ["DNS web.shop.svc", "wget http://10.96.", "DNS kubernetes.default.svc"] {
        assert!(
            e.fake().network_log().iter().any(|l| l.contains(what)
                && l.contains("dropped (egress from shop/toolbox is isolated by NetworkPolicy shop/deny-wip")),
            "{what} was not dropped by deny-wip: {:#?}",
            e.fake().network_log()
        );
    }
    // … and the probe's server was cut off by its own deny-ingress policy.
    assert!(log_has(&e, "dropped (ingress to klab-np-probe-"), "{:#?}", e.fake().network_log());
    // Reset restored the start as the harness sees it too (every object, the model's included).
    assert_same(&before, &e.world(), "after selftest deny-all-egress");
}

#[test]
fn without_network_policy_enforcement_selftest_skips_deny_all_egress_with_the_reason() {
    println!("{TIER_EGRESS}; the model's CNI ignores NetworkPolicies here");
    let e = lab();
    e.fake().enforce_network_policies(false);
    let (code, r, err) = selftest(&e, "deny-all-egress");
    assert_eq!(code, 0, "a skip is not a failure: {r:#}\n{err}");
    assert_eq!(r["facts"]["networkPolicy"], json!({"Ok": false}), "{r:#}");
    let s = &r["scenarios"][0];
    assert_eq!(s["status"], "skipped", "{s:#}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("the lab cannot carry it: needs NetworkPolicy enforcement; the lab has none"),
        "{s:#}"
    );
    assert_eq!((r["passed"].as_u64(), r["skipped"].as_u64(), r["failed"].as_u64()), (Some(0), Some(1), Some(0)));
    // The probe really ran: its client still reached the server behind the deny-ingress policy.
    assert!(
        e.fake()
            .network_log()
            .iter()
            .any(|l| l.contains("klab-np-probe-") && l.contains("connected (NetworkPolicies not enforced)")),
        "{:#?}",
        e.fake().network_log()
    );
    assert!(e.get("v1", "Namespace", "", "shop").is_none(), "nothing of the drill was made");
}

#[test]
fn deny_all_egress_injected_fails_the_user_view_and_deleting_every_policy_is_the_anti_pattern() {
    println!("{TIER_EGRESS}");
    let e = lab();
    let before = e.world();
    let (code, out, err) = builtin(&e, &["drill", "deny-all-egress"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, r) = check(&e);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["fixed"], false);
    for id in ["toolbox-reaches-web", "toolbox-reaches-web-by-name", "toolbox-reaches-api"] {
        let c = result(&r, id);
        assert_eq!((c["role"].as_str(), c["passed"].as_bool()), (Some("user"), Some(false)), "{c:#}");
        // busybox's timeout killed the hanging request: the evidence says so.
        assert!(evidence(c).contains("shop/toolbox: exit code 143"), "{c:#}");
        assert!(c["reason"].as_str().unwrap().contains("exit code 143, expected 0"), "{c:#}");
    }
    assert!(!passed(&r, "deny-wip-fixed"), "{r:#}");
    assert!(passed(&r, "legit-policy-kept"), "no anti-pattern yet: {r:#}");

    // The wrong fix: delete every policy in the namespace.
    let (k, rt) = kube(&e);
    for name in ["deny-wip", "web-allow-shop"] {
        assert!(rt.block_on(k.delete(&key("networking.k8s.io/v1", "NetworkPolicy", Some("shop"), name))).unwrap());
    }
    let (code, r) = check(&e);
    assert_eq!(code, 0, "the user view works again: {r:#}");
    for id in ["toolbox-reaches-web", "toolbox-reaches-web-by-name", "toolbox-reaches-api", "deny-wip-fixed"] {
        assert!(passed(&r, id), "{id}: {r:#}");
    }
    let ap = result(&r, "legit-policy-kept");
    assert_eq!((ap["role"].as_str(), ap["passed"].as_bool()), (Some("antiPattern"), Some(false)), "{ap:#}");
    assert!(ap["reason"].as_str().unwrap().contains("NetworkPolicy shop/web-allow-shop does not exist"), "{ap:#}");
    let (_, text, _) = builtin(&e, &["check"]);
    assert!(
        text.contains("WARN [anti-pattern] The legitimate ingress policy web-allow-shop is still in place"),
        "{text}"
    );

    reset(&e);
    assert_same(&before, &e.world(), "reset after a wrong fix");
}

#[test]
fn deny_all_egress_finished_policy_needs_dns_web_and_the_apiserver_port_after_dnat() {
    println!("{TIER_EGRESS}");
    let e = lab();
    let (code, out, err) = builtin(&e, &["drill", "deny-all-egress"]);
    assert_eq!(code, 0, "{out}{err}");
    let (k, rt) = kube(&e);
    let dns = json!({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                             "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                     "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]});
    let web = json!({"to": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 8080}]});
    let api = |port: u16| json!({"to": [{"ipBlock": {"cidr": "172.18.0.0/16", "except": ["172.18.0.128/25"]}}], "ports": [{"port": port}]});
    let finish = |rules: Vec<Value>| {
        rt.block_on(k.apply(&json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny-wip", "namespace": "shop"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": rules}})))
            .unwrap();
    };

    // DNS only: names resolve, nothing else gets out; the cause check already passes.
    finish(vec![dns.clone()]);
    let (code, out, _) = exec(&e, "shop", "toolbox", &["nslookup", "web.shop.svc.cluster.local"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Name:\tweb.shop.svc.cluster.local"), "{out}");
    let (code, r) = check(&e);
    assert_eq!(code, 1, "{r:#}");
    assert!(passed(&r, "deny-wip-fixed"), "{r:#}");
    for id in ["toolbox-reaches-web", "toolbox-reaches-web-by-name", "toolbox-reaches-api"] {
        assert!(!passed(&r, id), "{id} passes with DNS-only egress: {r:#}");
    }

    // The web pods and the API's *Service* port: policies see the translated destination, the
    // apiserver's 6443 on the node, so 443 allows nothing.
    finish(vec![dns.clone(), web.clone(), api(443)]);
    let seen = e.fake().network_log().len();
    let (code, r) = check(&e);
    assert_eq!(code, 1, "{r:#}");
    assert!(passed(&r, "toolbox-reaches-web") && passed(&r, "toolbox-reaches-web-by-name"), "{r:#}");
    assert!(!passed(&r, "toolbox-reaches-api"), "{r:#}");
    assert!(
        log_since(&e, seen, "→ Service default/kubernetes → 172.18.0.2:6443 (the apiserver): dropped (egress"),
        "{:#?}",
        e.fake().network_log()
    );

    // The port after DNAT: every check passes, no anti-pattern.
    finish(vec![dns, web, api(6443)]);
    every_check_passes(&e);
    reset(&e);
}

// --------------------------------------------------------------------------------- coredns-down

#[test]
fn coredns_down_selftest_passes_every_phase() {
    println!("{TIER_DNS}");
    let e = lab();
    let before = e.world();
    let (code, r, err) = selftest(&e, "coredns-down");
    assert_eq!(code, 0, "{r:#}\n{err}");
    assert_eq!(r["facts"]["dns"], json!({"Ok": true}), "{r:#}");
    let s = assert_every_phase_passed(&r, "coredns-down");
    assert!(
        phase(&s, "broken").starts_with("2 user-view check(s) fail: toolbox-resolves-web, toolbox-reaches-web-by-name"),
        "{s:#}"
    );
    // ndots 5: the first name of the search list already goes unanswered; before the fault the
    // fourth, the name itself, was answered through the Service's endpoint.
    assert!(log_has(
        &e,
        "DNS web.shop.svc.cluster.local.shop.svc.cluster.local: 10.96.0.10:53/UDP: dropped (Service kube-system/kube-dns has no endpoints)"
    ));
    assert!(log_has(&e, "DNS web.shop.svc.cluster.local: 10.96.0.10:53/UDP → Service kube-system/kube-dns → 10.244."));
    assert_same(&before, &e.world(), "after selftest coredns-down");
}

#[test]
fn without_coredns_endpoints_selftest_skips_coredns_down_with_the_reason() {
    println!("{TIER_DNS}; CoreDNS scaled to zero here");
    let e = lab();
    let (k, rt) = kube(&e);
    rt.block_on(k.patch(
        &key("apps/v1", "Deployment", Some("kube-system"), "coredns"),
        PatchType::Merge,
        &json!({"spec": {"replicas": 0}}),
    ))
    .unwrap();
    let ep = e.get("v1", "Endpoints", "kube-system", "kube-dns").unwrap();
    assert!(ep.get("subsets").is_none(), "the endpoints controller emptied kube-dns: {ep:#}");
    let (code, r, err) = selftest(&e, "coredns-down");
    assert_eq!(code, 0, "{r:#}\n{err}");
    assert_eq!(r["facts"]["dns"], json!({"Ok": false}), "{r:#}");
    let s = &r["scenarios"][0];
    assert_eq!(s["status"], "skipped", "{s:#}");
    assert!(s["reason"].as_str().unwrap().contains("needs cluster DNS (CoreDNS); the lab has none"), "{s:#}");
}

#[test]
fn coredns_down_injected_fails_lookups_and_hand_labelled_pods_are_the_anti_pattern_the_next_rollout_undoes() {
    println!("{TIER_DNS}");
    let e = lab();
    let (code, out, err) = builtin(&e, &["drill", "coredns-down"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, r) = check(&e);
    assert_eq!(code, 1, "{r:#}");
    let lookup = result(&r, "toolbox-resolves-web");
    assert_eq!(lookup["passed"], false);
    assert!(evidence(lookup).contains("shop/toolbox: exit code 1"), "{lookup:#}");
    assert!(evidence(lookup).contains(";; connection timed out; no servers could be reached"), "{lookup:#}");
    let by_name = result(&r, "toolbox-reaches-web-by-name");
    assert_eq!(by_name["passed"], false);
    assert!(evidence(by_name).contains("exit code 143"), "{by_name:#}");
    assert!(!passed(&r, "kube-dns-has-endpoints"), "{r:#}");
    assert!(passed(&r, "coredns-intact"), "{r:#}");
    // CoreDNS itself answers when asked directly (the scenario's hint).
    let coredns = e
        .fake()
        .list("v1", "Pod")
        .into_iter()
        .filter(|p| p["metadata"]["namespace"] == "kube-system")
        .collect::<Vec<_>>();
    assert_eq!(coredns.len(), 2, "{coredns:#?}");
    let ip = coredns[0]["status"]["podIP"].as_str().unwrap();
    let (code, out, _) = exec(&e, "shop", "toolbox", &["nslookup", "web.shop.svc.cluster.local", ip]);
    assert_eq!(code, 0, "{out}");

    // The wrong fix: hand-label the running CoreDNS pods with the Service's new selector.
    let (k, rt) = kube(&e);
    for p in &coredns {
        let name = p["metadata"]["name"].as_str().unwrap();
        rt.block_on(k.patch(
            &key("v1", "Pod", Some("kube-system"), name),
            PatchType::Merge,
            &json!({"metadata": {"labels": {"app.kubernetes.io/name": "coredns"}}}),
        ))
        .unwrap();
    }
    let (code, r) = check(&e);
    assert_eq!(code, 0, "lookups work again: {r:#}");
    assert!(passed(&r, "toolbox-resolves-web") && passed(&r, "kube-dns-has-endpoints"), "{r:#}");
    let ap = result(&r, "selector-matches-template");
    assert_eq!((ap["role"].as_str(), ap["passed"].as_bool()), (Some("antiPattern"), Some(false)), "{ap:#}");
    let (_, text, _) = builtin(&e, &["check"]);
    assert!(text.contains("WARN [anti-pattern] The Service and the CoreDNS pod template agree on a label"), "{text}");

    // … and why it is one: the next rollout's pods come from the template, without the label.
    rt.block_on(k.patch(
        &key("apps/v1", "Deployment", Some("kube-system"), "coredns"),
        PatchType::Merge,
        &json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}),
    ))
    .unwrap();
    let (code, r) = check(&e);
    assert_eq!(code, 1, "{r:#}");
    assert!(!passed(&r, "toolbox-resolves-web") && !passed(&r, "kube-dns-has-endpoints"), "{r:#}");
    assert!(passed(&r, "coredns-intact"), "the rollout itself completed: {r:#}");

    reset(&e);
    let svc = e.get("v1", "Service", "kube-system", "kube-dns").unwrap();
    assert_eq!(svc["spec"]["selector"], json!({"k8s-app": "kube-dns"}), "{svc:#}");
    let ep = e.get("v1", "Endpoints", "kube-system", "kube-dns").unwrap();
    assert_eq!(ep["subsets"][0]["addresses"].as_array().map(Vec::len), Some(2), "{ep:#}");
}

#[test]
fn coredns_down_relabelling_the_pod_template_is_the_other_accepted_fix() {
    println!("{TIER_DNS}");
    let e = lab();
    let (code, out, err) = builtin(&e, &["drill", "coredns-down"]);
    assert_eq!(code, 0, "{out}{err}");
    let old_pods: Vec<String> = e
        .fake()
        .list("v1", "Pod")
        .iter()
        .filter(|p| p["metadata"]["namespace"] == "kube-system")
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let (k, rt) = kube(&e);
    rt.block_on(k.patch(
        &key("apps/v1", "Deployment", Some("kube-system"), "coredns"),
        PatchType::Merge,
        &json!({"spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": "coredns"}}}}}),
    ))
    .unwrap();
    let new_pods: Vec<Value> =
        e.fake().list("v1", "Pod").into_iter().filter(|p| p["metadata"]["namespace"] == "kube-system").collect();
    assert_eq!(new_pods.len(), 2, "{new_pods:#?}");
    for p in &new_pods {
        assert!(!old_pods.contains(&p["metadata"]["name"].as_str().unwrap().to_string()), "a rollout: {p:#}");
        assert_eq!(p["metadata"]["labels"]["app.kubernetes.io/name"], "coredns", "{p:#}");
    }
    every_check_passes(&e);
    reset(&e);
}

// ------------------------------------------------------------------------------------ opt-in

#[test]
fn without_the_model_the_fake_server_runs_no_controllers_and_no_network() {
    println!("tier: fake API server (cluster model off)");
    let e = Env::new(Backend::Fake, &GOOD).unwrap();
    let (k, rt) = kube(&e);
    rt.block_on(k.apply(&json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "busybox"}]}}}})))
    .unwrap();
    rt.block_on(
        k.apply(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]}})),
    )
    .unwrap();
    assert!(e.fake().list("apps/v1", "ReplicaSet").is_empty());
    assert!(e.fake().list("v1", "Pod").is_empty());
    assert!(e.fake().list("v1", "Endpoints").is_empty());
    assert!(e.get("v1", "Service", "default", "web").unwrap()["spec"].get("clusterIP").is_none());
    assert!(e.fake().network_log().is_empty());
    // The same objects with the model on: a ReplicaSet, a running pod, endpoints, a ClusterIP.
    e.fake().model_cluster();
    rt.block_on(k.delete(&key("v1", "Service", Some("default"), "web"))).unwrap();
    rt.block_on(
        k.apply(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]}})),
    )
    .unwrap();
    assert_eq!(
        e.fake().list("apps/v1", "ReplicaSet").iter().filter(|r| r["metadata"]["namespace"] == "default").count(),
        1
    );
    let ep = e.get("v1", "Endpoints", "default", "web").unwrap();
    assert_eq!(ep["subsets"][0]["ports"], json!([{"port": 8080, "protocol": "TCP"}]), "{ep:#}");
    assert!(
        e.get("v1", "Service", "default", "web").unwrap()["spec"]["clusterIP"].as_str().unwrap().starts_with("10.96.")
    );
}

/// `klab check` exits 0 and every check passes: user, cause, and no anti-pattern fires.
fn every_check_passes(e: &Env) {
    let (code, r) = check(e);
    assert_eq!(code, 0, "{r:#}");
    assert!(r["results"].as_array().unwrap().iter().all(|c| c["passed"] == true), "no anti-pattern either: {r:#}");
}

/// `klab reset` of the built-in drill succeeds.
fn reset(e: &Env) {
    let (code, out, err) = builtin(e, &["reset"]);
    assert_eq!(code, 0, "{out}{err}");
}
