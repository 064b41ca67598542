//! An in-process fake Kubernetes API server that speaks real Kubernetes HTTP/JSON,
//! so that kube-rs (and the `klab` binary through a kubeconfig) works against it unchanged.
//!
//! ```ignore
//! let api = FakeApiServer::start();
//! let dir = tempfile::tempdir().unwrap();
//! let kubeconfig = api.kubeconfig(dir.path()); // server http://127.0.0.1:PORT, context kind-klab
//! // CLI:   Command::cargo_bin("klab").env("KUBECONFIG", &kubeconfig)...
//! // kube:  let client = kube::Client::try_from(api.kube_config()).unwrap();
//! ```
//!
//! The server runs on its own tokio runtime in a background thread, so it works from
//! plain `#[test]`s and from `#[tokio::test]`s alike. All controls are thread-safe.
//!
//! Emulated: discovery (legacy and aggregated), CRUD on every registered resource
//! (namespaced and cluster-scoped), label and field selectors, merge / JSON / strategic
//! (as merge) / apply patches, optimistic concurrency, dryRun, status subresources,
//! namespace cascade deletion, watch (polling event log), pod logs, pod exec over
//! WebSocket (v4/v5 channel protocol), `Status` errors, fault injection.
//!
//! Not emulated: controllers (no ReplicaSets/Pods are created for Deployments, no
//! garbage collection by ownerReferences, no finalizers: deletes are immediate),
//! admission, RBAC/authentication (any token is accepted), field managers and apply
//! conflicts, pagination (`limit`/`continue` are ignored), protobuf, tables,
//! schema validation beyond metadata.name, port-forward/attach.
//!
//! Opt-in: [`FakeApiServer::model_cluster`] switches on a small model of a kind cluster
//! (`cluster_model.rs`: Deployment/ReplicaSet/Endpoints controllers, garbage collection,
//! ClusterIP and pod IP allocation, kube-system's CoreDNS, and a pod network that answers
//! `wget`/`nslookup` in pod exec from the Services, Endpoints and NetworkPolicies it holds).
//! Off by default: without it the server behaves exactly as described above.

// Early-return helpers hand back a ready `Status` response as their error.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use indexmap::IndexMap;
use regex::Regex;
use serde_json::{Map, Value, json};

#[path = "cluster_model.rs"]
mod cluster_model;

/// Scripted exec responder: argv -> (stdout, stderr, exit code).
pub type ExecFn = Arc<dyn Fn(&[String]) -> (String, String, i32) + Send + Sync>;
/// Called with every object deleted through the API (not for cascaded namespace
/// contents); the returned objects are seeded with [`FakeApiServer::put`] (e.g. to
/// emulate a controller recreating a Pod).
pub type DeleteHook = Arc<dyn Fn(&Value) -> Vec<Value> + Send + Sync>;

/// (apiVersion, kind, namespace ("" when cluster-scoped), name)
type Key = (String, String, String, String);

/// A resource type the server knows about.
#[derive(Clone, Debug)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// Has a `/status` subresource (status is ignored on main-resource writes).
    pub status: bool,
    /// Extra subresources (name, verbs), e.g. `("log", ["get"])`.
    pub subresources: Vec<(String, Vec<String>)>,
    /// Served only while the configured minor version is below this (1.x).
    pub removed_in_minor: Option<u32>,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
    fn singular(&self) -> String {
        self.kind.to_lowercase()
    }
    /// `configmaps` or `deployments.apps`, as in real error messages.
    fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }
}

struct WatchEvent {
    rv: u64,
    kind: &'static str,
    key: Key,
    obj: Value,
}

struct State {
    resources: Vec<ResourceDef>,
    objects: IndexMap<Key, Value>,
    rv: u64,
    logs: HashMap<(String, String), String>,
    write_failure: Option<(u16, String)>,
    path_failures: Vec<(Regex, u16, String)>,
    latency: Duration,
    hang: bool,
    major: String,
    minor: String,
    git_version: String,
    requests: Vec<(String, String)>,
    auto_run_pods: bool,
    delete_hook: Option<DeleteHook>,
    exec: Vec<(String, String, ExecFn)>,
    events: Vec<WatchEvent>,
    port: u16,
    /// The opt-in cluster model (controllers, kube-system, the pod network): `model_cluster()`.
    model: Option<cluster_model::Model>,
}

type Shared = Arc<Mutex<State>>;

fn lock(st: &Shared) -> MutexGuard<'_, State> {
    st.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handle to a running fake API server. Stops on drop.
pub struct FakeApiServer {
    state: Shared,
    addr: SocketAddr,
    shutdown: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn builtin_resources() -> Vec<ResourceDef> {
    fn r(g: &str, v: &str, kind: &str, plural: &str, ns: bool, status: bool) -> ResourceDef {
        ResourceDef {
            group: g.into(),
            version: v.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: ns,
            status,
            subresources: vec![],
            removed_in_minor: None,
        }
    }
    let mut pods = r("", "v1", "Pod", "pods", true, true);
    pods.subresources = vec![
        ("log".into(), vec!["get".into()]),
        ("exec".into(), vec!["create".into(), "get".into()]),
        ("eviction".into(), vec!["create".into()]),
    ];
    let mut ns_def = r("", "v1", "Namespace", "namespaces", false, true);
    ns_def.subresources = vec![("finalize".into(), vec!["update".into()])];
    let mut psp = r("policy", "v1beta1", "PodSecurityPolicy", "podsecuritypolicies", false, false);
    psp.removed_in_minor = Some(25);
    let mut deploy = r("apps", "v1", "Deployment", "deployments", true, true);
    deploy.subresources = vec![("scale".into(), vec!["get".into(), "patch".into(), "update".into()])];
    vec![
        ns_def,
        pods,
        r("", "v1", "Service", "services", true, true),
        r("", "v1", "Endpoints", "endpoints", true, false),
        r("", "v1", "ConfigMap", "configmaps", true, false),
        r("", "v1", "Secret", "secrets", true, false),
        r("", "v1", "ServiceAccount", "serviceaccounts", true, false),
        r("", "v1", "Node", "nodes", false, true),
        r("", "v1", "Event", "events", true, false),
        r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true),
        r("", "v1", "PersistentVolume", "persistentvolumes", false, true),
        r("", "v1", "ResourceQuota", "resourcequotas", true, true),
        r("", "v1", "LimitRange", "limitranges", true, false),
        deploy,
        r("apps", "v1", "DaemonSet", "daemonsets", true, true),
        r("apps", "v1", "StatefulSet", "statefulsets", true, true),
        r("apps", "v1", "ReplicaSet", "replicasets", true, true),
        r("batch", "v1", "Job", "jobs", true, true),
        r("batch", "v1", "CronJob", "cronjobs", true, true),
        r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, false),
        r("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false),
        r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, false),
        r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, false),
        r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, false),
        psp,
        r(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            false,
            false,
        ),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            false,
            false,
        ),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            false,
            true,
        ),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            false,
            false,
        ),
        r("events.k8s.io", "v1", "Event", "events", true, false),
        r("coordination.k8s.io", "v1", "Lease", "leases", true, false),
        r("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, false),
        r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, true),
    ]
}

impl FakeApiServer {
    /// Start on 127.0.0.1:random with version 1.31 and the namespaces `default`,
    /// `kube-system`, `kube-public` and `kube-node-lease` already present.
    pub fn start() -> FakeApiServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake apiserver");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            resources: builtin_resources(),
            objects: IndexMap::new(),
            rv: 1000,
            logs: HashMap::new(),
            write_failure: None,
            path_failures: vec![],
            latency: Duration::ZERO,
            hang: false,
            major: "1".into(),
            minor: "31".into(),
            git_version: "v1.31.0".into(),
            requests: vec![],
            auto_run_pods: false,
            delete_hook: None,
            exec: vec![],
            events: vec![],
            port: addr.port(),
            model: None,
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-apiserver-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake apiserver runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let app = axum::Router::new().fallback(handle).with_state(st);
                    tokio::select! {
                        res = std::future::IntoFuture::into_future(axum::serve(listener, app)) => { res.expect("fake apiserver serve"); }
                        _ = rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task: open sockets close.
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("spawn fake apiserver thread");
        let server = FakeApiServer { state, addr, shutdown: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)) };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            server.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Write `dir/kubeconfig` (context, cluster and user `kind-klab`, token auth).
    pub fn kubeconfig(&self, dir: impl AsRef<Path>) -> PathBuf {
        self.kubeconfig_named(dir, "kind-klab", "kind-klab", "kind-klab")
    }

    /// Write `dir/kubeconfig` with the given context, cluster and user names.
    pub fn kubeconfig_named(&self, dir: impl AsRef<Path>, context: &str, cluster: &str, user: &str) -> PathBuf {
        let path = dir.as_ref().join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {url}\n\
             contexts:\n- name: {context}\n  context:\n    cluster: {cluster}\n    user: {user}\n\
             current-context: {context}\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    token: fake-token\n",
            url = self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// A kube-rs config pointing at this server (default namespace `default`).
    /// Adjust e.g. `read_timeout` before `kube::Client::try_from(config)`.
    pub fn kube_config(&self) -> kube::Config {
        let mut config = kube::Config::new(self.url().parse().expect("uri"));
        config.default_namespace = "default".into();
        config
    }

    /// A kube-rs client for this server. Must be called inside a tokio runtime.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.kube_config()).expect("kube client")
    }

    /// Stop serving: close the listener and every open connection. Later
    /// requests fail with "connection refused". Idempotent.
    pub fn refuse(&self) {
        if let Some(tx) = self.shutdown.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }

    /// Same as [`refuse`](Self::refuse).
    pub fn stop(&self) {
        self.refuse()
    }

    // ----- resource types -----

    /// Register an extra resource type (e.g. a CRD's kind). Discovery and CRUD follow.
    pub fn register(&self, group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) {
        self.register_def(ResourceDef {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
            status: false,
            subresources: vec![],
            removed_in_minor: None,
        });
    }

    pub fn register_def(&self, def: ResourceDef) {
        let mut s = lock(&self.state);
        s.resources.retain(|r| !(r.group == def.group && r.version == def.version && r.plural == def.plural));
        s.resources.push(def);
    }

    /// `set_version(1, 20)` → `/version` says 1.20 and policy/v1beta1 PSPs are served.
    pub fn set_version(&self, major: u32, minor: u32) {
        let mut s = lock(&self.state);
        s.major = major.to_string();
        s.minor = minor.to_string();
        s.git_version = format!("v{major}.{minor}.0");
    }

    pub fn set_git_version(&self, git_version: &str) {
        lock(&self.state).git_version = git_version.into();
    }

    // ----- objects -----

    /// Seed (create or overwrite) an object directly, bypassing failures and
    /// checks. Fills uid, resourceVersion, creationTimestamp and generation when
    /// missing; namespaced kinds without a namespace go to `default`. Returns the
    /// stored object.
    pub fn put(&self, obj: Value) -> Value {
        let mut s = lock(&self.state);
        let stored = s.put(obj);
        cluster_model::reconcile(&mut s);
        stored
    }

    /// `get("v1", "ConfigMap", "default", "x")`; `ns` is "" for cluster-scoped kinds.
    pub fn get(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        lock(&self.state).objects.get(&key(api_version, kind, ns, name)).cloned()
    }

    /// Remove an object directly (no hook, no failures, but watchers see it).
    pub fn remove(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let mut s = lock(&self.state);
        let k = key(api_version, kind, ns, name);
        let obj = s.objects.shift_remove(&k)?;
        s.next_rv();
        s.record("DELETED", k, obj.clone());
        cluster_model::reconcile(&mut s);
        Some(obj)
    }

    /// Every stored object of one kind, in insertion order.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        lock(&self.state)
            .objects
            .iter()
            .filter(|(k, _)| k.0 == api_version && k.1 == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every stored object, sorted by (apiVersion, kind, namespace, name).
    pub fn all_objects(&self) -> Vec<Value> {
        let s = lock(&self.state);
        let mut items: Vec<(&Key, &Value)> = s.objects.iter().collect();
        items.sort_by(|a, b| a.0.cmp(b.0));
        items.into_iter().map(|(_, v)| v.clone()).collect()
    }

    /// [`all_objects`](Self::all_objects) with server-assigned fields stripped
    /// (see [`strip_server_fields`]): compare before/after snapshots.
    pub fn snapshot(&self) -> Vec<Value> {
        self.all_objects().iter().map(strip_server_fields).collect()
    }

    /// Replace an object's `status`. Returns false when the object does not exist.
    pub fn set_status(&self, api_version: &str, kind: &str, ns: &str, name: &str, status: Value) -> bool {
        let mut s = lock(&self.state);
        let k = key(api_version, kind, ns, name);
        let Some(mut obj) = s.objects.get(&k).cloned() else {
            return false;
        };
        obj["status"] = status;
        let rv = s.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        s.objects.insert(k.clone(), obj.clone());
        s.record("MODIFIED", k, obj);
        cluster_model::reconcile(&mut s);
        true
    }

    pub fn set_pod_log(&self, ns: &str, name: &str, text: &str) {
        lock(&self.state).logs.insert((ns.into(), name.into()), text.into());
    }

    /// The current (global) resourceVersion counter.
    pub fn resource_version(&self) -> u64 {
        lock(&self.state).rv
    }

    // ----- behaviour -----

    /// Created Pods get `phase: Running` and Ready conditions instead of `Pending`.
    pub fn auto_run_pods(&self, on: bool) {
        lock(&self.state).auto_run_pods = on;
    }

    pub fn set_delete_hook(&self, hook: impl Fn(&Value) -> Vec<Value> + Send + Sync + 'static) {
        lock(&self.state).delete_hook = Some(Arc::new(hook));
    }

    /// Switches the cluster model on (see `cluster_model.rs`): kube-system gets what a kind
    /// cluster has (CoreDNS behind the kube-dns Service, the `kubernetes` Service's endpoint),
    /// controllers keep Deployments, ReplicaSets, pods and Endpoints in step after every write,
    /// pods run at once with unique IPs, Services get ClusterIPs, and pod exec without a
    /// scripted responder is answered by the modelled pod network (NetworkPolicies enforced).
    pub fn model_cluster(&self) {
        let mut s = lock(&self.state);
        s.auto_run_pods = true;
        s.model = Some(cluster_model::Model::default());
        cluster_model::seed(&mut s);
        cluster_model::reconcile(&mut s);
    }

    /// The model's CNI enforces NetworkPolicies (the default) or ignores them, as a CNI
    /// without policy support does. Needs [`model_cluster`](Self::model_cluster).
    pub fn enforce_network_policies(&self, on: bool) {
        let mut s = lock(&self.state);
        s.model.as_mut().expect("enforce_network_policies needs model_cluster() first").enforce_network_policy = on;
    }

    /// What the model's pod network decided for every connection and DNS query so far, one
    /// line each (who, to where, and why it was answered or dropped).
    pub fn network_log(&self) -> Vec<String> {
        lock(&self.state).model.as_ref().map(|m| m.net_log.clone()).unwrap_or_default()
    }

    /// Scripted exec for a pod (`"*"` matches any namespace / pod); the latest
    /// matching registration wins.
    pub fn on_exec(&self, ns: &str, pod: &str, f: impl Fn(&[String]) -> (String, String, i32) + Send + Sync + 'static) {
        lock(&self.state).exec.push((ns.into(), pod.into(), Arc::new(f)));
    }

    // ----- fault injection -----

    /// Every POST/PUT/PATCH/DELETE on a resource answers this Status (reason derived
    /// from the code, e.g. 500 → InternalError).
    pub fn fail_writes(&self, code: u16, message: &str) {
        lock(&self.state).write_failure = Some((code, message.into()));
    }

    /// Every request (any method) whose path-and-query matches `regex` answers this Status.
    pub fn fail_path(&self, regex: &str, code: u16, message: &str) {
        let re = Regex::new(regex).expect("fail_path regex");
        lock(&self.state).path_failures.push((re, code, message.into()));
    }

    pub fn clear_failures(&self) {
        let mut s = lock(&self.state);
        s.write_failure = None;
        s.path_failures.clear();
    }

    /// Delay every request by `d`.
    pub fn set_latency(&self, d: Duration) {
        lock(&self.state).latency = d;
    }

    /// While on, requests are accepted but never answered (until turned off).
    pub fn hang(&self, on: bool) {
        lock(&self.state).hang = on;
    }

    // ----- request log -----

    /// Every request received so far: (method, path-and-query), a trailing `?` removed.
    pub fn requests(&self) -> Vec<(String, String)> {
        lock(&self.state).requests.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state).requests.clear();
    }

    /// Requests whose method is not GET (i.e. writes), for "nothing was changed" checks.
    pub fn write_requests(&self) -> Vec<(String, String)> {
        self.requests().into_iter().filter(|(m, _)| m != "GET").collect()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Remove server-assigned fields (`resourceVersion`, `uid`, `creationTimestamp`,
/// `generation`, `managedFields`) from an object's metadata, for comparisons.
pub fn strip_server_fields(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in ["resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"] {
            m.shift_remove(f);
        }
    }
    v
}

fn key(api_version: &str, kind: &str, ns: &str, name: &str) -> Key {
    (api_version.into(), kind.into(), ns.into(), name.into())
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn new_uid() -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(0x8000..0xc000),
        fastrand::u64(..1 << 48)
    )
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str)
}

/// Everything except metadata and status: a change here bumps metadata.generation.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.shift_remove("metadata");
        m.shift_remove("status");
    }
    v
}

impl State {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn minor_num(&self) -> u32 {
        self.minor.trim_end_matches('+').parse().unwrap_or(99)
    }

    fn visible(&self) -> Vec<ResourceDef> {
        let minor = self.minor_num();
        self.resources.iter().filter(|r| r.removed_in_minor.is_none_or(|m| minor < m)).cloned().collect()
    }

    fn def_for_kind(&self, api_version: &str, kind: &str) -> Option<ResourceDef> {
        self.resources.iter().find(|r| r.api_version() == api_version && r.kind == kind).cloned()
    }

    fn record(&mut self, kind: &'static str, key: Key, obj: Value) {
        let rv = self.rv;
        self.events.push(WatchEvent { rv, kind, key, obj });
    }

    fn put(&mut self, mut obj: Value) -> Value {
        let api_version = obj["apiVersion"].as_str().unwrap_or("v1").to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let def = self.def_for_kind(&api_version, &kind);
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let ns = match &def {
            Some(d) if d.namespaced => meta_str(&obj, "namespace").unwrap_or("default").to_string(),
            Some(_) => String::new(),
            None => meta_str(&obj, "namespace").unwrap_or_default().to_string(),
        };
        if !ns.is_empty() {
            obj["metadata"]["namespace"] = json!(ns);
        }
        if kind == "Namespace" && api_version == "v1" {
            namespace_defaults(&mut obj, &name);
        }
        let rv = self.next_rv();
        let m = obj["metadata"].as_object_mut().expect("metadata object");
        m.entry("uid").or_insert_with(|| json!(new_uid()));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        m.entry("creationTimestamp").or_insert_with(|| json!(now()));
        m.entry("generation").or_insert(json!(1));
        let k = (api_version, kind, ns, name);
        let existed = self.objects.insert(k.clone(), obj.clone()).is_some();
        self.record(if existed { "MODIFIED" } else { "ADDED" }, k, obj.clone());
        obj
    }
}

fn namespace_defaults(obj: &mut Value, name: &str) {
    if !obj["metadata"]["labels"].is_object() {
        obj["metadata"]["labels"] = json!({});
    }
    obj["metadata"]["labels"]
        .as_object_mut()
        .expect("labels")
        .entry("kubernetes.io/metadata.name")
        .or_insert(json!(name));
    if !obj["spec"].is_object() {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
    }
    if obj["status"]["phase"].as_str().is_none() {
        obj["status"] = json!({"phase": "Active"});
    }
}

// ===================================================================== responses

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(v).expect("json")))
        .expect("response")
}

/// A real `metav1.Status` failure.
fn status_error(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response<Body> {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v["code"] = json!(code);
    json_response(code, &v)
}

fn injected(code: u16, message: &str) -> Response<Body> {
    status_error(code, reason_for(code), message, Some(json!({})))
}

fn not_found(def: &ResourceDef, name: &str) -> Response<Body> {
    status_error(404, "NotFound", &format!("{} \"{}\" not found", def.qualified(), name), Some(details(def, name)))
}

fn details(def: &ResourceDef, name: &str) -> Value {
    let mut d = json!({"name": name});
    if !def.group.is_empty() {
        d["group"] = json!(def.group);
    }
    d["kind"] = json!(def.plural);
    d
}

fn bad_request(message: &str) -> Response<Body> {
    status_error(400, "BadRequest", message, None)
}

fn unknown_resource() -> Response<Body> {
    status_error(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})),
    )
}

fn invalid(def: &ResourceDef, name: &str, field: &str, msg: &str) -> Response<Body> {
    let mut d = details(def, name);
    d["kind"] = json!(def.kind);
    d["causes"] = json!([{"reason": "FieldValueInvalid", "message": msg, "field": field}]);
    status_error(422, "Invalid", &format!("{} \"{}\" is invalid: {}: {}", def.kind, name, field, msg), Some(d))
}

// ===================================================================== handler

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return vec![] };
    let uri: axum::http::Uri = format!("/?{q}").parse().unwrap_or_default();
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri).map(|q| q.0).unwrap_or_default()
}

fn qget<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

async fn handle(AxState(st): AxState<Shared>, req: Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let pq =
        req.uri().path_and_query().map(|p| p.as_str().trim_end_matches('?').to_string()).unwrap_or_else(|| "/".into());
    let latency = {
        let mut s = lock(&st);
        s.requests.push((method.to_string(), pq.clone()));
        s.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    while lock(&st).hang {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path_fail = {
        let s = lock(&st);
        s.path_failures.iter().find(|(re, _, _)| re.is_match(&pq)).map(|(_, c, m)| (*c, m.clone()))
    };
    if let Some((code, msg)) = path_fail {
        return injected(code, &msg);
    }

    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let segs: Vec<String> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).map(String::from).collect();

    // ---- discovery
    let aggregated = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=APIGroupDiscoveryList"));
    if method == Method::GET
        && let Some(resp) = discovery(&lock(&st), &segs, aggregated)
    {
        return resp;
    }

    // ---- resources
    let target = {
        let s = lock(&st);
        match resolve(&s, &segs) {
            Ok(t) => t,
            Err(r) => return r,
        }
    };

    if target.sub.as_deref() == Some("exec") {
        return exec(st, req, target, query).await;
    }
    if method == Method::GET && target.name.is_none() && qget(&query, "watch").is_some_and(|w| w == "true" || w == "1")
    {
        return watch(st, target, query);
    }

    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(e) => return bad_request(&format!("reading body: {e}")),
    };

    let (resp, deleted, hook) = {
        let mut s = lock(&st);
        if method != Method::GET
            && let Some((code, msg)) = s.write_failure.clone()
        {
            return injected(code, &msg);
        }
        let mut deleted = vec![];
        let resp = resource(&mut s, &method, &target, &query, &headers, &body, &mut deleted);
        if method != Method::GET {
            cluster_model::reconcile(&mut s);
        }
        (resp, deleted, s.delete_hook.clone())
    };
    if let Some(hook) = hook {
        for obj in deleted {
            for new in hook(&obj) {
                let mut s = lock(&st);
                s.put(new);
                cluster_model::reconcile(&mut s);
            }
        }
    }
    resp
}

// ===================================================================== discovery

fn api_resource_json(def: &ResourceDef) -> Vec<Value> {
    let verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
    let mut out = vec![json!({
        "name": def.plural,
        "singularName": def.singular(),
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": verbs,
        "storageVersionHash": "",
    })];
    if def.status {
        out.push(json!({
            "name": format!("{}/status", def.plural),
            "singularName": "",
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    for (sub, verbs) in &def.subresources {
        let kind = match sub.as_str() {
            "log" | "exec" => "Pod".to_string(),
            "eviction" => "Eviction".to_string(),
            "scale" => "Scale".to_string(),
            _ => def.kind.clone(),
        };
        out.push(json!({
            "name": format!("{}/{}", def.plural, sub),
            "singularName": "",
            "namespaced": def.namespaced,
            "kind": kind,
            "verbs": verbs,
        }));
    }
    out
}

/// Groups in first-seen order, each with versions in first-seen order.
fn groups(defs: &[ResourceDef]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![];
    for d in defs.iter().filter(|d| !d.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == d.group) {
            Some((_, vs)) => {
                if !vs.contains(&d.version) {
                    vs.push(d.version.clone())
                }
            }
            None => out.push((d.group.clone(), vec![d.version.clone()])),
        }
    }
    out
}

fn api_group_json(g: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
    json!({
        "name": g,
        "versions": vs,
        "preferredVersion": {"groupVersion": format!("{g}/{}", versions[0]), "version": versions[0]},
    })
}

fn aggregated_group(name: &str, versions: &[String], defs: &[ResourceDef]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = defs
                .iter()
                .filter(|d| d.group == name && d.version == *v)
                .map(|d| {
                    let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
                    let mut subs = vec![];
                    if d.status {
                        subs.push(
                            json!({"subresource": "status", "responseKind": gvk, "verbs": ["get", "patch", "update"]}),
                        );
                    }
                    for (s, verbs) in &d.subresources {
                        subs.push(json!({"subresource": s, "responseKind": gvk, "verbs": verbs}));
                    }
                    json!({
                        "resource": d.plural,
                        "responseKind": gvk,
                        "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": d.singular(),
                        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                        "subresources": subs,
                    })
                })
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": name}, "versions": vs})
}

fn discovery(s: &State, segs: &[String], aggregated: bool) -> Option<Response<Body>> {
    let defs = s.visible();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let agg_list = |items: Vec<Value>| {
        let mut r = json_response(
            200,
            &json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}),
        );
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
        );
        r
    };
    let resp = match segs.as_slice() {
        ["version"] => json_response(
            200,
            &json!({
                "major": s.major, "minor": s.minor, "gitVersion": s.git_version,
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.22.0", "compiler": "gc",
                "platform": "linux/amd64",
            }),
        ),
        ["healthz"] | ["livez"] | ["readyz"] => {
            Response::builder().status(200).body(Body::from("ok")).expect("response")
        }
        ["api"] if aggregated => agg_list(vec![aggregated_group("", &["v1".into()], &defs)]),
        ["api"] => json_response(
            200,
            &json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{}", s.port)}],
            }),
        ),
        ["apis"] if aggregated => {
            agg_list(groups(&defs).iter().map(|(g, vs)| aggregated_group(g, vs, &defs)).collect())
        }
        ["apis"] => {
            let gs: Vec<Value> = groups(&defs).iter().map(|(g, vs)| api_group_json(g, vs)).collect();
            json_response(200, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}))
        }
        ["api", "v1"] => resource_list("v1", defs.iter().filter(|d| d.group.is_empty())),
        ["apis", g] => {
            let gs = groups(&defs);
            let (name, vs) = gs.iter().find(|(n, _)| n == g)?;
            let mut v = api_group_json(name, vs);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            json_response(200, &v)
        }
        ["apis", g, v] => {
            if !defs.iter().any(|d| d.group == *g && d.version == *v) {
                return Some(unknown_resource());
            }
            resource_list(&format!("{g}/{v}"), defs.iter().filter(|d| d.group == *g && d.version == *v))
        }
        _ => return None,
    };
    Some(resp)
}

fn resource_list<'a>(gv: &str, defs: impl Iterator<Item = &'a ResourceDef>) -> Response<Body> {
    let resources: Vec<Value> = defs.flat_map(api_resource_json).collect();
    json_response(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

// ===================================================================== routing

struct Target {
    def: ResourceDef,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn resolve(s: &State, segs: &[String]) -> Result<Target, Response<Body>> {
    let (group, version, rest) = match segs {
        [a, v, rest @ ..] if a == "api" => (String::new(), v.clone(), rest),
        [a, g, v, rest @ ..] if a == "apis" => (g.clone(), v.clone(), rest),
        _ => return Err(unknown_resource()),
    };
    let defs = s.visible();
    let find =
        |plural: &str| defs.iter().find(|d| d.group == group && d.version == version && d.plural == plural).cloned();
    let namespaced_path =
        rest.len() >= 3 && rest[0] == "namespaces" && !matches!(rest[2].as_str(), "status" | "finalize");
    let (ns, rest) = if namespaced_path { (Some(rest[1].clone()), &rest[2..]) } else { (None, rest) };
    let (plural, name, sub) = match rest {
        [p] => (p, None, None),
        [p, n] => (p, Some(n.clone()), None),
        [p, n, sub] => (p, Some(n.clone()), Some(sub.clone())),
        _ => return Err(unknown_resource()),
    };
    let Some(def) = find(plural) else {
        return Err(unknown_resource());
    };
    if ns.is_some() && !def.namespaced {
        return Err(unknown_resource());
    }
    if ns.is_none() && def.namespaced && name.is_some() {
        return Err(unknown_resource());
    }
    if let Some(sub) = &sub
        && !(sub == "status" && def.status)
        && !def.subresources.iter().any(|(n, _)| n == sub)
    {
        return Err(unknown_resource());
    }
    Ok(Target { def, ns, name, sub })
}

// ===================================================================== selectors

enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

fn split_top_level(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
}

fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    let set_re = Regex::new(r"^([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)$").expect("regex");
    let mut out = vec![];
    for term in split_top_level(s) {
        if let Some(c) = set_re.captures(&term) {
            let vals: Vec<String> = c[3].split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
            let k = c[1].to_string();
            out.push(if &c[2] == "in" { LabelReq::In(k, vals) } else { LabelReq::NotIn(k, vals) });
        } else if let Some((k, v)) = term.split_once("!=") {
            out.push(LabelReq::Ne(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = term.split_once("==") {
            out.push(LabelReq::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = term.split_once('=') {
            out.push(LabelReq::Eq(k.trim().into(), v.trim().into()));
        } else if let Some(k) = term.strip_prefix('!') {
            out.push(LabelReq::NotExists(k.trim().into()));
        } else if term.contains(char::is_whitespace) || term.contains(['(', ')']) {
            return Err(format!("unable to parse requirement: {term}"));
        } else {
            out.push(LabelReq::Exists(term));
        }
    }
    Ok(out)
}

fn labels_match(obj: &Value, reqs: &[LabelReq]) -> bool {
    let labels = obj["metadata"]["labels"].as_object();
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    reqs.iter().all(|r| match r {
        LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
        LabelReq::Ne(k, v) => get(k) != Some(v.as_str()),
        LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        LabelReq::Exists(k) => get(k).is_some(),
        LabelReq::NotExists(k) => get(k).is_none(),
    })
}

fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// (path, value, negated)
fn parse_field_selector(s: &str) -> Vec<(String, String, bool)> {
    split_top_level(s)
        .into_iter()
        .map(|t| {
            if let Some((k, v)) = t.split_once("!=") {
                (k.trim().into(), v.trim().into(), true)
            } else if let Some((k, v)) = t.split_once("==") {
                (k.trim().into(), v.trim().into(), false)
            } else if let Some((k, v)) = t.split_once('=') {
                (k.trim().into(), v.trim().into(), false)
            } else {
                (t, String::new(), false)
            }
        })
        .collect()
}

fn fields_match(obj: &Value, reqs: &[(String, String, bool)]) -> bool {
    reqs.iter().all(|(p, v, neg)| (field_value(obj, p) == *v) != *neg)
}

struct Filter {
    api_version: String,
    kind: String,
    ns: Option<String>,
    labels: Vec<LabelReq>,
    fields: Vec<(String, String, bool)>,
}

impl Filter {
    fn new(target: &Target, query: &[(String, String)]) -> Result<Filter, Response<Body>> {
        let labels = match qget(query, "labelSelector") {
            Some(s) => parse_label_selector(s).map_err(|e| bad_request(&e))?,
            None => vec![],
        };
        let fields = qget(query, "fieldSelector").map(parse_field_selector).unwrap_or_default();
        Ok(Filter {
            api_version: target.def.api_version(),
            kind: target.def.kind.clone(),
            ns: target.ns.clone(),
            labels,
            fields,
        })
    }
    fn matches(&self, k: &Key, obj: &Value) -> bool {
        k.0 == self.api_version
            && k.1 == self.kind
            && self.ns.as_ref().is_none_or(|n| *n == k.2)
            && labels_match(obj, &self.labels)
            && fields_match(obj, &self.fields)
    }
}

// ===================================================================== patches

fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        let t = target.as_object_mut().expect("object");
        for (k, v) in p {
            if v.is_null() {
                t.shift_remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
    }
}

fn ptr_tokens(p: &str) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return Ok(vec![]);
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!("invalid JSON pointer {p:?}"));
    };
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn ptr_get_mut<'a>(v: &'a mut Value, toks: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => a.get_mut(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn ptr_add(doc: &mut Value, toks: &[String], val: Value) -> Result<(), String> {
    let Some((last, parent)) = toks.split_last() else {
        *doc = val;
        return Ok(());
    };
    let parent = ptr_get_mut(doc, parent).ok_or_else(|| format!("missing parent for /{}", toks.join("/")))?;
    match parent {
        Value::Object(m) => {
            m.insert(last.clone(), val);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(val);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| format!("invalid array index {last}"))?;
            if i > a.len() {
                return Err(format!("array index {i} out of bounds"));
            }
            a.insert(i, val);
            Ok(())
        }
        _ => Err(format!("cannot add to non-container at /{}", toks.join("/"))),
    }
}

fn ptr_remove(doc: &mut Value, toks: &[String]) -> Result<Value, String> {
    let Some((last, parent)) = toks.split_last() else {
        return Err("cannot remove the root".into());
    };
    let missing = || format!("unable to remove nonexistent key: /{}", toks.join("/"));
    match ptr_get_mut(doc, parent).ok_or_else(missing)? {
        Value::Object(m) => m.shift_remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("json patch must be an array")?;
    for op in ops {
        let kind = op["op"].as_str().ok_or("op missing")?;
        let path = ptr_tokens(op["path"].as_str().ok_or("path missing")?)?;
        let value = || op.get("value").cloned().ok_or_else(|| format!("value missing for {kind}"));
        match kind {
            "add" => ptr_add(doc, &path, value()?)?,
            "remove" => {
                ptr_remove(doc, &path)?;
            }
            "replace" => {
                let target = ptr_get_mut(doc, &path).ok_or_else(|| {
                    format!("replace operation does not apply: doc is missing key: /{}", path.join("/"))
                })?;
                *target = value()?;
            }
            "test" => {
                let v = value()?;
                let cur = ptr_get_mut(doc, &path).map(|x| x.clone());
                if cur.as_ref() != Some(&v) {
                    return Err(format!("testing value /{} failed", path.join("/")));
                }
            }
            "move" | "copy" => {
                let from = ptr_tokens(op["from"].as_str().ok_or("from missing")?)?;
                let v = if kind == "move" {
                    ptr_remove(doc, &from)?
                } else {
                    ptr_get_mut(doc, &from)
                        .cloned()
                        .ok_or_else(|| format!("copy from missing key /{}", from.join("/")))?
                };
                ptr_add(doc, &path, v)?;
            }
            other => return Err(format!("unexpected op {other}")),
        }
    }
    Ok(())
}

// ===================================================================== CRUD

fn is_dry_run(query: &[(String, String)], body: Option<&Value>) -> bool {
    query.iter().any(|(k, v)| k == "dryRun" && v == "All")
        || body.is_some_and(|b| b["dryRun"].as_array().is_some_and(|a| a.iter().any(|v| v == "All")))
}

fn valid_name(name: &str) -> bool {
    let re = Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").expect("regex");
    name.len() <= 253 && re.is_match(name)
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char).collect()
}

fn parse_body(body: &[u8]) -> Result<Value, Response<Body>> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body).map_err(|e| bad_request(&format!("body is not UTF-8: {e}")))?;
    serde_saphyr::from_str::<Value>(text).map_err(|e| bad_request(&format!("unable to decode body: {e}")))
}

fn running_pod_status(obj: &Value) -> Value {
    let ts = now();
    let containers: Vec<Value> = obj["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({
                        "name": c["name"], "image": c["image"], "imageID": "", "ready": true,
                        "restartCount": 0, "started": true, "state": {"running": {"startedAt": ts}},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": ts});
    json!({
        "phase": "Running",
        "conditions": [cond("PodScheduled"), cond("Initialized"), cond("ContainersReady"), cond("Ready")],
        "hostIP": "172.18.0.2",
        "podIP": format!("10.244.0.{}", fastrand::u8(2..250)),
        "startTime": ts,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    })
}

fn list_response(s: &State, target: &Target, query: &[(String, String)]) -> Response<Body> {
    let filter = match Filter::new(target, query) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let items: Vec<Value> = s.objects.iter().filter(|(k, v)| filter.matches(k, v)).map(|(_, v)| v.clone()).collect();
    json_response(
        200,
        &json!({
            "kind": format!("{}List", target.def.kind),
            "apiVersion": target.def.api_version(),
            "metadata": {"resourceVersion": s.rv.to_string()},
            "items": items,
        }),
    )
}

#[allow(clippy::too_many_arguments)]
fn resource(
    s: &mut State,
    method: &Method,
    target: &Target,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &Bytes,
    deleted: &mut Vec<Value>,
) -> Response<Body> {
    let def = &target.def;
    let ns = target.ns.clone().unwrap_or_default();
    match (method.as_str(), &target.name, target.sub.as_deref()) {
        ("GET", None, None) => list_response(s, target, query),
        ("GET", Some(name), None | Some("status")) => {
            match s.objects.get(&key(&def.api_version(), &def.kind, &ns, name)) {
                Some(o) => json_response(200, o),
                None => not_found(def, name),
            }
        }
        ("GET", Some(name), Some("log")) => {
            if let Some(text) = s.logs.get(&(ns.clone(), name.clone())) {
                let text = match qget(query, "tailLines").and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) => {
                        let lines: Vec<&str> = text.lines().collect();
                        let mut t = lines[lines.len().saturating_sub(n)..].join("\n");
                        if !t.is_empty() && text.ends_with('\n') {
                            t.push('\n');
                        }
                        t
                    }
                    None => text.clone(),
                };
                return Response::builder()
                    .status(200)
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(Body::from(text))
                    .expect("response");
            }
            if s.objects.contains_key(&key("v1", "Pod", &ns, name)) {
                return Response::builder().status(200).body(Body::empty()).expect("response");
            }
            not_found(def, name)
        }
        ("POST", None, None) => {
            if target.ns.is_none() && def.namespaced {
                return status_error(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                    None,
                );
            }
            let obj = match parse_body(body) {
                Ok(v) => v,
                Err(r) => return r,
            };
            let dry = is_dry_run(query, None);
            create(s, def, &ns, obj, dry)
        }
        ("PUT", Some(name), None | Some("status")) => {
            let obj = match parse_body(body) {
                Ok(v) => v,
                Err(r) => return r,
            };
            replace(s, def, &ns, name, obj, target.sub.is_some(), is_dry_run(query, None))
        }
        ("PUT", Some(name), Some("finalize")) => {
            // Namespace finalize: only spec.finalizers changes.
            let obj = match parse_body(body) {
                Ok(v) => v,
                Err(r) => return r,
            };
            let k = key("v1", "Namespace", "", name);
            let Some(old) = s.objects.get(&k).cloned() else {
                return not_found(def, name);
            };
            let mut new = old.clone();
            match obj["spec"].get("finalizers").filter(|f| !f.is_null()) {
                Some(f) => new["spec"]["finalizers"] = f.clone(),
                None => {
                    if let Some(spec) = new["spec"].as_object_mut() {
                        spec.shift_remove("finalizers");
                    }
                }
            }
            commit_update(s, k, &old, new, is_dry_run(query, None))
        }
        ("PATCH", Some(name), None | Some("status")) => {
            let ctype = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let patch = match parse_body(body) {
                Ok(v) => v,
                Err(r) => return r,
            };
            patch_object(s, def, &ns, name, &ctype, patch, target.sub.is_some(), query)
        }
        ("DELETE", Some(name), None) => {
            let opts = if body.is_empty() { Value::Null } else { serde_json::from_slice(body).unwrap_or(Value::Null) };
            let k = key(&def.api_version(), &def.kind, &ns, name);
            let Some(obj) = s.objects.get(&k).cloned() else {
                return not_found(def, name);
            };
            if let Some(uid) = opts["preconditions"]["uid"].as_str()
                && Some(uid) != meta_str(&obj, "uid")
            {
                return status_error(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {} \"{}\": Precondition failed: UID in precondition: {}, UID in object meta: {}",
                        def.qualified(),
                        name,
                        uid,
                        meta_str(&obj, "uid").unwrap_or_default()
                    ),
                    Some(details(def, name)),
                );
            }
            if let Some(rv) = opts["preconditions"]["resourceVersion"].as_str()
                && Some(rv) != meta_str(&obj, "resourceVersion")
            {
                return conflict(def, name);
            }
            if is_dry_run(query, Some(&opts)) {
                return json_response(200, &obj);
            }
            delete_object(s, &k);
            deleted.push(obj.clone());
            let mut out = obj;
            if def.kind == "Namespace" && def.group.is_empty() {
                out["status"]["phase"] = json!("Terminating");
            }
            json_response(200, &out)
        }
        ("DELETE", None, None) => {
            let filter = match Filter::new(target, query) {
                Ok(f) => f,
                Err(r) => return r,
            };
            let keys: Vec<(Key, Value)> =
                s.objects.iter().filter(|(k, v)| filter.matches(k, v)).map(|(k, v)| (k.clone(), v.clone())).collect();
            let dry = is_dry_run(query, None);
            let mut items = vec![];
            for (k, v) in keys {
                if !dry {
                    delete_object(s, &k);
                    deleted.push(v.clone());
                }
                items.push(v);
            }
            json_response(
                200,
                &json!({
                    "kind": format!("{}List", def.kind),
                    "apiVersion": def.api_version(),
                    "metadata": {"resourceVersion": s.rv.to_string()},
                    "items": items,
                }),
            )
        }
        _ => status_error(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            None,
        ),
    }
}

fn delete_object(s: &mut State, k: &Key) {
    let Some(obj) = s.objects.shift_remove(k) else { return };
    s.next_rv();
    s.record("DELETED", k.clone(), obj);
    if k.0 == "v1" && k.1 == "Namespace" {
        let ns = k.3.clone();
        let inner: Vec<Key> = s.objects.keys().filter(|x| x.2 == ns).cloned().collect();
        for ik in inner {
            if let Some(o) = s.objects.shift_remove(&ik) {
                s.next_rv();
                s.record("DELETED", ik, o);
            }
        }
        s.logs.retain(|(n, _), _| *n != ns);
    }
}

fn conflict(def: &ResourceDef, name: &str) -> Response<Body> {
    status_error(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
            def.qualified(),
            name
        ),
        Some(details(def, name)),
    )
}

/// Common checks of an incoming object's apiVersion / kind; fills them in when missing.
fn check_type(def: &ResourceDef, obj: &mut Value) -> Result<(), Response<Body>> {
    if !obj.is_object() {
        return Err(bad_request("the body of the request was not a JSON object"));
    }
    if let Some(k) = obj["kind"].as_str()
        && k != def.kind
    {
        return Err(bad_request(&format!(
            "the kind in the body ({k}) does not match the kind of the request ({})",
            def.kind
        )));
    }
    if let Some(av) = obj["apiVersion"].as_str()
        && av != def.api_version()
    {
        return Err(bad_request(&format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    obj["kind"] = json!(def.kind);
    obj["apiVersion"] = json!(def.api_version());
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    Ok(())
}

fn create(s: &mut State, def: &ResourceDef, ns: &str, mut obj: Value, dry: bool) -> Response<Body> {
    if let Err(r) = check_type(def, &mut obj) {
        return r;
    }
    let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
    if name.is_empty() {
        match meta_str(&obj, "generateName") {
            Some(g) if !g.is_empty() => name = format!("{g}{}", random_suffix()),
            _ => {
                return invalid(def, "", "metadata.name", "Required value: name or generateName is required");
            }
        }
        obj["metadata"]["name"] = json!(name);
    }
    if !valid_name(&name) {
        return invalid(
            def,
            &name,
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        );
    }
    if def.namespaced {
        if let Some(body_ns) = meta_str(&obj, "namespace")
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            );
        }
        obj["metadata"]["namespace"] = json!(ns);
        if !s.objects.contains_key(&key("v1", "Namespace", "", ns)) {
            return status_error(
                404,
                "NotFound",
                &format!("namespaces \"{ns}\" not found"),
                Some(json!({"name": ns, "kind": "namespaces"})),
            );
        }
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.shift_remove("namespace");
    }
    let k = key(&def.api_version(), &def.kind, if def.namespaced { ns } else { "" }, &name);
    if s.objects.contains_key(&k) {
        return status_error(
            409,
            "AlreadyExists",
            &format!("{} \"{}\" already exists", def.qualified(), name),
            Some(details(def, &name)),
        );
    }
    if def.kind == "Namespace" && def.group.is_empty() {
        namespace_defaults(&mut obj, &name);
    } else if def.kind == "Pod" && def.group.is_empty() {
        obj["status"] = if s.auto_run_pods {
            running_pod_status(&obj)
        } else {
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        };
    } else if def.status
        && let Some(m) = obj.as_object_mut()
    {
        m.shift_remove("status");
    }
    cluster_model::admit(s, &mut obj);
    let rv = if dry { s.rv + 1 } else { s.next_rv() };
    let m = obj["metadata"].as_object_mut().expect("metadata");
    for f in ["resourceVersion", "uid", "creationTimestamp", "generation", "deletionTimestamp", "managedFields"] {
        m.shift_remove(f);
    }
    m.insert("uid".into(), json!(new_uid()));
    m.insert("resourceVersion".into(), json!(rv.to_string()));
    m.insert("creationTimestamp".into(), json!(now()));
    m.insert("generation".into(), json!(1));
    if !dry {
        s.objects.insert(k.clone(), obj.clone());
        s.record("ADDED", k, obj.clone());
    }
    json_response(201, &obj)
}

/// Store `new` over `old` (keeping server-owned metadata), bumping resourceVersion
/// and generation only when something changed.
fn commit_update(s: &mut State, k: Key, old: &Value, mut new: Value, dry: bool) -> Response<Body> {
    {
        let m = new["metadata"].as_object_mut().expect("metadata");
        for f in ["uid", "creationTimestamp", "name", "namespace", "generation", "resourceVersion"] {
            match old["metadata"].get(f) {
                Some(v) => {
                    m.insert(f.into(), v.clone());
                }
                None => {
                    m.shift_remove(f);
                }
            }
        }
    }
    if new == *old {
        return json_response(200, old);
    }
    if spec_part(&new) != spec_part(old) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
        new["metadata"]["generation"] = json!(g + 1);
    }
    let rv = if dry { s.rv + 1 } else { s.next_rv() };
    new["metadata"]["resourceVersion"] = json!(rv.to_string());
    if !dry {
        s.objects.insert(k.clone(), new.clone());
        s.record("MODIFIED", k, new.clone());
    }
    json_response(200, &new)
}

fn replace(
    s: &mut State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    mut obj: Value,
    status_sub: bool,
    dry: bool,
) -> Response<Body> {
    if let Err(r) = check_type(def, &mut obj) {
        return r;
    }
    let k = key(&def.api_version(), &def.kind, ns, name);
    let Some(old) = s.objects.get(&k).cloned() else {
        return not_found(def, name);
    };
    if let Some(n) = meta_str(&obj, "name")
        && n != name
    {
        return bad_request(&format!("the name of the object ({n}) does not match the name on the URL ({name})"));
    }
    if let Some(rv) = meta_str(&obj, "resourceVersion")
        && !rv.is_empty()
        && Some(rv) != meta_str(&old, "resourceVersion")
    {
        return conflict(def, name);
    }
    let new = if status_sub {
        let mut n = old.clone();
        n["status"] = obj["status"].clone();
        n
    } else {
        if def.status {
            match old.get("status") {
                Some(st) => obj["status"] = st.clone(),
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.shift_remove("status");
                    }
                }
            }
        }
        obj
    };
    commit_update(s, k, &old, new, dry)
}

#[allow(clippy::too_many_arguments)]
fn patch_object(
    s: &mut State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    ctype: &str,
    patch: Value,
    status_sub: bool,
    query: &[(String, String)],
) -> Response<Body> {
    let dry = is_dry_run(query, None);
    let k = key(&def.api_version(), &def.kind, ns, name);
    let existing = s.objects.get(&k).cloned();
    let mut doc = match (&existing, ctype) {
        (_, "application/apply-patch+yaml") => {
            if qget(query, "fieldManager").is_none_or(str::is_empty) {
                return bad_request("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests");
            }
            let Some(old) = &existing else {
                let mut obj = patch;
                if !obj.is_object() {
                    return bad_request("apply patch must be an object");
                }
                if let Some(n) = meta_str(&obj, "name")
                    && n != name
                {
                    return bad_request(&format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    ));
                }
                obj["metadata"]["name"] = json!(name);
                return create(s, def, ns, obj, dry);
            };
            let mut doc = old.clone();
            merge_patch(&mut doc, &patch);
            doc
        }
        (None, _) => return not_found(def, name),
        (Some(old), "application/merge-patch+json" | "application/strategic-merge-patch+json") => {
            if let Some(rv) = patch["metadata"]["resourceVersion"].as_str()
                && Some(rv) != meta_str(old, "resourceVersion")
            {
                return conflict(def, name);
            }
            let mut doc = old.clone();
            merge_patch(&mut doc, &patch);
            doc
        }
        (Some(old), "application/json-patch+json") => {
            let mut doc = old.clone();
            if let Err(e) = json_patch(&mut doc, &patch) {
                return status_error(422, "Invalid", &e, Some(details(def, name)));
            }
            doc
        }
        (Some(_), other) => {
            return status_error(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
                None,
            );
        }
    };
    let old = existing.expect("existing object");
    if let Err(r) = check_type(def, &mut doc) {
        return r;
    }
    let new = if status_sub {
        let mut n = old.clone();
        n["status"] = doc["status"].clone();
        n
    } else {
        if def.status {
            match old.get("status") {
                Some(st) => doc["status"] = st.clone(),
                None => {
                    if let Some(m) = doc.as_object_mut() {
                        m.shift_remove("status");
                    }
                }
            }
        }
        doc
    };
    commit_update(s, k, &old, new, dry)
}

// ===================================================================== watch

fn watch(st: Shared, target: Target, query: Vec<(String, String)>) -> Response<Body> {
    let filter = match Filter::new(&target, &query) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let timeout = qget(&query, "timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(60).min(300);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let from_rv: Option<u64> = qget(&query, "resourceVersion").and_then(|r| r.parse().ok()).filter(|r| *r != 0);
    // Initial ADDED events for the current state when no resourceVersion was given.
    let (initial, start_rv) = {
        let s = lock(&st);
        match from_rv {
            Some(rv) => (vec![], rv),
            None => {
                let items: Vec<Value> = s
                    .objects
                    .iter()
                    .filter(|(k, v)| filter.matches(k, v))
                    .map(|(_, v)| json!({"type": "ADDED", "object": v}))
                    .collect();
                (items, s.rv)
            }
        }
    };
    let encode = |events: Vec<Value>| {
        let mut out = Vec::new();
        for e in events {
            out.extend(serde_json::to_vec(&e).expect("json"));
            out.push(b'\n');
        }
        Bytes::from(out)
    };
    let first = encode(initial);
    let stream =
        futures::stream::unfold((st, start_rv, Some(first), filter), move |(st, last, first, filter)| async move {
            // An empty chunk would end a chunked body: only send non-empty ones.
            if let Some(f) = first.filter(|f| !f.is_empty()) {
                return Some((Ok::<Bytes, std::io::Error>(f), (st, last, None, filter)));
            }
            loop {
                if Instant::now() >= deadline {
                    return None;
                }
                let (events, new_last) = {
                    let s = lock(&st);
                    let evs: Vec<Value> = s
                        .events
                        .iter()
                        .filter(|e| e.rv > last && filter.matches(&e.key, &e.obj))
                        .map(|e| json!({"type": e.kind, "object": e.obj}))
                        .collect();
                    (evs, s.rv)
                };
                if !events.is_empty() {
                    return Some((Ok(encode(events)), (st, new_last, None, filter)));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("response")
}

// ===================================================================== exec

async fn exec(st: Shared, mut req: Request<Body>, target: Target, query: Vec<(String, String)>) -> Response<Body> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, handshake::derive_accept_key, protocol::Role};

    let ns = target.ns.clone().unwrap_or_default();
    let Some(pod) = target.name.clone() else {
        return unknown_resource();
    };
    let responder = {
        let s = lock(&st);
        if !s.objects.contains_key(&key("v1", "Pod", &ns, &pod)) {
            return not_found(&target.def, &pod);
        }
        if let Some((code, msg)) = s.write_failure.clone()
            && req.method() == Method::POST
        {
            return injected(code, &msg);
        }
        let scripted = s
            .exec
            .iter()
            .rev()
            .find(|(n, p, _)| (n == "*" || *n == ns) && (p == "*" || *p == pod))
            .map(|(_, _, f)| f.clone());
        // Scripted responders win; else the cluster model's pod network answers.
        scripted.or_else(|| {
            s.model.as_ref().map(|_| {
                let (st, ns, pod) = (st.clone(), ns.clone(), pod.clone());
                Arc::new(move |argv: &[String]| cluster_model::exec(&mut lock(&st), &ns, &pod, argv)) as ExecFn
            })
        })
    };
    let Some(responder) = responder else {
        return status_error(
            500,
            "InternalError",
            &format!("fake apiserver: no exec responder registered for pod {ns}/{pod}"),
            None,
        );
    };
    let argv: Vec<String> = query.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
    let Some(ws_key) = req.headers().get(header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).map(String::from)
    else {
        return bad_request("fake apiserver: exec needs a WebSocket upgrade (SPDY is not supported)");
    };
    let offered =
        req.headers().get(header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let protocol = if offered.split(',').any(|p| p.trim() == "v4.channel.k8s.io") || offered.is_empty() {
        "v4.channel.k8s.io"
    } else if offered.split(',').any(|p| p.trim() == "v5.channel.k8s.io") {
        "v5.channel.k8s.io"
    } else {
        return bad_request(&format!("fake apiserver: unsupported exec subprotocols {offered:?}"));
    };
    let cmdline = argv.join(" ");
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        let (out, err, code) = tokio::task::spawn_blocking(move || responder(&argv))
            .await
            .unwrap_or_else(|e| (String::new(), format!("exec responder panicked: {e}"), 1));
        let frame = |ch: u8, data: &[u8]| {
            let mut v = Vec::with_capacity(data.len() + 1);
            v.push(ch);
            v.extend_from_slice(data);
            Message::binary(v)
        };
        if !out.is_empty() {
            let _ = ws.send(frame(1, out.as_bytes())).await;
        }
        if !err.is_empty() {
            let _ = ws.send(frame(2, err.as_bytes())).await;
        }
        let status = if code == 0 {
            json!({"metadata": {}, "status": "Success"})
        } else {
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("command terminated with non-zero exit code: error executing command [{cmdline}], exit code {code}"),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            })
        };
        let _ = ws.send(frame(3, &serde_json::to_vec(&status).expect("json"))).await;
        let _ = ws.close(None).await;
        // Drain until the client acknowledges the close (bounded).
        let _ = tokio::time::timeout(Duration::from_secs(2), async { while ws.next().await.is_some() {} }).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, derive_accept_key(ws_key.as_bytes()))
        .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(Body::empty())
        .expect("response")
}
