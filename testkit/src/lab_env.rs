//! The harness of the lab end-to-end tests, shared by two tiers: the CLI (`klab` binary) runs
//! against either the in-process fake API server (`tests/lab_fake.rs`) or a real kube-apiserver
//! v1.20.2 + etcd started by `ci/apiserver/up` (`tests/real_apiserver.rs`). The node side is the
//! fake `docker`/`kind` on PATH (`tests/support/bin/`) in both.
//!
//! The real apiserver is one shared cluster: every real [`Env`] holds a process-wide lock, so
//! the tests of one binary touching it run one after the other. Seeding is idempotent
//! (create-or-fix), so leftovers of an earlier, failed run do not break the next one.

use crate::{FakeApiServer, klab_bin, repo};
use klab::cluster::kube::{Kube, ObjKey};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub const ETCD_MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n  - name: etcd\n    image: registry.k8s.io/etcd:3.5.15-0\n    command:\n    - etcd\n    - --data-dir=/var/lib/etcd\n    - --listen-client-urls=https://127.0.0.1:2379\n";

/// The namespace the test drill (`tests/fixtures/labs/scenarios/crash-course.yaml`) uses.
pub const DRILL_NS: &str = "shop";

/// Where the real tier finds its cluster (printed by `ci/apiserver/up`).
pub const REAL_KUBECONFIG_VAR: &str = "KLAB_REAL_APISERVER_KUBECONFIG";
pub const REAL_AUDIT_LOG_VAR: &str = "KLAB_REAL_APISERVER_AUDIT_LOG";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Fake,
    Real,
}

/// The real apiserver's kubeconfig, or `None` with the reason printed (the test then returns).
pub fn real_kubeconfig(test: &str) -> Option<PathBuf> {
    match std::env::var_os(REAL_KUBECONFIG_VAR).filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            println!(
                "skipped: {test}: {REAL_KUBECONFIG_VAR} is unset (start the tier with `eval \"$(ci/apiserver/up)\"`; ci/test does)"
            );
            None
        }
    }
}

/// Serialises every test of this process that touches the shared real apiserver.
pub fn real_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A small runtime for the harness's own kube-rs calls (the CLI runs as a child process).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Writes a kubeconfig at `dest` that reaches the real apiserver of `source` (admin user, or
/// the no-rights user with `nobody`) under the context name `context`.
pub fn real_kubeconfig_as(source: &Path, dest: &Path, context: &str, nobody: bool) -> PathBuf {
    let text = std::fs::read_to_string(source).unwrap_or_else(|e| panic!("read {}: {e}", source.display()));
    let kc: Value = serde_saphyr::from_str(&text).expect("kubeconfig YAML");
    let cluster = kc["clusters"].as_array().and_then(|c| c.first()).cloned().expect("a cluster");
    let user_name = if nobody { "kind-klab-nobody" } else { "kind-klab" };
    let user = kc["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == user_name))
        .cloned()
        .unwrap_or_else(|| panic!("no user {user_name} in {}", source.display()));
    let out = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster["cluster"]}],
        "users": [{"name": context, "user": user["user"]}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
        "preferences": {},
    });
    std::fs::write(dest, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    dest.to_path_buf()
}

enum Api {
    Fake(FakeApiServer),
    Real { kube: Kube, rt: tokio::runtime::Runtime, _lock: MutexGuard<'static, ()> },
}

/// One lab for one test: a kubeconfig, klab's state folder, the fake nodes, and the API.
pub struct Env {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub kubeconfig: PathBuf,
    pub context: String,
    api: Api,
}

/// What the test asks for: a lab (marker, kind providerID, context `kind-klab`) or a broken one.
pub struct Spec<'a> {
    pub context: &'a str,
    pub marker: bool,
    pub provider: &'a str,
}

pub const GOOD: Spec<'static> =
    Spec { context: "kind-klab", marker: true, provider: "kind://docker/klab/klab-control-plane" };

impl Env {
    /// `None` (with the reason printed) when the real backend is asked for but not configured.
    pub fn new(backend: Backend, spec: &Spec) -> Option<Env> {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let (api, kubeconfig) = match backend {
            Backend::Fake => {
                let api = FakeApiServer::start();
                api.auto_run_pods(true);
                let kubeconfig = api.kubeconfig_named(&root, spec.context, spec.context, spec.context);
                seed_fake(&api, spec);
                (Api::Fake(api), kubeconfig)
            }
            Backend::Real => {
                let source = real_kubeconfig(std::thread::current().name().unwrap_or("lab env"))?;
                let lock = real_lock();
                let kubeconfig = real_kubeconfig_as(&source, &root.join("kubeconfig"), spec.context, false);
                let rt = rt();
                let kube = rt
                    .block_on(Kube::connect(Some(&kubeconfig), spec.context))
                    .unwrap_or_else(|e| panic!("connect to the real apiserver: {e}"));
                rt.block_on(seed_real(&kube, spec));
                (Api::Real { kube, rt, _lock: lock }, kubeconfig)
            }
        };
        seed_nodes(&root);
        Some(Env { _tmp: tmp, root, kubeconfig, context: spec.context.to_string(), api })
    }

    pub fn backend(&self) -> Backend {
        match self.api {
            Api::Fake(_) => Backend::Fake,
            Api::Real { .. } => Backend::Real,
        }
    }

    /// The fake server (fake-only tests).
    pub fn fake(&self) -> &FakeApiServer {
        match &self.api {
            Api::Fake(f) => f,
            Api::Real { .. } => panic!("this test needs the fake API server"),
        }
    }

    /// The harness's own client to the real apiserver (real-only tests).
    pub fn real(&self) -> (&Kube, &tokio::runtime::Runtime) {
        match &self.api {
            Api::Real { kube, rt, .. } => (kube, rt),
            Api::Fake(_) => panic!("this test needs the real apiserver"),
        }
    }

    pub fn klab(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::new(klab_bin());
        let bin = repo().join("tests/support/bin");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        c.args(["--color", "never"])
            .args(args)
            .env("PATH", path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KLAB_STATE_DIR", self.root.join("state"))
            .env("KLAB_FAKE_DOCKER", self.root.join("docker"))
            .env("KLAB_CATALOG", repo().join("tests/fixtures/labs"))
            .env_remove("KLAB_LAB")
            .env_remove("KLAB_TEST_CRASH_AT")
            // The fakes on PATH answer; a developer's Docker settings must not reach past them.
            .env_remove("DOCKER_HOST")
            .env_remove("KLAB_DOCKER")
            .env_remove("KLAB_KIND");
        c
    }

    pub fn out(&self, args: &[&str]) -> (i32, String) {
        let o = self.klab(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        )
    }

    /// One object as the API has it (`ns` empty for cluster-scoped kinds).
    pub fn get(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        match &self.api {
            Api::Fake(f) => f.get(api_version, kind, ns, name),
            Api::Real { kube, rt, .. } => {
                let key = ObjKey {
                    api_version: api_version.into(),
                    kind: kind.into(),
                    namespace: (!ns.is_empty()).then(|| ns.to_string()),
                    name: name.into(),
                };
                rt.block_on(kube.get(&key)).unwrap_or_else(|e| panic!("get {key}: {e}"))
            }
        }
    }

    /// Everything that must come back after `reset`: the API's objects and the nodes' state.
    pub fn world(&self) -> (Vec<Value>, Value) {
        let objects = match &self.api {
            Api::Fake(f) => f.snapshot(),
            Api::Real { kube, rt, .. } => rt.block_on(real_snapshot(kube)),
        };
        (objects, self.node_state())
    }

    pub fn node_state(&self) -> Value {
        let node = self.root.join("docker/nodes/klab-control-plane");
        let read = |p: &str| std::fs::read_to_string(node.join(p)).unwrap_or_default();
        let mut etcd: Value = serde_json::from_str(&read("etcd.json")).unwrap_or(json!({}));
        if let Some(o) = etcd.as_object_mut() {
            o.remove("revision");
        }
        json!({
            "sysctl": serde_json::from_str::<Value>(&read("sysctl.json")).unwrap(),
            "manifest": read("root/etc/kubernetes/manifests/etcd.yaml"),
            "kubelet": read("kubelet"),
            "etcdKeys": etcd.get("keys").cloned().unwrap_or(json!({})),
            "etcdAlarms": etcd.get("alarms").cloned().unwrap_or(json!([])),
            "etcdGarbage": etcd.get("garbage").cloned().unwrap_or(json!(0)),
            "files": std::fs::read_dir(node.join("root/etc/kubernetes")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect::<Vec<_>>(),
        })
    }

    /// "The lab was recreated behind klab's back": the context now reaches a cluster whose
    /// kube-system UID differs from the pinned one. The fake swaps kube-system's UID; a real
    /// apiserver cannot, so the pinned record gets another UID (the same mismatch for klab).
    pub fn change_cluster_identity(&self) {
        match &self.api {
            Api::Fake(f) => {
                let ns = f.get("v1", "Namespace", "", "kube-system").unwrap();
                f.remove("v1", "Namespace", "", "kube-system");
                let mut fresh = ns.clone();
                fresh["metadata"]["uid"] = json!("00000000-0000-4000-8000-000000000000");
                f.put(fresh);
            }
            Api::Real { .. } => {
                let path = self.root.join("state/labs/klab/lab.json");
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let mut rec: Value = serde_json::from_str(&text).unwrap();
                assert!(rec.get("clusterUid").is_some(), "lab record without clusterUid: {rec}");
                rec["clusterUid"] = json!("00000000-0000-4000-8000-000000000000");
                std::fs::write(&path, serde_json::to_string(&rec).unwrap()).unwrap();
            }
        }
    }
}

fn seed_fake(api: &FakeApiServer, spec: &Spec) {
    if spec.marker {
        api.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "klab-lab", "namespace": "kube-system", "labels": {"klab.dev/lab": "true"}}, "data": {"lab": "klab"}}));
    }
    api.put(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "klab-control-plane", "labels": {"node-role.kubernetes.io/control-plane": ""}}, "spec": {"providerID": spec.provider}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
    api.put(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.1"}}));
    api.put(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"}, "spec": {"clusterIP": "10.96.0.10"}}));
}

fn seed_nodes(root: &Path) {
    let docker = root.join("docker");
    let node = docker.join("nodes/klab-control-plane");
    std::fs::create_dir_all(node.join("root/etc/kubernetes/manifests")).unwrap();
    std::fs::write(node.join("root/etc/kubernetes/manifests/etcd.yaml"), ETCD_MANIFEST).unwrap();
    std::fs::write(
        node.join("sysctl.json"),
        r#"{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1", "net.ipv4.conf.all.rp_filter": "1"}"#,
    )
    .unwrap();
    std::fs::write(
        docker.join("nodes.json"),
        r#"[{"name": "klab-control-plane", "role": "control-plane", "cluster": "klab"}]"#,
    )
    .unwrap();
    std::fs::write(docker.join("clusters"), "klab\n").unwrap();
    std::fs::create_dir_all(root.join("state")).unwrap();
}

pub fn key(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjKey {
    ObjKey { api_version: api_version.into(), kind: kind.into(), namespace: ns.map(str::to_string), name: name.into() }
}

/// Makes the real cluster look like a fresh lab of `spec` (idempotent; fixes leftovers).
async fn seed_real(kube: &Kube, spec: &Spec<'_>) {
    let marker = key("v1", "ConfigMap", Some("kube-system"), "klab-lab");
    if spec.marker {
        kube.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "klab-lab", "namespace": "kube-system", "labels": {"klab.dev/lab": "true"}}, "data": {"lab": "klab"}}))
            .await
            .expect("seed marker");
    } else {
        kube.delete(&marker).await.expect("remove marker");
    }
    // spec.providerID cannot change once set: replace the Node when it differs; no other nodes.
    for n in kube.list("v1", "Node", None, None, None).await.expect("list nodes") {
        let name = n.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let provider = n.pointer("/spec/providerID").and_then(Value::as_str).unwrap_or_default();
        if name != "klab-control-plane" || provider != spec.provider {
            kube.delete(&key("v1", "Node", None, &name)).await.expect("delete node");
            wait_gone(kube, &key("v1", "Node", None, &name)).await;
        }
    }
    let node = key("v1", "Node", None, "klab-control-plane");
    if kube.get(&node).await.expect("get node").is_none() {
        kube.create(&json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "klab-control-plane", "labels": {"node-role.kubernetes.io/control-plane": ""}}, "spec": {"providerID": spec.provider}}))
            .await
            .expect("seed node");
    }
    let dns = key("v1", "Service", Some("kube-system"), "kube-dns");
    if kube.get(&dns).await.expect("get kube-dns").is_none() {
        kube.create(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"clusterIP": "10.96.0.10", "selector": {"k8s-app": "kube-dns"},
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}))
            .await
            .expect("seed kube-dns");
    }
    // The drill's namespace exists before the drill (no controller-manager runs here: a deleted
    // namespace would stay Terminating for ever), and holds nothing the drill makes.
    ensure_namespace(kube, DRILL_NS).await;
    for (av, kind) in [("v1", "ConfigMap"), ("networking.k8s.io/v1", "NetworkPolicy")] {
        for o in kube.list(av, kind, Some(DRILL_NS), None, None).await.expect("list leftovers") {
            let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            kube.delete(&key(av, kind, Some(DRILL_NS), name)).await.expect("delete leftover");
        }
    }
}

/// An Active namespace `name`; a Terminating one (left by an earlier run) is finalized first,
/// as the namespace controller would once it is empty.
pub async fn ensure_namespace(kube: &Kube, name: &str) {
    let k = key("v1", "Namespace", None, name);
    let live = kube.get(&k).await.expect("get namespace");
    if live.is_some_and(|ns| ns.pointer("/metadata/deletionTimestamp").is_some()) {
        finalize_namespace(kube, name).await;
    }
    if kube.get(&k).await.expect("get namespace").is_none() {
        kube.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
            .await
            .expect("create namespace");
    }
}

/// Stand-in for the namespace controller (not running here): empties a Terminating namespace,
/// clears its `kubernetes` finalizer through the `finalize` subresource, and lets it go.
pub async fn finalize_namespace(kube: &Kube, name: &str) {
    use kube::api::{Api, DeleteParams, ListParams, PostParams};
    use kube::core::{ApiResource, DynamicObject};
    let client = kube.client().clone();
    for (av, kind, plural) in [
        ("v1", "ConfigMap", "configmaps"),
        ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        ("v1", "Secret", "secrets"),
        ("v1", "ServiceAccount", "serviceaccounts"),
    ] {
        let (group, version) = av.split_once('/').unwrap_or(("", av));
        let ar = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: av.into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), name, &ar);
        if let Ok(list) = api.list(&ListParams::default()).await {
            for o in list.items {
                let _ = api.delete(o.metadata.name.as_deref().unwrap_or_default(), &DeleteParams::default()).await;
            }
        }
    }
    let nsapi: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    let Some(mut ns) = nsapi.get_opt(name).await.expect("get namespace") else { return };
    if let Some(spec) = ns.spec.as_mut() {
        spec.finalizers = Some(vec![]);
    }
    ns.metadata.managed_fields = None;
    nsapi.replace_subresource("finalize", name, &PostParams::default(), &ns).await.expect("finalize namespace");
    let _ = nsapi.delete(name, &DeleteParams::default()).await;
    wait_gone(kube, &key("v1", "Namespace", None, name)).await;
}

/// A stand-in for the namespace controller (no controller-manager runs on this tier): while it
/// lives, a namespace among `names` that turns Terminating is emptied and finalized, as on a
/// real cluster a few seconds after its deletion.
pub struct NamespaceController {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl NamespaceController {
    pub fn start(kubeconfig: &Path, context: &str, names: &[&str]) -> NamespaceController {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, kubeconfig, context) = (stop.clone(), kubeconfig.to_path_buf(), context.to_string());
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let thread = std::thread::spawn(move || {
            let rt = rt();
            let kube = rt.block_on(Kube::connect(Some(&kubeconfig), &context)).expect("namespace controller: connect");
            let mut finalized = 0;
            while !flag.load(Ordering::SeqCst) {
                for n in &names {
                    let live = rt.block_on(kube.get(&key("v1", "Namespace", None, n))).ok().flatten();
                    if live.is_some_and(|ns| ns.pointer("/metadata/deletionTimestamp").is_some()) {
                        rt.block_on(finalize_namespace(&kube, n));
                        finalized += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            finalized
        });
        NamespaceController { stop, thread: Some(thread) }
    }

    /// Stops it; how many namespaces it finalized.
    pub fn stop(mut self) -> u32 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.take().map(|t| t.join().expect("namespace controller panicked")).unwrap_or(0)
    }
}

impl Drop for NamespaceController {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn wait_gone(kube: &Kube, k: &ObjKey) {
    let start = Instant::now();
    while kube.get(k).await.expect("get").is_some() {
        assert!(start.elapsed() < Duration::from_secs(60), "{k} still there after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Namespaces whose every object is compared (the drill's, and the ones klab and the seed use).
pub const SNAPSHOT_NAMESPACES: &[&str] = &[DRILL_NS, "kube-system", "default"];

/// Kinds left out of snapshots: written by the apiserver itself or computed on read.
const VOLATILE_KINDS: &[&str] = &["Event", "Lease", "ComponentStatus"];

/// Every listable resource of the server (discovered once per process).
async fn listable(kube: &Kube) -> Vec<(kube::core::ApiResource, kube::discovery::ApiCapabilities)> {
    static FOUND: OnceLock<Vec<(kube::core::ApiResource, kube::discovery::ApiCapabilities)>> = OnceLock::new();
    if let Some(f) = FOUND.get() {
        return f.clone();
    }
    let d = kube::discovery::Discovery::new(kube.client().clone()).run().await.expect("discovery");
    let mut out = vec![];
    for g in d.groups() {
        for (ar, caps) in g.recommended_resources() {
            if caps.supports_operation(kube::discovery::verbs::LIST) && !VOLATILE_KINDS.contains(&ar.kind.as_str()) {
                out.push((ar, caps));
            }
        }
    }
    let _ = FOUND.set(out.clone());
    out
}

/// Every object of [`SNAPSHOT_NAMESPACES`] and every cluster-scoped object, server fields and
/// status stripped, sorted: compare before/after.
pub async fn real_snapshot(kube: &Kube) -> Vec<Value> {
    use kube::api::{Api, DynamicObject, ListParams};
    use kube::discovery::Scope;
    let mut out = vec![];
    for (ar, caps) in listable(kube).await {
        let apis: Vec<Api<DynamicObject>> = match caps.scope {
            Scope::Cluster => vec![Api::all_with(kube.client().clone(), &ar)],
            Scope::Namespaced => {
                SNAPSHOT_NAMESPACES.iter().map(|ns| Api::namespaced_with(kube.client().clone(), ns, &ar)).collect()
            }
        };
        for api in apis {
            let list = api
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("list {}/{}: {e}", ar.api_version, ar.kind));
            for o in list.items {
                let mut v = serde_json::to_value(&o).unwrap();
                v["apiVersion"] = json!(ar.api_version);
                v["kind"] = json!(ar.kind);
                klab::cluster::kube::strip_server_fields(&mut v);
                out.push(v);
            }
        }
    }
    out.sort_by_key(|v| v.to_string());
    out
}

pub fn assert_same(before: &(Vec<Value>, Value), after: &(Vec<Value>, Value), what: &str) {
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

/// The end-to-end flows, run by both tiers.
pub mod flows {
    use super::*;

    pub fn drill_check_solve_check_reset_restores_everything(backend: Backend) {
        let Some(e) = Env::new(backend, &GOOD) else { return };
        let before = e.world();
        let (code, text) = e.out(&["drill", "crash-course"]);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("NOSPACE") || text.contains("database space exceeded"), "{text}");
        // The snapshots see the drill (else "reset restores everything" would prove nothing).
        let during = e.world();
        assert_ne!(before.0, during.0, "the object snapshot does not see the drill's changes");
        assert_ne!(before.1, during.1, "the node snapshot does not see the drill's changes");
        // The faults are live: objects, sysctls, manifest, etcd.
        assert!(e.get("networking.k8s.io/v1", "NetworkPolicy", DRILL_NS, "deny-wip").is_some());
        assert!(e.get("v1", "ConfigMap", DRILL_NS, "app-config").is_none());
        let (code, text) = e.out(&["check"]);
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains("FAIL [user] IPv4 forwarding is on — net.ipv4.ip_forward = 0 on klab-control-plane"),
            "{text}"
        );
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

    pub fn a_crash_at_every_step_boundary_is_undone_by_reset(backend: Backend) {
        // 1 setup step + 7 faults = 8 intents; each can die after its intent, its act, its done.
        let cases: Vec<(u32, &str)> =
            (1..=8).flat_map(|seq| ["intent", "act", "done"].into_iter().map(move |p| (seq, p))).collect();
        // Each case is a lab of its own. On the fake API server they run side by side (most of a
        // case is waiting for klab processes); the real apiserver's labs take turns (`Env::new`
        // holds its lock), so one worker there.
        let workers = match backend {
            Backend::Fake => 4,
            Backend::Real => 1,
        };
        let next = std::sync::atomic::AtomicUsize::new(0);
        let runs = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    while let Some(&(seq, point)) = cases.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst)) {
                        let Some(e) = Env::new(backend, &GOOD) else { return };
                        let before = e.world();
                        let o = e
                            .klab(&["drill", "crash-course"])
                            .env("KLAB_TEST_CRASH_AT", format!("{seq}:{point}"))
                            .output()
                            .unwrap();
                        assert!(!o.status.success(), "{seq}:{point}: the crash hook did not fire");
                        let (code, text) = e.out(&["status"]);
                        assert_eq!(code, 0, "{text}");
                        let (code, text) = e.out(&["reset"]);
                        assert_eq!(code, 0, "{seq}:{point}: reset failed: {text}");
                        assert_same(&before, &e.world(), &format!("crash at {seq}:{point}"));
                        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        // Without the real apiserver (`Env::new` says why) nothing ran; otherwise every case did.
        let runs = runs.into_inner();
        let skipped = matches!(backend, Backend::Real) && runs == 0;
        assert!(skipped || runs == 24, "{runs} of 24 crash points ran");
    }

    pub fn a_drill_cannot_start_while_another_is_injected(backend: Backend) {
        let Some(e) = Env::new(backend, &GOOD) else { return };
        let before = e.world();
        assert_eq!(e.out(&["drill", "crash-course"]).0, 0);
        let (code, text) = e.out(&["drill", "crash-course"]);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("run `klab reset` first"), "{text}");
        let (code, text) = e.out(&["reset"]);
        assert_eq!(code, 0, "{text}");
        assert_same(&before, &e.world(), "drill, refused second drill, reset");
    }

    pub fn the_guard_refuses_clusters_klab_did_not_create(backend: Backend) {
        let Some(e) = Env::new(
            backend,
            &Spec { context: "kind-klab", marker: false, provider: "kind://docker/klab/klab-control-plane" },
        ) else {
            return;
        };
        let before = e.world();
        let (code, text) = e.out(&["drill", "crash-course"]);
        assert_eq!(code, 4, "{text}");
        assert!(text.contains("no `klab-lab` marker"), "{text}");
        assert_same(&before, &e.world(), "refused drill changed nothing");
        drop(e);

        let Some(e) =
            Env::new(backend, &Spec { context: "kind-klab", marker: true, provider: "aws:///eu-west-1a/i-0123" })
        else {
            return;
        };
        let before = e.world();
        let (code, text) = e.out(&["drill", "crash-course"]);
        assert_eq!(code, 4, "{text}");
        assert!(text.contains("not a kind node"), "{text}");
        assert_same(&before, &e.world(), "refused drill (not a kind node) changed nothing");
        drop(e);

        let Some(e) = Env::new(
            backend,
            &Spec { context: "prod-cluster", marker: true, provider: "kind://docker/klab/klab-control-plane" },
        ) else {
            return;
        };
        let (code, text) = e.out(&["--i-know-context", "prod-cluster", "status"]);
        assert_eq!(code, 0, "{text}");
        let (code, text) = e.out(&["check"]);
        assert_eq!(code, 3, "no session yet: {text}");
    }

    pub fn a_context_that_now_points_elsewhere_is_refused(backend: Backend) {
        let Some(e) = Env::new(backend, &GOOD) else { return };
        let before = e.world();
        assert_eq!(e.out(&["drill", "crash-course"]).0, 0);
        e.change_cluster_identity();
        let (code, text) = e.out(&["check"]);
        assert_eq!(code, 4, "{text}");
        assert!(text.contains("points at another cluster"), "{text}");
        if backend == Backend::Real {
            // Leave the shared cluster as found: undo with the original identity.
            std::fs::remove_file(e.root.join("state/labs/klab/lab.json")).unwrap();
            let (code, text) = e.out(&["reset"]);
            assert_eq!(code, 0, "{text}");
            assert_same(&before, &e.world(), "reset after re-pinning");
        }
    }
}
