// tier: real kube-apiserver v1.20.2 + real etcd on loopback (ci/apiserver/up); skipped with a printed reason when KLAB_REAL_APISERVER_KUBECONFIG is unset
//! klab against a real API server (no kubelet, no controller-manager: only the API):
//! - the lab commands end to end, the same flows as `tests/lab_fake.rs` (shared in
//!   `testkit/src/lab_env.rs`), with the node side still the fake `docker`/`kind` on PATH;
//! - kube-rs plumbing through klab as a library: discovery, apply, patches, selectors, and
//!   the apiserver's own errors (404, 409, 422, 403) and audit log.
//!
//! Run: `eval "$(ci/apiserver/up)"; cargo test --test real_apiserver -- --nocapture;
//! ci/apiserver/down`. The cluster is shared: the tests take a process-wide lock.

use klab_testkit::lab_env;

use klab::cluster::kube::{Kube, KubeError};
use klab::scenario::kinds::PatchType;
use lab_env::{Backend, Env, GOOD, REAL_AUDIT_LOG_VAR, flows, key, real_kubeconfig};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NS: &str = "klab-plumbing";
const TEST_LABEL: &str = "klab.dev/test";

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    println!("{what}: {:.1}s", t.elapsed().as_secs_f64());
    r
}

// ----- the lab flows, against the real apiserver ---------------------------------------------

#[test]
fn drill_check_solve_check_reset_restores_everything() {
    timed("drill → check → solve → check → reset", || {
        flows::drill_check_solve_check_reset_restores_everything(Backend::Real)
    });
}

#[test]
fn a_crash_at_every_step_boundary_is_undone_by_reset() {
    timed("24 crashes + resets", || flows::a_crash_at_every_step_boundary_is_undone_by_reset(Backend::Real));
}

#[test]
fn a_drill_cannot_start_while_another_is_injected() {
    flows::a_drill_cannot_start_while_another_is_injected(Backend::Real);
}

#[test]
fn the_guard_refuses_clusters_klab_did_not_create() {
    timed("guard refusals", || flows::the_guard_refuses_clusters_klab_did_not_create(Backend::Real));
}

#[test]
fn a_context_that_now_points_elsewhere_is_refused() {
    flows::a_context_that_now_points_elsewhere_is_refused(Backend::Real);
}

/// A drill whose setup *creates* its namespace. On a real cluster deleting a namespace is
/// asynchronous (the namespace controller empties it, then drops its finalizer); klab's `reset`
/// must wait until it is gone, or the next drill into it gets 403 "being terminated". No
/// controller-manager runs here, so a stand-in plays the namespace controller.
#[test]
fn a_namespace_created_by_the_drill_is_gone_after_reset() {
    let Some(e) = Env::new(Backend::Real, &GOOD) else { return };
    let ns = format!("klab-fresh-{}", std::process::id());
    let set = format!("ns={ns}");
    let before = e.world();
    let controller = lab_env::NamespaceController::start(&e.kubeconfig, &e.context, &[&ns]);
    for round in 1..=2 {
        let (code, text) = e.out(&["drill", "crash-course", "--set", &set]);
        assert_eq!(code, 0, "round {round}: drill into {ns}: {text}");
        assert!(e.get("v1", "Namespace", "", &ns).is_some());
        let t = Instant::now();
        let (code, text) = e.out(&["reset"]);
        assert_eq!(code, 0, "round {round}: {text}");
        println!(
            "round {round}: reset of a drill that created namespace {ns}: {:.1}s\n{text}",
            t.elapsed().as_secs_f64()
        );
        assert!(e.get("v1", "Namespace", "", &ns).is_none(), "round {round}: reset returned before {ns} was gone");
        lab_env::assert_same(
            &before,
            &e.world(),
            &format!("round {round}: reset of a drill that created its namespace"),
        );
    }
    assert_eq!(controller.stop(), 2, "the stand-in finalized the namespace once per reset");
}

// ----- kube-rs plumbing through klab as a library ----------------------------------------------

struct Plumbing {
    _lock: std::sync::MutexGuard<'static, ()>,
    kubeconfig: PathBuf,
    rt: tokio::runtime::Runtime,
    kube: Kube,
}

fn plumbing(test: &str) -> Option<Plumbing> {
    let kubeconfig = real_kubeconfig(test)?;
    let lock = lab_env::real_lock();
    let rt = lab_env::rt();
    let kube = rt
        .block_on(Kube::connect(Some(&kubeconfig), "kind-klab"))
        .unwrap_or_else(|e| panic!("Kube::connect(kind-klab): {e}"));
    rt.block_on(async {
        lab_env::ensure_namespace(&kube, NS).await;
        for (av, kind) in [("v1", "ConfigMap"), ("v1", "Service"), ("apps/v1", "Deployment")] {
            for o in kube.list(av, kind, Some(NS), Some(TEST_LABEL), None).await.expect("list leftovers") {
                let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap().to_string();
                kube.delete(&key(av, kind, Some(NS), &name)).await.expect("delete leftover");
            }
        }
    });
    Some(Plumbing { _lock: lock, kubeconfig, rt, kube })
}

fn uniq(base: &str) -> String {
    format!("{base}-{}-{}", std::process::id(), fastrand::u32(..) % 100_000)
}

fn cm(name: &str, labels: Value, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": NS, "labels": labels}, "data": data})
}

#[test]
fn discovery_resolves_core_apps_networking_and_policy_v1beta1() {
    let Some(p) = plumbing("discovery") else { return };
    p.rt.block_on(async {
        let (minor, git) = p.kube.server_version().await.expect("version");
        assert_eq!((minor.as_str(), git.as_str()), ("1.20", "v1.20.2"));
        // Each group through klab's discovery-based dynamic objects.
        assert!(p.kube.get(&key("v1", "Namespace", None, "kube-system")).await.unwrap().is_some());
        assert!(p.kube.get(&key("v1", "Service", Some("default"), "kubernetes")).await.unwrap().is_some());
        p.kube.list("apps/v1", "Deployment", Some(NS), None, None).await.expect("apps/v1 Deployment");
        p.kube.list("networking.k8s.io/v1", "NetworkPolicy", Some(NS), None, None).await.expect("NetworkPolicy");
        p.kube.list("rbac.authorization.k8s.io/v1", "ClusterRole", None, None, None).await.expect("ClusterRole");
        // PodSecurityPolicy exists on 1.20 (policy/v1beta1, cluster-scoped): as an untyped object.
        let psp_name = uniq("klab-test-psp");
        let psp = json!({"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy",
            "metadata": {"name": psp_name, "labels": {TEST_LABEL: "true"}},
            "spec": {"privileged": false, "seLinux": {"rule": "RunAsAny"}, "runAsUser": {"rule": "MustRunAsNonRoot"},
                     "supplementalGroups": {"rule": "RunAsAny"}, "fsGroup": {"rule": "RunAsAny"}, "volumes": ["configMap", "secret"]}});
        let created = p.kube.create(&psp).await.expect("create PodSecurityPolicy");
        assert_eq!(created.pointer("/spec/runAsUser/rule"), Some(&json!("MustRunAsNonRoot")));
        let k = key("policy/v1beta1", "PodSecurityPolicy", None, &psp_name);
        assert!(p.kube.get(&k).await.unwrap().is_some());
        let listed = p.kube.list("policy/v1beta1", "PodSecurityPolicy", None, Some(TEST_LABEL), None).await.unwrap();
        assert!(listed.iter().any(|o| o.pointer("/metadata/name") == Some(&json!(psp_name))), "{listed:?}");
        assert!(listed.iter().all(|o| o["kind"] == "PodSecurityPolicy" && o["apiVersion"] == "policy/v1beta1"));
        assert!(p.kube.delete(&k).await.unwrap());
        // Kinds 1.20 does not serve: a clear UnknownKind, not a 404 on an object.
        for (av, kind) in [("policy/v1", "PodDisruptionBudget"), ("batch/v1", "CronJob"), ("v1", "NoSuchKind")] {
            let err = p.kube.get(&key(av, kind, Some(NS), "x")).await.unwrap_err();
            assert!(matches!(err, KubeError::UnknownKind(_)), "{av} {kind}: {err:?}");
        }
    });
}

#[test]
fn apply_creates_then_updates_and_patches_merge_json_strategic() {
    let Some(p) = plumbing("apply/patch") else { return };
    p.rt.block_on(async {
        let name = uniq("klab-test-cm");
        let k = key("v1", "ConfigMap", Some(NS), &name);
        let first = p.kube.apply(&cm(&name, json!({TEST_LABEL: "true"}), json!({"a": "1"}))).await.expect("create");
        let rv1: u64 = first.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap().parse().unwrap();
        let uid = first.pointer("/metadata/uid").cloned().unwrap();
        // apply again (update): an object as read back, with server fields, is accepted too.
        let mut again = first.clone();
        again["data"] = json!({"a": "2", "b": "x"});
        let second = p.kube.apply(&again).await.expect("update");
        let rv2: u64 = second.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap().parse().unwrap();
        assert!(rv2 > rv1, "{rv1} → {rv2}");
        assert_eq!(second.pointer("/metadata/uid"), Some(&uid), "updated in place, not recreated");
        assert_eq!(second["data"], json!({"a": "2", "b": "x"}));
        // merge patch: null deletes a key
        let m = p.kube.patch(&k, PatchType::Merge, &json!({"data": {"b": null, "c": "3"}})).await.expect("merge");
        assert_eq!(m["data"], json!({"a": "2", "c": "3"}));
        // JSON patch: test + replace + add
        let j = p
            .kube
            .patch(
                &k,
                PatchType::Json,
                &json!([{"op": "test", "path": "/data/a", "value": "2"},
                        {"op": "replace", "path": "/data/a", "value": "9"},
                        {"op": "add", "path": "/metadata/labels/extra", "value": "yes"}]),
            )
            .await
            .expect("json patch");
        assert_eq!(j.pointer("/data/a"), Some(&json!("9")));
        assert_eq!(j.pointer("/metadata/labels/extra"), Some(&json!("yes")));
        // A failing JSON-patch `test` is the apiserver's 422, message kept.
        let err = p
            .kube
            .patch(&k, PatchType::Json, &json!([{"op": "test", "path": "/data/a", "value": "nope"}]))
            .await
            .unwrap_err();
        match &err {
            // 1.20's own words for a failed `test` op (the same through curl).
            KubeError::Api { code: 422, reason, message } => {
                assert_eq!(reason, "Invalid");
                assert_eq!(message, "the server rejected our request due to an error in our request");
            }
            other => panic!("failing JSON-patch test: {other:?}"),
        }
        // strategic merge on a Deployment: containers merge by name.
        let dname = uniq("klab-test-deploy");
        let dk = key("apps/v1", "Deployment", Some(NS), &dname);
        p.kube
            .apply(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": dname, "namespace": NS, "labels": {TEST_LABEL: "true"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": dname}},
                         "template": {"metadata": {"labels": {"app": dname}},
                                      "spec": {"containers": [{"name": "web", "image": "busybox:1", "command": ["httpd", "-f"]},
                                                              {"name": "side", "image": "busybox:1"}]}}}}))
            .await
            .expect("create deployment");
        let s = p
            .kube
            .patch(
                &dk,
                PatchType::Strategic,
                &json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "busybox:2"}]}}}}),
            )
            .await
            .expect("strategic");
        let cs = s.pointer("/spec/template/spec/containers").and_then(Value::as_array).unwrap();
        assert_eq!(cs.len(), 2, "strategic merge kept the other container: {cs:?}");
        assert_eq!(cs[0]["image"], "busybox:2");
        assert_eq!(cs[0]["command"], json!(["httpd", "-f"]));
        assert!(p.kube.delete(&dk).await.unwrap());
        assert!(p.kube.delete(&k).await.unwrap());
    });
}

/// `Kube::apply` is "create, or replace what is there"; given an object as read back (with
/// resourceVersion, uid, …) that no longer exists, the create carries the resourceVersion and
/// the real apiserver would refuse it (500 "resourceVersion should not be set on objects to be
/// created"): `apply` strips the server's fields on its create path.
#[test]
fn apply_recreates_a_read_back_object_that_is_gone() {
    let Some(p) = plumbing("apply read-back") else { return };
    p.rt.block_on(async {
        let name = uniq("klab-test-readback");
        let k = key("v1", "ConfigMap", Some(NS), &name);
        let read_back = p.kube.create(&cm(&name, json!({TEST_LABEL: "true"}), json!({"a": "1"}))).await.unwrap();
        assert!(p.kube.delete(&k).await.unwrap());
        let back = p.kube.apply(&read_back).await;
        let _ = p.kube.delete(&k).await;
        assert!(back.is_ok(), "apply of a read-back object that no longer exists: {back:?}");
    });
}

#[test]
fn label_and_field_selectors_are_the_servers() {
    let Some(p) = plumbing("selectors") else { return };
    p.rt.block_on(async {
        let tag = uniq("sel");
        let names: Vec<String> = (0..4).map(|i| format!("klab-test-{tag}-{i}")).collect();
        let tiers = ["a", "b", "c", "a"];
        for (n, t) in names.iter().zip(tiers) {
            p.kube.create(&cm(n, json!({TEST_LABEL: "true", "run": tag, "tier": t}), json!({}))).await.unwrap();
        }
        let sel = |s: String| {
            let kube = p.kube.clone();
            async move {
                let mut v: Vec<String> = kube
                    .list("v1", "ConfigMap", Some(NS), Some(&s), None)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"))
                    .iter()
                    .map(|o| o.pointer("/metadata/name").and_then(Value::as_str).unwrap().to_string())
                    .collect();
                v.sort();
                v
            }
        };
        assert_eq!(sel(format!("run={tag},tier=a")).await, vec![names[0].clone(), names[3].clone()]);
        assert_eq!(sel(format!("run={tag},tier in (b,c)")).await, vec![names[1].clone(), names[2].clone()]);
        assert_eq!(sel(format!("run={tag},tier!=a")).await, vec![names[1].clone(), names[2].clone()]);
        assert_eq!(sel(format!("run={tag},!tier")).await, Vec::<String>::new());
        let by_field = p
            .kube
            .list(
                "v1",
                "ConfigMap",
                Some(NS),
                Some(&format!("run={tag}")),
                Some(&format!("metadata.name={}", names[2])),
            )
            .await
            .unwrap();
        assert_eq!(by_field.len(), 1);
        // A malformed selector is the apiserver's 400, not a panic or an empty list.
        let err = p.kube.list("v1", "ConfigMap", Some(NS), Some("tier in (a"), None).await.unwrap_err();
        assert!(matches!(err, KubeError::Api { code: 400, .. }), "{err:?}");
        for n in &names {
            p.kube.delete(&key("v1", "ConfigMap", Some(NS), n)).await.unwrap();
        }
    });
}

#[test]
fn not_found_conflict_and_invalid_keep_the_apiservers_words() {
    let Some(p) = plumbing("errors") else { return };
    p.rt.block_on(async {
        // 404
        let missing = key("v1", "ConfigMap", Some(NS), "klab-test-never-there");
        assert_eq!(p.kube.get(&missing).await.unwrap(), None);
        assert!(!p.kube.delete(&missing).await.unwrap(), "deleting a missing object is Ok(false)");
        let err = p.kube.patch(&missing, PatchType::Merge, &json!({"data": {"a": "b"}})).await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert!(err.to_string().contains(r#"configmaps "klab-test-never-there" not found"#), "{err}");
        // 409 AlreadyExists
        let name = uniq("klab-test-dup");
        p.kube.create(&cm(&name, json!({TEST_LABEL: "true"}), json!({}))).await.unwrap();
        let err = p.kube.create(&cm(&name, json!({TEST_LABEL: "true"}), json!({}))).await.unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
        assert_eq!(
            err,
            KubeError::Api {
                code: 409,
                reason: "AlreadyExists".into(),
                message: format!(r#"configmaps "{name}" already exists"#)
            }
        );
        // 409 Conflict: a stale resourceVersion in a JSON-merge patch.
        let err = p
            .kube
            .patch(
                &key("v1", "ConfigMap", Some(NS), &name),
                PatchType::Merge,
                &json!({"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}}),
            )
            .await
            .unwrap_err();
        match &err {
            KubeError::Api { code: 409, reason, message } => {
                assert_eq!(reason, "Conflict");
                assert!(message.contains("the object has been modified"), "{message}");
            }
            other => panic!("stale resourceVersion: {other:?}"),
        }
        p.kube.delete(&key("v1", "ConfigMap", Some(NS), &name)).await.unwrap();
        // 422 Invalid: the message is exactly what the apiserver says (checked with curl).
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "klab-test-bad-svc", "namespace": NS, "labels": {TEST_LABEL: "true"}},
            "spec": {"type": "ClusterIP", "ports": [{"port": 0, "targetPort": 8080, "protocol": "TCP"}]}});
        let err = p.kube.create(&svc).await.unwrap_err();
        let KubeError::Api { code, reason, message } = &err else { panic!("invalid Service: {err:?}") };
        assert_eq!((*code, reason.as_str()), (422, "Invalid"), "{err}");
        let raw = curl(&p.kubeconfig, "POST", &format!("/api/v1/namespaces/{NS}/services"), Some(&svc), false);
        assert_eq!(raw["code"], 422, "{raw}");
        assert_eq!(message, raw["message"].as_str().unwrap(), "klab's message is the apiserver's, verbatim");
        assert!(
            message.contains(r#"Service "klab-test-bad-svc" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"#),
            "{message}"
        );
        assert!(err.to_string().contains(message.as_str()), "Display keeps it: {err}");
    });
}

#[test]
fn rbac_forbidden_for_a_user_without_rights_keeps_the_message() {
    let Some(p) = plumbing("rbac") else { return };
    let name = uniq("klab-test-secret-cm");
    p.rt.block_on(p.kube.create(&cm(&name, json!({TEST_LABEL: "true"}), json!({"k": "v"})))).unwrap();
    let nobody =
        p.rt.block_on(Kube::connect(Some(&p.kubeconfig), "kind-klab-nobody"))
            .expect("connect as nobody (connecting reads nothing)");
    p.rt.block_on(async {
        let err = nobody.get(&key("v1", "ConfigMap", Some(NS), &name)).await.unwrap_err();
        let expected = format!(
            r#"configmaps "{name}" is forbidden: User "klab-nobody" cannot get resource "configmaps" in API group "" in the namespace "{NS}""#
        );
        assert_eq!(err, KubeError::Api { code: 403, reason: "Forbidden".into(), message: expected.clone() });
        assert!(err.to_string().contains(&expected), "{err}");
        let err = nobody.list("v1", "Node", None, None, None).await.unwrap_err();
        assert!(
            matches!(&err, KubeError::Api { code: 403, message, .. } if message == r#"nodes is forbidden: User "klab-nobody" cannot list resource "nodes" in API group "" at the cluster scope"#),
            "{err:?}"
        );
        let err = nobody.create(&cm(&uniq("klab-test-nope"), json!({}), json!({}))).await.unwrap_err();
        assert!(matches!(&err, KubeError::Api { code: 403, .. }), "{err:?}");
        // klab's own guard read, as this user, is refused with the server's reason too.
        let err = klab::cluster::lab::cluster_uid(&nobody).await.unwrap_err();
        assert!(err.to_string().contains(r#"User "klab-nobody" cannot get resource "namespaces""#), "{err}");
        p.kube.delete(&key("v1", "ConfigMap", Some(NS), &name)).await.unwrap();
    });
}

#[test]
fn the_audit_log_records_the_tests_writes() {
    let Some(p) = plumbing("audit") else { return };
    let Some(log) = std::env::var_os(REAL_AUDIT_LOG_VAR).map(PathBuf::from) else {
        panic!("{REAL_AUDIT_LOG_VAR} is unset while the kubeconfig is set: run `eval \"$(ci/apiserver/up)\"`");
    };
    let name = uniq("klab-test-audited");
    let k = key("v1", "ConfigMap", Some(NS), &name);
    // Only what this test wrote: the log from here on.
    let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    p.rt.block_on(async {
        p.kube.create(&cm(&name, json!({TEST_LABEL: "true"}), json!({"a": "1"}))).await.unwrap();
        p.kube.apply(&cm(&name, json!({TEST_LABEL: "true"}), json!({"a": "2"}))).await.unwrap();
        p.kube.patch(&k, PatchType::Merge, &json!({"data": {"a": "3"}})).await.unwrap();
        p.kube.delete(&k).await.unwrap();
        let nobody = Kube::connect(Some(&p.kubeconfig), "kind-klab-nobody").await.unwrap();
        let _ = nobody.create(&cm(&name, json!({}), json!({}))).await.unwrap_err();
    });
    let want: &[(&str, &str, u64)] = &[
        ("klab-admin", "create", 201),
        ("klab-admin", "update", 200),
        ("klab-admin", "patch", 200),
        ("klab-admin", "delete", 200),
        ("klab-nobody", "create", 403),
    ];
    let start = Instant::now();
    loop {
        let events = audit_events(&log, offset);
        let missing: Vec<_> = want
            .iter()
            .filter(|(user, verb, code)| {
                !events.iter().any(|e| {
                    // A refused create names no object (the name is in the body, never read).
                    (e["objectRef"]["name"] == name.as_str() || *code == 403)
                        && e["user"]["username"] == *user
                        && e["verb"] == *verb
                        && e["objectRef"]["resource"] == "configmaps"
                        && e["objectRef"]["namespace"] == NS
                        && e["responseStatus"]["code"] == *code
                })
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "audit log {} lacks {missing:?} for configmap {name}; it has {events:#?}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ResponseComplete events written after `offset`.
fn audit_events(log: &Path, offset: u64) -> Vec<Value> {
    let bytes = std::fs::read(log).unwrap_or_default();
    let tail = bytes.get(offset as usize..).unwrap_or_default();
    String::from_utf8_lossy(tail)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete" && e["objectRef"]["resource"] == "configmaps")
        .collect()
}

/// The apiserver's raw answer (admin, or the no-rights user), without kube-rs in the way.
fn curl(kubeconfig: &Path, method: &str, path: &str, body: Option<&Value>, nobody: bool) -> Value {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let kc: Value = serde_saphyr::from_str(&text).unwrap();
    let cluster = &kc["clusters"][0]["cluster"];
    let server = cluster["server"].as_str().unwrap();
    let user = if nobody { "kind-klab-nobody" } else { "kind-klab" };
    let token = kc["users"].as_array().unwrap().iter().find(|u| u["name"] == user).unwrap()["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster["certificate-authority-data"].as_str().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca).unwrap();
    let mut c = std::process::Command::new("curl");
    c.args(["-sS", "--max-time", "15", "-X", method, "--cacert"]).arg(dir.path().join("ca.crt")).args([
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        "Content-Type: application/json",
    ]);
    if let Some(b) = body {
        c.args(["--data-binary", &b.to_string()]);
    }
    let o = c.arg(format!("{server}{path}")).output().expect("curl");
    assert!(o.status.success(), "curl: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn a_kubeconfig_context_that_does_not_exist_is_a_clear_error() {
    let Some(p) = plumbing("context") else { return };
    let err = p.rt.block_on(Kube::connect(Some(&p.kubeconfig), "kind-klab-nope")).err().expect("no such context");
    assert!(err.to_string().contains("kind-klab-nope"), "{err}");
}

/// `klab selftest` on the real apiserver (fake nodes): the snapshot reads every type a 1.20
/// server serves and passes over those it does not (batch/v1 CronJob, admission policies), a
/// working drill passes all nine phases, and a fault reset cannot take back is caught.
#[test]
fn selftest_proves_a_drill_and_catches_a_leak_on_the_real_apiserver() {
    let Some(e) = Env::new(Backend::Real, &GOOD) else { return };
    let controller = lab_env::NamespaceController::start(&e.kubeconfig, &e.context, &["st"]);
    let cat = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/selftest");
    let o = timed("selftest st-good st-leaky", || {
        e.klab(&[
            "--catalog",
            cat.to_str().unwrap(),
            "-o",
            "json",
            "selftest",
            "st-good",
            "st-leaky",
            "--keep-going",
            "--settle",
            "15s",
        ])
        .output()
        .unwrap()
    });
    let stderr = String::from_utf8_lossy(&o.stderr);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|err| panic!("{err}: {stderr}"));
    assert_eq!(o.status.code(), Some(1), "{r:#}\n{stderr}");
    let runs = r["scenarios"].as_array().unwrap();
    assert_eq!(runs[0]["status"], "passed", "{:#}\n{stderr}", runs[0]);
    assert_eq!(runs[1]["status"], "failed");
    let clean = runs[1]["phases"].as_array().unwrap().iter().find(|p| p["name"] == "clean").unwrap();
    let ev = clean["evidence"].to_string();
    assert!(ev.contains("sysctl net.ipv6.conf.all.forwarding: 1 → 0"), "{clean:#}");
    assert!(e.get("v1", "Namespace", "", "st").is_none(), "reset removed the drill's namespace");
    controller.stop();
}
