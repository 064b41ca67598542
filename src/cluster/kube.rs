//! Kubernetes access through kube-rs, for any resource kind (resolved by discovery), with a
//! timeout on every call and the apiserver's own words kept in every error.
//!
//! A broken cluster is the normal case here: an unreachable or failing apiserver must come
//! back as a [`KubeError`] with a reason a trainee can read, never as a hang or a panic.

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope};
use kube::{Client, Config};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One call's budget unless the caller says otherwise.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum KubeError {
    #[error("{kind} {name} not found")]
    NotFound { kind: String, name: String },
    /// The apiserver answered with a Status (the message is the apiserver's own).
    #[error("apiserver answered {code}{}: {message}", if reason.is_empty() { String::new() } else { format!(" {reason}") })]
    Api { code: u16, reason: String, message: String },
    #[error("the apiserver did not answer within {0}s")]
    Timeout(u64),
    #[error("cannot reach the apiserver: {0}")]
    Unreachable(String),
    #[error("the cluster does not serve {0} (is the kind/version right for this server?)")]
    UnknownKind(String),
    #[error("{0}")]
    Other(String),
}

impl KubeError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::NotFound { .. }) || matches!(self, KubeError::Api { code: 404, .. })
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, KubeError::Api { code: 409, .. })
    }
    /// No answer at all, or the apiserver's "not now" (429, 5xx): worth asking again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, KubeError::Timeout(_) | KubeError::Unreachable(_))
            || matches!(self, KubeError::Api { code, .. } if *code == 429 || *code >= 500)
    }
}

fn convert(e: kube::Error) -> KubeError {
    match e {
        kube::Error::Api(s) => KubeError::Api { code: s.code, reason: s.reason.clone(), message: s.message.clone() },
        kube::Error::HyperError(h) => KubeError::Unreachable(chain(&h)),
        kube::Error::Service(s) => {
            let text = chain(s.as_ref());
            if text.contains("timed out") || text.contains("deadline") {
                KubeError::Timeout(CALL_TIMEOUT.as_secs())
            } else {
                KubeError::Unreachable(text)
            }
        }
        other => KubeError::Other(chain(&other)),
    }
}

/// The error and its sources on one line (hyper's top-level message alone says little).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// Runs one API future under the call timeout.
async fn timed<T>(fut: impl std::future::Future<Output = Result<T, kube::Error>>, t: Duration) -> Result<T, KubeError> {
    match tokio::time::timeout(t, fut).await {
        Err(_) => Err(KubeError::Timeout(t.as_secs())),
        Ok(r) => r.map_err(convert),
    }
}

/// A typed-enough reference to an object: its apiVersion, kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjKey {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjKey {
    pub fn of(obj: &Value) -> Option<ObjKey> {
        Some(ObjKey {
            api_version: obj.get("apiVersion")?.as_str()?.to_string(),
            kind: obj.get("kind")?.as_str()?.to_string(),
            namespace: obj.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
            name: obj.pointer("/metadata/name")?.as_str()?.to_string(),
        })
    }
    pub fn gvk(&self) -> GroupVersionKind {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), self.api_version.clone()),
        };
        GroupVersionKind { group, version, kind: self.kind.clone() }
    }
}

impl std::fmt::Display for ObjKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A connected client plus a discovery cache.
#[derive(Clone)]
pub struct Kube {
    client: Client,
    kinds: Arc<Mutex<HashMap<String, (ApiResource, ApiCapabilities)>>>,
    /// Held while one group-version is discovered: concurrent calls (all checks of a drill at
    /// once) wait for the first discovery instead of each asking the server.
    discovering: Arc<tokio::sync::Mutex<()>>,
    pub timeout: Duration,
}

/// Fields the server owns; removed before an object is written back.
const SERVER_FIELDS: &[&str] = &[
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

pub fn strip_server_fields(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in SERVER_FIELDS {
            m.remove(*f);
        }
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            if a.is_empty() {
                m.remove("annotations");
            }
        }
    }
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
}

impl Kube {
    /// Connects with the given kubeconfig context (never the "current" one implicitly: the
    /// caller pins the context for the whole session).
    pub async fn connect(kubeconfig: Option<&std::path::Path>, context: &str) -> Result<Kube, KubeError> {
        let opts = kube::config::KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
        let kc = match kubeconfig {
            Some(p) => kube::config::Kubeconfig::read_from(p)
                .map_err(|e| KubeError::Other(format!("cannot read kubeconfig {}: {e}", p.display())))?,
            None => kube::config::Kubeconfig::read()
                .map_err(|e| KubeError::Other(format!("cannot read kubeconfig: {e}")))?,
        };
        let mut config = Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| KubeError::Other(format!("kubeconfig context `{context}`: {e}")))?;
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(CALL_TIMEOUT);
        config.write_timeout = Some(CALL_TIMEOUT);
        // The audit log names klab's own calls apart from the trainee's (kubectl).
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("klab/", env!("CARGO_PKG_VERSION"))),
        ));
        let client = super::conn::client(config)
            .map_err(|e| KubeError::Other(format!("cannot build a client: {}", chain(&e))))?;
        Ok(Kube { client, kinds: Arc::default(), discovering: Arc::default(), timeout: CALL_TIMEOUT })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The server's version as `major.minor` text, e.g. `1.20`.
    pub async fn server_version(&self) -> Result<(String, String), KubeError> {
        let v = timed(self.client.apiserver_version(), self.timeout).await?;
        Ok((format!("{}.{}", v.major, v.minor.trim_end_matches('+')), v.git_version))
    }

    /// The resource of a kind, from one discovery of its whole group-version (cached: every
    /// kind of that group-version is known after the first call).
    async fn resource(&self, key: &ObjKey) -> Result<(ApiResource, ApiCapabilities), KubeError> {
        let id = format!("{}/{}", key.api_version, key.kind);
        let cached = |id: &str| self.kinds.lock().ok().and_then(|m| m.get(id).cloned());
        if let Some(hit) = cached(&id) {
            return Ok(hit);
        }
        let _turn = self.discovering.lock().await;
        if let Some(hit) = cached(&id) {
            return Ok(hit);
        }
        let gvk = key.gvk();
        let gv = kube::core::GroupVersion::gv(&gvk.group, &gvk.version);
        let group = match tokio::time::timeout(self.timeout, kube::discovery::pinned_group(&self.client, &gv)).await {
            Err(_) => return Err(KubeError::Timeout(self.timeout.as_secs())),
            Ok(Ok(g)) => g,
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => return Err(KubeError::UnknownKind(id)),
            Ok(Err(kube::Error::Discovery(_))) => return Err(KubeError::UnknownKind(id)),
            Ok(Err(e)) => return Err(convert(e)),
        };
        if let Ok(mut m) = self.kinds.lock() {
            for (ar, caps) in group.versioned_resources(&gvk.version) {
                m.insert(format!("{}/{}", key.api_version, ar.kind), (ar, caps));
            }
        }
        cached(&id).ok_or(KubeError::UnknownKind(id))
    }

    async fn api(&self, key: &ObjKey) -> Result<Api<DynamicObject>, KubeError> {
        let (ar, caps) = self.resource(key).await?;
        Ok(match (caps.scope, &key.namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (Scope::Namespaced, None) => Api::namespaced_with(self.client.clone(), "default", &ar),
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &ar),
        })
    }

    async fn list_api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>, KubeError> {
        let key = ObjKey {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: String::new(),
        };
        let (ar, caps) = self.resource(&key).await?;
        Ok(match (caps.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        })
    }

    pub async fn get(&self, key: &ObjKey) -> Result<Option<Value>, KubeError> {
        let api = self.api(key).await?;
        let obj = timed(api.get_opt(&key.name), self.timeout).await?;
        Ok(obj.map(|o| to_value(&o)))
    }

    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Vec<Value>, KubeError> {
        let api = self.list_api(api_version, kind, namespace).await?;
        let mut lp = ListParams::default();
        if let Some(l) = labels {
            lp = lp.labels(l);
        }
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        let list = timed(api.list(&lp), self.timeout).await?;
        Ok(list
            .items
            .iter()
            .map(|o| {
                let mut v = to_value(o);
                // Lists carry no apiVersion/kind per item; put them back for the reader.
                if let Some(m) = v.as_object_mut() {
                    m.insert("apiVersion".into(), Value::from(api_version));
                    m.insert("kind".into(), Value::from(kind));
                }
                v
            })
            .collect())
    }

    pub async fn create(&self, obj: &Value) -> Result<Value, KubeError> {
        let key = ObjKey::of(obj)
            .ok_or_else(|| KubeError::Other("object without apiVersion, kind or metadata.name".into()))?;
        let api = self.api(&key).await?;
        let d: DynamicObject = serde_json::from_value(obj.clone()).map_err(|e| KubeError::Other(e.to_string()))?;
        let created = timed(api.create(&PostParams::default(), &d), self.timeout).await?;
        Ok(to_value(&created))
    }

    /// Create, or replace what is there (keeping the live resourceVersion).
    pub async fn apply(&self, obj: &Value) -> Result<Value, KubeError> {
        let key = ObjKey::of(obj)
            .ok_or_else(|| KubeError::Other("object without apiVersion, kind or metadata.name".into()))?;
        match self.get(&key).await? {
            None => {
                // A copy read back from the server (a journal's "before") carries fields the
                // server must assign itself on create.
                let mut fresh = obj.clone();
                strip_server_fields(&mut fresh);
                self.create(&fresh).await
            }
            Some(live) => {
                let mut desired = obj.clone();
                strip_server_fields(&mut desired);
                if let Some(rv) = live.pointer("/metadata/resourceVersion").cloned()
                    && let Some(m) = desired.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    m.insert("resourceVersion".into(), rv);
                }
                let api = self.api(&key).await?;
                let d: DynamicObject = serde_json::from_value(desired).map_err(|e| KubeError::Other(e.to_string()))?;
                let r = timed(api.replace(&key.name, &PostParams::default(), &d), self.timeout).await?;
                Ok(to_value(&r))
            }
        }
    }

    pub async fn patch(
        &self,
        key: &ObjKey,
        patch_type: crate::scenario::kinds::PatchType,
        body: &Value,
    ) -> Result<Value, KubeError> {
        use crate::scenario::kinds::PatchType as T;
        let api = self.api(key).await?;
        let pp = PatchParams::default();
        let r = match patch_type {
            T::Merge => timed(api.patch(&key.name, &pp, &Patch::Merge(body)), self.timeout).await?,
            T::Strategic => timed(api.patch(&key.name, &pp, &Patch::Strategic(body)), self.timeout).await?,
            T::Json => {
                let p: json_patch::Patch = serde_json::from_value(body.clone())
                    .map_err(|e| KubeError::Other(format!("invalid JSON patch: {e}")))?;
                timed(api.patch(&key.name, &pp, &Patch::<()>::Json(p)), self.timeout).await?
            }
        };
        Ok(to_value(&r))
    }

    /// Deletes; `Ok(false)` when it was not there.
    pub async fn delete(&self, key: &ObjKey) -> Result<bool, KubeError> {
        let api = self.api(key).await?;
        match timed(api.delete(&key.name, &DeleteParams::default()), self.timeout).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes now, without a grace period (probe pods, leftovers).
    pub async fn delete_now(&self, key: &ObjKey) -> Result<bool, KubeError> {
        let api = self.api(key).await?;
        let dp = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
        match timed(api.delete(&key.name, &dp), self.timeout).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn logs(&self, namespace: &str, pod: &str, container: Option<&str>) -> Result<String, KubeError> {
        let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.client.clone(), namespace);
        let lp = LogParams { container: container.map(str::to_string), tail_lines: Some(200), ..Default::default() };
        timed(api.logs(pod, &lp), self.timeout).await
    }

    /// Runs `argv` in a container of an existing pod; returns (exit code, stdout, stderr).
    pub async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        argv: &[String],
        t: Duration,
    ) -> Result<(i32, String, String), KubeError> {
        use futures::StreamExt;
        use kube::api::AttachParams;
        let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.client.clone(), namespace);
        let mut ap = AttachParams::default().stdout(true).stderr(true).stdin(false);
        if let Some(c) = container {
            ap = ap.container(c);
        }
        let run = async {
            let mut proc = api.exec(pod, argv.to_vec(), &ap).await.map_err(convert)?;
            let out = proc.stdout();
            let err = proc.stderr();
            let status = proc.take_status();
            let read = |r: Option<_>| async move {
                let mut buf = Vec::new();
                if let Some(r) = r {
                    let mut s = tokio_util_reader(r);
                    while let Some(Ok(chunk)) = s.next().await {
                        buf.extend_from_slice(&chunk);
                    }
                }
                String::from_utf8_lossy(&buf).into_owned()
            };
            let (so, se) = tokio::join!(read(out), read(err));
            let code = match status {
                Some(st) => match st.await {
                    Some(s) if s.status.as_deref() == Some("Success") => 0,
                    Some(s) => s
                        .details
                        .and_then(|d| d.causes)
                        .and_then(|c| c.into_iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
                        .and_then(|c| c.message)
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(1),
                    None => -1,
                },
                None => -1,
            };
            let _ = proc.join().await;
            Ok::<_, KubeError>((code, so, se))
        };
        match tokio::time::timeout(t, run).await {
            Err(_) => Err(KubeError::Timeout(t.as_secs())),
            Ok(r) => r,
        }
    }
}

/// Reads an `AsyncRead` as a stream of byte chunks.
fn tokio_util_reader<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: R,
) -> futures::stream::BoxStream<'static, std::io::Result<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    Box::pin(futures::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 8192];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    }))
}

fn to_value(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}
