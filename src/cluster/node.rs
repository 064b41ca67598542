//! Node access: running commands on a lab's nodes.
//!
//! Two real ways exist, so this is a trait: kind nodes are containers reached with
//! `docker exec` (works while the apiserver is down); any other cluster is reached through a
//! privileged debug pod that `nsenter`s into the host, the way `kubectl debug node/…` does.
//! Commands are argument vectors; nothing is handed to a shell by klab.

use super::kube::{Kube, ObjKey};
use super::process::{self, Output, RunError};
use std::time::Duration;

pub const NODE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    pub name: String,
    /// `control-plane` or `worker`.
    pub role: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("no node matches `{0}`")]
    NoMatch(String),
    #[error("node {node}: {message}")]
    Failed { node: String, message: String },
    #[error("node access through the API failed: {0}")]
    Api(#[from] super::kube::KubeError),
    /// The node did not run the command at all (container runtime down, container gone).
    #[error("node {node} cannot be reached: {message}")]
    Unreachable { node: String, message: String },
}

impl NodeError {
    /// klab could not look (nothing ran on the node), as opposed to the node's own answer.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, NodeError::Run(_) | NodeError::Api(_) | NodeError::Unreachable { .. })
    }
}

/// `docker exec` exits 1 both for a command that exits 1 and for its own failures; these are
/// docker's own words, so the command never ran.
fn docker_failed_to_run(out: &Output) -> bool {
    out.code != 0
        && (out.stderr.contains("Cannot connect to the Docker daemon")
            || out.stderr.trim_start().starts_with("Error response from daemon:"))
}

#[async_trait::async_trait]
pub trait NodeAccess: Send + Sync {
    /// The lab's nodes, control plane first.
    async fn nodes(&self) -> Result<Vec<Node>, NodeError>;
    /// Runs `argv` on `node`, with `stdin` if given.
    async fn exec(
        &self,
        node: &str,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, NodeError>;
    /// How this access works, for evidence and `status`.
    fn describe(&self) -> String;
}

/// Resolves a selector (`all`, `control-plane`, `workers`, or a node name) to nodes.
pub fn select(nodes: &[Node], selector: &str) -> Result<Vec<Node>, NodeError> {
    let picked: Vec<Node> = match selector {
        "all" => nodes.to_vec(),
        "control-plane" | "control-planes" => nodes.iter().filter(|n| n.role == "control-plane").cloned().collect(),
        "workers" | "worker" => nodes.iter().filter(|n| n.role != "control-plane").cloned().collect(),
        name => nodes.iter().filter(|n| n.name == name).cloned().collect(),
    };
    if picked.is_empty() { Err(NodeError::NoMatch(selector.to_string())) } else { Ok(picked) }
}

/// Control-plane nodes first, then by name: the order every listing promises.
fn control_plane_first(nodes: &mut [Node]) {
    nodes.sort_by(|a, b| (a.role != "control-plane", &a.name).cmp(&(b.role != "control-plane", &b.name)));
}

/// kind nodes: containers labelled `io.x-k8s.kind.cluster=<lab>`.
pub struct DockerNodes {
    pub cluster: String,
    pub docker: String,
    /// The node list, once read: containers do not come and go within one klab command, and
    /// `docker ps` is the slowest part of a `klab check`.
    listed: tokio::sync::OnceCell<Vec<Node>>,
}

impl DockerNodes {
    pub fn new(cluster: &str) -> Self {
        Self::with_program(cluster, &std::env::var("KLAB_DOCKER").unwrap_or_else(|_| "docker".into()))
    }

    /// Node access through the `docker` executable `docker`.
    pub fn with_program(cluster: &str, docker: &str) -> Self {
        DockerNodes { cluster: cluster.to_string(), docker: docker.to_string(), listed: tokio::sync::OnceCell::new() }
    }

    async fn list(&self) -> Result<Vec<Node>, NodeError> {
        let argv = process::argv([
            self.docker.as_str(),
            "ps",
            "--filter",
            &format!("label=io.x-k8s.kind.cluster={}", self.cluster),
            "--format",
            "{{.Names}}\t{{.Label \"io.x-k8s.kind.role\"}}",
        ]);
        let out = process::run(&argv, None, NODE_TIMEOUT).await?;
        if !out.ok() {
            return Err(NodeError::Failed {
                node: self.cluster.clone(),
                message: format!("docker ps: {}", out.reason()),
            });
        }
        let mut nodes: Vec<Node> = out
            .stdout
            .lines()
            .filter_map(|l| {
                let (name, role) = l.split_once('\t')?;
                Some(Node { name: name.trim().to_string(), role: role.trim().to_string() })
            })
            .filter(|n| n.role != "external-load-balancer")
            .collect();
        control_plane_first(&mut nodes);
        Ok(nodes)
    }
}

#[async_trait::async_trait]
impl NodeAccess for DockerNodes {
    async fn nodes(&self) -> Result<Vec<Node>, NodeError> {
        self.listed.get_or_try_init(|| self.list()).await.cloned()
    }

    async fn exec(
        &self,
        node: &str,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, NodeError> {
        let mut full = vec![self.docker.clone(), "exec".into()];
        if stdin.is_some() {
            full.push("-i".into());
        }
        full.push(node.to_string());
        full.extend(argv.iter().cloned());
        let out = process::run(&full, stdin, timeout).await?;
        if docker_failed_to_run(&out) {
            return Err(NodeError::Unreachable { node: node.to_string(), message: out.reason() });
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("docker exec into the kind node containers of `{}`", self.cluster)
    }
}

/// Any cluster: a privileged pod per node with the host's PID namespace; commands run through
/// `nsenter -t 1` into the host's namespaces. Needs a working apiserver.
pub struct DebugPodNodes {
    pub kube: Kube,
    pub image: String,
    pub namespace: String,
}

impl DebugPodNodes {
    fn pod_name(node: &str) -> String {
        let mut n = format!("klab-node-{node}");
        n.truncate(63);
        n.trim_end_matches('-').to_string()
    }

    async fn ensure_pod(&self, node: &str) -> Result<String, NodeError> {
        let name = Self::pod_name(node);
        let key = ObjKey {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: Some(self.namespace.clone()),
            name: name.clone(),
        };
        if let Some(p) = self.kube.get(&key).await? {
            if p.pointer("/status/phase").and_then(|v| v.as_str()) == Some("Running") {
                return Ok(name);
            }
        } else {
            let pod = serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": self.namespace, "labels": {"app.kubernetes.io/managed-by": "klab", "klab.dev/node-access": "true"}},
                "spec": {
                    "nodeName": node, "hostPID": true, "hostNetwork": true, "restartPolicy": "Never",
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "nsenter", "image": self.image, "command": ["sleep", "86400"],
                                    "securityContext": {"privileged": true}}]
                }
            });
            self.kube.create(&pod).await?;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(p) = self.kube.get(&key).await?
                && p.pointer("/status/phase").and_then(|v| v.as_str()) == Some("Running")
            {
                return Ok(name);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(NodeError::Failed {
                    node: node.into(),
                    message: format!("debug pod {name} did not start within 90s"),
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[async_trait::async_trait]
impl NodeAccess for DebugPodNodes {
    async fn nodes(&self) -> Result<Vec<Node>, NodeError> {
        let list = self.kube.list("v1", "Node", None, None, None).await?;
        let mut nodes: Vec<Node> = list
            .iter()
            .filter_map(|n| {
                let name = n.pointer("/metadata/name")?.as_str()?.to_string();
                let labels = n.pointer("/metadata/labels");
                let cp = labels
                    .and_then(|l| {
                        l.get("node-role.kubernetes.io/control-plane")
                            .or_else(|| l.get("node-role.kubernetes.io/master"))
                    })
                    .is_some();
                Some(Node { name, role: if cp { "control-plane".into() } else { "worker".into() } })
            })
            .collect();
        control_plane_first(&mut nodes);
        Ok(nodes)
    }

    async fn exec(
        &self,
        node: &str,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, NodeError> {
        if stdin.is_some() {
            return Err(NodeError::Failed {
                node: node.into(),
                message: "standard input through a debug pod is not supported; use a kind lab".into(),
            });
        }
        let pod = self.ensure_pod(node).await?;
        let mut full = process::argv(["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--"]);
        full.extend(argv.iter().cloned());
        let (code, stdout, stderr) = self.kube.exec(&self.namespace, &pod, None, &full, timeout).await?;
        Ok(Output { code, stdout, stderr })
    }

    fn describe(&self) -> String {
        format!("privileged debug pods with nsenter (namespace {})", self.namespace)
    }
}
