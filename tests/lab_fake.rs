// tier: fake API server (in-process, real kube-rs HTTP) + fake `docker`/`kind` on PATH; no cluster.
//! The lab commands end to end: drill → check → solve → check → reset, the guard, and the
//! journal's promise — a crash at any step boundary of an injection, then `reset`, leaves the
//! cluster and the nodes exactly as they were.

mod support;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use support::FakeApiServer;

const ETCD_MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n  - name: etcd\n    image: registry.k8s.io/etcd:3.5.15-0\n    command:\n    - etcd\n    - --data-dir=/var/lib/etcd\n    - --listen-client-urls=https://127.0.0.1:2379\n";

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    api: FakeApiServer,
    kubeconfig: PathBuf,
}

fn env_with(context: &str, marker: bool, provider: &str) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let api = FakeApiServer::start();
    api.auto_run_pods(true);
    let kubeconfig = api.kubeconfig_named(&root, context, context, context);
    if marker {
        api.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "klab-lab", "namespace": "kube-system", "labels": {"klab.dev/lab": "true"}}, "data": {"lab": "klab"}}));
    }
    api.put(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "klab-control-plane", "labels": {"node-role.kubernetes.io/control-plane": ""}}, "spec": {"providerID": provider}}));
    api.put(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.1"}}));
    api.put(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"}, "spec": {"clusterIP": "10.96.0.10"}}));
    let docker = root.join("docker");
    let node = docker.join("nodes/klab-control-plane");
    std::fs::create_dir_all(node.join("root/etc/kubernetes/manifests")).unwrap();
    std::fs::write(node.join("root/etc/kubernetes/manifests/etcd.yaml"), ETCD_MANIFEST).unwrap();
    std::fs::write(node.join("sysctl.json"), r#"{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1", "net.ipv4.conf.all.rp_filter": "1"}"#).unwrap();
    std::fs::write(docker.join("nodes.json"), r#"[{"name": "klab-control-plane", "role": "control-plane", "cluster": "klab"}]"#).unwrap();
    std::fs::write(docker.join("clusters"), "klab\n").unwrap();
    std::fs::create_dir_all(root.join("state")).unwrap();
    Env { _tmp: tmp, root, api, kubeconfig }
}

fn env() -> Env {
    env_with("kind-klab", true, "kind://docker/klab/klab-control-plane")
}

impl Env {
    fn klab(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = cargo_bin_cmd!("klab");
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/bin");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        c.args(["--color", "never"])
            .args(args)
            .env("PATH", path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KLAB_STATE_DIR", self.root.join("state"))
            .env("KLAB_FAKE_DOCKER", self.root.join("docker"))
            .env("KLAB_CATALOG", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labs"))
            .env_remove("KLAB_LAB")
            .env_remove("KLAB_TEST_CRASH_AT");
        c
    }

    /// Everything that must come back after `reset`: the API's objects and the nodes' state.
    fn world(&self) -> (Vec<Value>, Value) {
        let objects = self.api.snapshot();
        let node = self.root.join("docker/nodes/klab-control-plane");
        let read = |p: &str| std::fs::read_to_string(node.join(p)).unwrap_or_default();
        let mut etcd: Value = serde_json::from_str(&read("etcd.json")).unwrap_or(json!({}));
        if let Some(o) = etcd.as_object_mut() {
            o.remove("revision");
        }
        let nodes = json!({
            "sysctl": serde_json::from_str::<Value>(&read("sysctl.json")).unwrap(),
            "manifest": read("root/etc/kubernetes/manifests/etcd.yaml"),
            "kubelet": read("kubelet"),
            "etcdKeys": etcd.get("keys").cloned().unwrap_or(json!({})),
            "etcdAlarms": etcd.get("alarms").cloned().unwrap_or(json!([])),
            "etcdGarbage": etcd.get("garbage").cloned().unwrap_or(json!(0)),
            "files": std::fs::read_dir(node.join("root/etc/kubernetes")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect::<Vec<_>>(),
        });
        (objects, nodes)
    }

    fn out(&self, args: &[&str]) -> (i32, String) {
        let o = self.klab(args).output().unwrap();
        (o.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }
}

fn assert_same(before: &(Vec<Value>, Value), after: &(Vec<Value>, Value), what: &str) {
    assert_eq!(before.1, after.1, "{what}: node state differs");
    let b: Vec<String> = before.0.iter().map(|v| v.to_string()).collect();
    let a: Vec<String> = after.0.iter().map(|v| v.to_string()).collect();
    for x in &b {
        assert!(a.contains(x), "{what}: lost or changed object {x}\nafter: {a:#?}");
    }
    for x in &a {
        assert!(b.contains(x), "{what}: leaked object {x}");
    }
}

#[test]
fn drill_check_solve_check_reset_restores_everything() {
    let e = env();
    let before = e.world();
    let (code, text) = e.out(&["drill", "crash-course"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("NOSPACE") || text.contains("database space exceeded"), "{text}");
    // The faults are live: objects, sysctls, manifest, etcd.
    let np = e.api.get("networking.k8s.io/v1", "NetworkPolicy", "shop", "deny-wip");
    assert!(np.is_some());
    assert!(e.api.get("v1", "ConfigMap", "shop", "app-config").is_none());
    let (code, text) = e.out(&["check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL [user] IPv4 forwarding is on — net.ipv4.ip_forward = 0 on klab-control-plane"), "{text}");
    assert!(text.contains("etcd alarm raised: NOSPACE"), "{text}");
    let (code, text) = e.out(&["solve"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = e.out(&["check", "-o", "json"]);
    assert_eq!(code, 0, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["fixed"], true);
    let (code, text) = e.out(&["reset"]);
    assert_eq!(code, 0, "{text}");
    assert_same(&before, &e.world(), "after drill+solve+reset");
    let (code, text) = e.out(&["reset"]);
    assert_eq!(code, 0, "a second reset is a no-op: {text}");
    assert!(text.contains("nothing to undo"), "{text}");
}

#[test]
fn a_crash_at_every_step_boundary_is_undone_by_reset() {
    // 1 setup step + 7 faults = 8 intents; each can die after its intent, its act, its done.
    let mut runs = 0;
    for seq in 1..=8 {
        for point in ["intent", "act", "done"] {
            let e = env();
            let before = e.world();
            let o = e.klab(&["drill", "crash-course"]).env("KLAB_TEST_CRASH_AT", format!("{seq}:{point}")).output().unwrap();
            assert!(!o.status.success(), "{seq}:{point}: the crash hook did not fire");
            let (code, text) = e.out(&["status"]);
            assert_eq!(code, 0, "{text}");
            let (code, text) = e.out(&["reset"]);
            assert_eq!(code, 0, "{seq}:{point}: reset failed: {text}");
            assert_same(&before, &e.world(), &format!("crash at {seq}:{point}"));
            runs += 1;
        }
    }
    assert_eq!(runs, 24);
}

#[test]
fn a_drill_cannot_start_while_another_is_injected() {
    let e = env();
    assert_eq!(e.out(&["drill", "crash-course"]).0, 0);
    let (code, text) = e.out(&["drill", "crash-course"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("run `klab reset` first"), "{text}");
    assert_eq!(e.out(&["reset"]).0, 0);
}

#[test]
fn the_guard_refuses_clusters_klab_did_not_create() {
    let e = env_with("kind-klab", false, "kind://docker/klab/klab-control-plane");
    let before = e.world();
    let (code, text) = e.out(&["drill", "crash-course"]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("no `klab-lab` marker"), "{text}");
    assert_same(&before, &e.world(), "refused drill changed nothing");

    let e = env_with("kind-klab", true, "aws:///eu-west-1a/i-0123");
    let (code, text) = e.out(&["drill", "crash-course"]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("not a kind node"), "{text}");

    let e = env_with("prod-cluster", true, "kind://docker/klab/klab-control-plane");
    let (code, text) = e.out(&["--i-know-context", "prod-cluster", "status"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = e.out(&["check"]);
    assert_eq!(code, 3, "no session yet: {text}");
}

#[test]
fn a_context_that_now_points_elsewhere_is_refused() {
    let e = env();
    assert_eq!(e.out(&["drill", "crash-course"]).0, 0);
    // The lab is recreated behind klab's back: kube-system gets a new UID.
    let ns = e.api.get("v1", "Namespace", "", "kube-system").unwrap();
    e.api.remove("v1", "Namespace", "", "kube-system");
    let mut fresh = ns.clone();
    fresh["metadata"]["uid"] = json!("00000000-0000-4000-8000-000000000000");
    e.api.put(fresh);
    let (code, text) = e.out(&["check"]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("points at another cluster"), "{text}");
}

#[test]
fn an_unreachable_apiserver_fails_checks_with_a_reason_and_reset_still_undoes_node_changes() {
    let e = env();
    let before_nodes = e.world().1;
    assert_eq!(e.out(&["drill", "crash-course"]).0, 0);
    e.api.refuse();
    let (code, text) = e.out(&["check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL [cause] no unfinished deny-all egress policy"), "{text}");
    assert!(text.contains("apiserver"), "{text}");
    let (code, text) = e.out(&["reset"]);
    assert_eq!(code, 5, "object changes cannot be undone without an apiserver: {text}");
    assert!(text.contains("klab reset` again"), "{text}");
    assert_eq!(e.world().1["sysctl"], before_nodes["sysctl"], "node changes were undone: {text}");
    assert_eq!(e.world().1["manifest"], before_nodes["manifest"]);
}
