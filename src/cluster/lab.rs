//! The lab: a kind cluster klab created for training, and the guard that refuses any other.
//!
//! A lab is identified three ways before anything is injected: its kubeconfig context is
//! `kind-klab…` (or named explicitly with the override), kube-system holds the `klab-lab`
//! marker ConfigMap written at `up`, and every node's providerID starts with `kind://`. The
//! kube-system UID seen at `up` is pinned, so a context that later points elsewhere is refused.

use super::kube::{Kube, KubeError, ObjKey};
use super::node::{DockerNodes, NodeAccess};
use super::process::{self, argv};
use crate::session::state::{LabDir, LabRecord, StateError, read_json, write_json};
use std::path::PathBuf;
use std::time::Duration;

pub const MARKER_NAME: &str = "klab-lab";
pub const MARKER_LABEL: &str = "klab.dev/lab";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("refusing to touch context `{context}`: {reason}")]
    Refused { context: String, reason: String },
    #[error("no lab `{name}` ({reason}): create it with `klab up` (or `klab drill <id>`)")]
    NoLab { name: String, reason: String },
    #[error("{0}")]
    Kube(#[from] KubeError),
    #[error("{0}")]
    State(#[from] StateError),
    #[error("{0}")]
    Tool(String),
}

/// How the user addressed the lab.
#[derive(Clone, Debug)]
pub struct LabTarget {
    pub name: String,
    pub kubeconfig: Option<PathBuf>,
    /// `--i-know-context CTX`: treat this context as a lab although the guard would refuse it.
    pub override_context: Option<String>,
}

impl LabTarget {
    pub fn context(&self) -> String {
        self.override_context.clone().unwrap_or_else(|| format!("kind-{}", self.name))
    }
}

/// A lab that passed the guard.
pub struct Lab {
    pub target: LabTarget,
    pub record: LabRecord,
    /// `None` when the apiserver does not answer (the identity then rests on the pinned record
    /// and the kind node containers).
    pub kube: Option<Kube>,
    pub kube_error: Option<KubeError>,
    pub nodes: Box<dyn NodeAccess>,
}

/// kind's CLI, as a process.
pub struct Kind {
    pub program: String,
}

impl Default for Kind {
    fn default() -> Self {
        Kind { program: std::env::var("KLAB_KIND").unwrap_or_else(|_| "kind".into()) }
    }
}

impl Kind {
    pub async fn clusters(&self) -> Result<Vec<String>, LabError> {
        let out = process::run(&argv([self.program.as_str(), "get", "clusters"]), None, Duration::from_secs(30))
            .await
            .map_err(|e| LabError::Tool(format!("{e} (klab needs kind: https://kind.sigs.k8s.io)")))?;
        if !out.ok() {
            return Err(LabError::Tool(format!("kind get clusters: {}", out.reason())));
        }
        Ok(out.stdout.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
    }

    /// `kind version`'s line: names the tier a run is on (kind, or a stand-in that says so).
    pub async fn version(&self) -> Result<String, LabError> {
        let out = process::run(&argv([self.program.as_str(), "version"]), None, Duration::from_secs(30))
            .await
            .map_err(|e| LabError::Tool(e.to_string()))?;
        if !out.ok() {
            return Err(LabError::Tool(format!("kind version: {}", out.reason())));
        }
        Ok(out.stdout.trim().to_string())
    }

    /// Creates the cluster; kind's own progress lines go straight to the user's terminal.
    pub async fn create(
        &self,
        name: &str,
        config: &std::path::Path,
        kubeconfig: Option<&std::path::Path>,
    ) -> Result<(), LabError> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.envs(process::env_overlay().iter().cloned());
        cmd.args(["create", "cluster", "--name", name, "--wait", "5m", "--config"]).arg(config);
        if let Some(k) = kubeconfig {
            cmd.arg("--kubeconfig").arg(k);
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        let status = tokio::time::timeout(Duration::from_secs(900), cmd.status())
            .await
            .map_err(|_| LabError::Tool("kind create cluster did not finish within 15 minutes".into()))?
            .map_err(|e| LabError::Tool(format!("cannot run kind: {e}")))?;
        if !status.success() {
            return Err(LabError::Tool(format!("kind create cluster --name {name} failed (see its output above)")));
        }
        Ok(())
    }

    pub async fn delete(&self, name: &str, kubeconfig: Option<&std::path::Path>) -> Result<(), LabError> {
        let mut a = argv([self.program.as_str(), "delete", "cluster", "--name", name]);
        if let Some(k) = kubeconfig {
            a.push("--kubeconfig".into());
            a.push(k.display().to_string());
        }
        let out = process::run(&a, None, Duration::from_secs(300)).await.map_err(|e| LabError::Tool(e.to_string()))?;
        if !out.ok() {
            return Err(LabError::Tool(format!("kind delete cluster: {}", out.reason())));
        }
        Ok(())
    }
}

/// Reads kube-system's UID: the cluster's identity.
pub async fn cluster_uid(kube: &Kube) -> Result<String, KubeError> {
    let key =
        ObjKey { api_version: "v1".into(), kind: "Namespace".into(), namespace: None, name: "kube-system".into() };
    let ns = kube.get(&key).await?.ok_or_else(|| KubeError::Other("no kube-system namespace".into()))?;
    Ok(ns.pointer("/metadata/uid").and_then(|v| v.as_str()).unwrap_or_default().to_string())
}

pub fn marker_key() -> ObjKey {
    ObjKey {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("kube-system".into()),
        name: MARKER_NAME.into(),
    }
}

/// Writes the marker that says "klab made this cluster for training".
pub async fn write_marker(kube: &Kube, lab: &str) -> Result<(), KubeError> {
    let cm = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": MARKER_NAME, "namespace": "kube-system", "labels": {MARKER_LABEL: "true", "app.kubernetes.io/managed-by": "klab"}},
        "data": {"lab": lab, "createdAt": crate::session::journal::now(),
                 "purpose": "This cluster is a klab training lab: klab may break it on purpose."}
    });
    kube.apply(&cm).await.map(|_| ())
}

impl Lab {
    /// Opens a lab and runs the guard. `must_reach_api`: fail when the apiserver does not
    /// answer (commands like `drill`); `reset` and node-level checks pass `false`.
    pub async fn open(target: &LabTarget, dir: &LabDir, must_reach_api: bool) -> Result<Lab, LabError> {
        let context = target.context();
        let overridden = target.override_context.is_some();
        if !overridden && !context.starts_with("kind-klab") {
            return Err(LabError::Refused { context, reason: "it is not a klab lab context (kind-klab…)".into() });
        }
        let pinned: Option<LabRecord> = read_json(&dir.lab_file())?;
        let api = async {
            match Kube::connect(target.kubeconfig.as_deref(), &context).await {
                Err(e) => (None, Some(e), None, None),
                Ok(k) => {
                    // Without the override the guard also reads the marker and the nodes: asked
                    // beside kube-system's UID (one discovery, then at once), judged below in order.
                    let marker = marker_key();
                    let marks = async {
                        if overridden {
                            return None;
                        }
                        Some(tokio::join!(k.get(&marker), k.list("v1", "Node", None, None, None)))
                    };
                    match tokio::join!(cluster_uid(&k), marks) {
                        (Ok(uid), marks) => (Some(k), None, Some(uid), marks),
                        (Err(e), _) => (None, Some(e), None, None),
                    }
                }
            }
        };
        // kind nodes are containers; any other cluster (only reachable with the explicit
        // override) is reached through privileged debug pods. Asked while the API answers, and
        // only when it decides something: without the override the nodes are kind's, listed
        // (once) when something needs them.
        let docker = DockerNodes::new(&target.name);
        let ((kube, kube_error, uid, marks), kind_nodes) =
            tokio::join!(api, async { overridden && docker.nodes().await.map(|n| !n.is_empty()).unwrap_or(false) });
        let nodes: Box<dyn NodeAccess> = match (&kube, kind_nodes, overridden) {
            (Some(k), false, true) => Box::new(super::node::DebugPodNodes {
                kube: k.clone(),
                image: std::env::var("KLAB_NODE_IMAGE").unwrap_or_else(|_| "busybox:1.36".into()),
                namespace: "kube-system".into(),
            }),
            _ => Box::new(docker),
        };
        match (&uid, &pinned) {
            (Some(uid), Some(rec)) if &rec.cluster_uid != uid => {
                return Err(LabError::Refused {
                    context,
                    reason: format!(
                        "it now points at another cluster (kube-system UID {uid}, the lab was {}); was the lab recreated outside klab?",
                        rec.cluster_uid
                    ),
                });
            }
            (None, None) => {
                let e = kube_error.map(|e| e.to_string()).unwrap_or_default();
                return Err(if must_reach_api || !overridden {
                    LabError::NoLab { name: target.name.clone(), reason: e }
                } else {
                    LabError::Kube(KubeError::Other(e))
                });
            }
            (None, Some(_)) if must_reach_api => {
                return Err(LabError::Kube(kube_error.unwrap_or(KubeError::Other("apiserver unreachable".into()))));
            }
            (None, Some(_)) => {
                // Broken apiserver: the identity rests on the pinned record and the node containers.
                let found = nodes.nodes().await.map_err(|e| LabError::Tool(e.to_string()))?;
                if found.is_empty() {
                    return Err(LabError::Refused {
                        context,
                        reason: format!(
                            "the apiserver does not answer and no kind node container of `{}` exists",
                            target.name
                        ),
                    });
                }
            }
            _ => {}
        }
        if let Some((marker, list)) = marks {
            match marker? {
                Some(m)
                    if m.pointer(&format!("/metadata/labels/{}", MARKER_LABEL.replace('/', "~1")))
                        .and_then(|v| v.as_str())
                        == Some("true") => {}
                _ => {
                    return Err(LabError::Refused {
                        context,
                        reason: format!(
                            "kube-system has no `{MARKER_NAME}` marker: klab did not create this cluster for training"
                        ),
                    });
                }
            }
            let list = list?;
            if let Some(n) = list
                .iter()
                .find(|n| !n.pointer("/spec/providerID").and_then(|v| v.as_str()).unwrap_or("").starts_with("kind://"))
            {
                let name = n.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or("?");
                return Err(LabError::Refused {
                    context,
                    reason: format!("node {name} is not a kind node (providerID does not start with kind://)"),
                });
            }
        }
        let record = match pinned {
            Some(r) => r,
            None => {
                let rec = LabRecord {
                    name: target.name.clone(),
                    context: context.clone(),
                    kubeconfig: target.kubeconfig.clone(),
                    cluster_uid: uid.clone().unwrap_or_default(),
                    nodes: 0,
                    created_at: crate::session::journal::now(),
                    adopted: true,
                };
                dir.ensure()?;
                write_json(&dir.lab_file(), &rec)?;
                rec
            }
        };
        Ok(Lab { target: target.clone(), record, kube, kube_error, nodes })
    }

    /// The client, or why there is none.
    pub fn kube(&self) -> Result<&Kube, KubeError> {
        self.kube.as_ref().ok_or_else(|| self.kube_error.clone().unwrap_or(KubeError::Unreachable("no client".into())))
    }
}
