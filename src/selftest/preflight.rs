//! What a scenario needs of the cluster and what this cluster has — probed, not assumed. A
//! scenario the lab cannot carry is skipped with the reason, never reported as passed.

use crate::cluster::kube::{Kube, ObjKey};
use crate::cluster::node::{NODE_TIMEOUT, NodeAccess};
use crate::fault::AUDIT_LOG_PATH;
use crate::scenario::model::Profile;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The lab's answers to the questions scenarios ask. `Err` holds why it could not be told.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub nodes: usize,
    pub server_version: String,
    pub audit_log: Result<bool, String>,
    pub dns: Result<bool, String>,
    /// Probed only when a scenario needs it (it starts two pods).
    pub network_policy: Option<Result<bool, String>>,
}

impl Facts {
    /// Why this lab cannot carry a scenario with this profile, or `None` when it can.
    pub fn cannot_carry(&self, p: &Profile) -> Option<String> {
        let mut why = Vec::new();
        if (p.nodes as usize) > self.nodes {
            why.push(format!("needs {} node(s), the lab has {}", p.nodes, self.nodes));
        }
        let mut need = |wanted: bool, fact: Option<&Result<bool, String>>, what: &str| {
            if !wanted {
                return;
            }
            match fact {
                Some(Ok(true)) => {}
                Some(Ok(false)) => why.push(format!("needs {what}; the lab has none")),
                Some(Err(e)) => why.push(format!("needs {what}; cannot tell whether the lab has it: {e}")),
                None => why.push(format!("needs {what}; not probed")),
            }
        };
        need(p.audit_log, Some(&self.audit_log), "an apiserver audit log");
        need(p.dns, Some(&self.dns), "cluster DNS (CoreDNS)");
        need(p.network_policy, self.network_policy.as_ref(), "NetworkPolicy enforcement");
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Reads the facts that cost nothing to learn.
pub async fn facts(kube: &Kube, nodes: &dyn NodeAccess, node_names: &[String]) -> Facts {
    let server_version = kube.server_version().await.map(|(v, _)| v).unwrap_or_else(|e| format!("unknown ({e})"));
    let audit_log = match node_names.first() {
        None => Err("no nodes".to_string()),
        Some(cp) => {
            let argv: Vec<String> = ["test", "-s", AUDIT_LOG_PATH].iter().map(|s| s.to_string()).collect();
            match nodes.exec(cp, &argv, None, NODE_TIMEOUT).await {
                Ok(o) => Ok(o.ok()),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let dns = dns_serving(kube).await;
    Facts { nodes: node_names.len(), server_version, audit_log, dns, network_policy: None }
}

/// Waits (bounded) until every node reports Ready: a starting snapshot of a lab still coming
/// up would hold state that goes away by itself. Returns the nodes that are not Ready.
pub async fn wait_nodes_ready(kube: &Kube, limit: Duration, progress: &(dyn Fn(&str) + Sync)) -> Vec<String> {
    let start = Instant::now();
    let mut said = Instant::now();
    loop {
        let not_ready: Vec<String> = match kube.list("v1", "Node", None, None, None).await {
            Ok(nodes) => nodes
                .iter()
                .filter(|n| {
                    !n.pointer("/status/conditions").and_then(|c| c.as_array()).is_some_and(|c| {
                        c.iter()
                            .any(|x| x.get("type") == Some(&json!("Ready")) && x.get("status") == Some(&json!("True")))
                    })
                })
                .filter_map(|n| n.pointer("/metadata/name").and_then(|v| v.as_str()).map(str::to_string))
                .collect(),
            Err(e) => vec![format!("(cannot list nodes: {e})")],
        };
        if not_ready.is_empty() || start.elapsed() > limit {
            return not_ready;
        }
        if said.elapsed() > Duration::from_secs(15) {
            progress(&format!(
                "  waiting for node(s) to be Ready: {} ({}s)…",
                not_ready.join(", "),
                start.elapsed().as_secs()
            ));
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Cluster DNS: the kube-dns Service exists and has a ready endpoint.
async fn dns_serving(kube: &Kube) -> Result<bool, String> {
    let key = ObjKey {
        api_version: "v1".into(),
        kind: "Endpoints".into(),
        namespace: Some("kube-system".into()),
        name: "kube-dns".into(),
    };
    match kube.get(&key).await {
        Ok(None) => Ok(false),
        Ok(Some(ep)) => Ok(ep.pointer("/subsets").and_then(|s| s.as_array()).is_some_and(|s| {
            s.iter().any(|x| x.get("addresses").and_then(|a| a.as_array()).is_some_and(|a| !a.is_empty()))
        })),
        Err(e) => Err(e.to_string()),
    }
}

const PROBE_NS_LABEL: &str = "klab.dev/probe";
/// The probe's namespaces are named `klab-np-probe-<random>`; snapshots leave them out.
pub const PROBE_NS_PREFIX: &str = "klab-np-probe-";

/// Probes NetworkPolicy enforcement for real: a server pod and a client pod; the client must
/// reach the server; then a deny-all ingress policy; the client must no longer reach it. The
/// probe's namespace is deleted afterwards (and leftovers of an earlier, interrupted probe
/// before it starts).
pub async fn probe_network_policy(kube: &Kube, image: &str, progress: &(dyn Fn(&str) + Sync)) -> Result<bool, String> {
    if let Ok(old) = kube.list("v1", "Namespace", None, Some(&format!("{PROBE_NS_LABEL}=network-policy")), None).await {
        for ns in old {
            if let Some(n) = ns.pointer("/metadata/name").and_then(|v| v.as_str()) {
                let _ = kube.delete(&ns_key(n)).await;
            }
        }
    }
    let ns = format!("{PROBE_NS_PREFIX}{:06x}", fastrand::u32(..0xffffff));
    progress(&format!("  probing NetworkPolicy enforcement (namespace {ns}, image {image})…"));
    let result = run_probe(kube, &ns, image).await;
    let _ = kube.delete(&ns_key(&ns)).await;
    // Gone before any scenario takes its starting snapshot.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        match kube.get(&ns_key(&ns)).await {
            Ok(None) => break,
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
    result
}

fn ns_key(name: &str) -> ObjKey {
    ObjKey { api_version: "v1".into(), kind: "Namespace".into(), namespace: None, name: name.into() }
}

fn pod(ns: &str, name: &str, image: &str, command: &[&str]) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": false,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent", "command": command}]
        }
    })
}

async fn run_probe(kube: &Kube, ns: &str, image: &str) -> Result<bool, String> {
    let e = |what: &str| {
        let what = what.to_string();
        move |err: crate::cluster::kube::KubeError| format!("{what}: {err}")
    };
    kube.create(&json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {PROBE_NS_LABEL: "network-policy"}}}))
        .await
        .map_err(e("create the probe namespace"))?;
    let serve = "mkdir -p /w && echo klab-probe > /w/index.html && exec httpd -f -p 8080 -h /w";
    kube.create(&pod(ns, "server", image, &["sh", "-c", serve])).await.map_err(e("create the server pod"))?;
    kube.create(&pod(ns, "client", image, &["sleep", "600"])).await.map_err(e("create the client pod"))?;
    let start = Instant::now();
    let server_ip = loop {
        let pods = kube.list("v1", "Pod", Some(ns), None, None).await.map_err(e("list the probe pods"))?;
        let running = |n: &str| {
            pods.iter().find(|p| p.pointer("/metadata/name").and_then(|v| v.as_str()) == Some(n)).and_then(|p| {
                (p.pointer("/status/phase").and_then(|v| v.as_str()) == Some("Running"))
                    .then(|| p.pointer("/status/podIP").and_then(|v| v.as_str()).unwrap_or_default().to_string())
            })
        };
        if let (Some(ip), Some(_)) = (running("server"), running("client"))
            && !ip.is_empty()
        {
            break ip;
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!("the probe pods (image {image}) did not run within 2 minutes"));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    // `timeout`, not wget's own -T: Debian's static busybox 1.35 wget crashes with -T.
    let fetch: Vec<String> = ["timeout", "4", "wget", "-q", "-O", "-", &format!("http://{server_ip}:8080/")]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let reach = || async {
        match kube.exec(ns, "client", None, &fetch, Duration::from_secs(15)).await {
            Ok((0, out, _)) => Ok(out.contains("klab-probe")),
            Ok(_) => Ok(false),
            Err(err) => Err(format!("exec in the probe client: {err}")),
        }
    };
    // The server needs a moment after Running; allow a few tries.
    let mut reached = false;
    for _ in 0..10 {
        if reach().await? {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if !reached {
        return Err("pod-to-pod traffic fails even without a policy".into());
    }
    kube.create(&json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-ingress", "namespace": ns},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"]}}))
        .await
        .map_err(e("create the probe's NetworkPolicy"))?;
    // Enforcers need a moment to program the policy.
    for _ in 0..15 {
        if !reach().await? {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            nodes: 1,
            server_version: "v1.20.2".into(),
            audit_log: Ok(true),
            dns: Ok(false),
            network_policy: Some(Ok(false)),
        }
    }

    #[test]
    fn every_missing_need_is_named() {
        let p = Profile { nodes: 2, network_policy: true, audit_log: true, dns: true };
        let why = facts().cannot_carry(&p).unwrap();
        assert!(why.contains("needs 2 node(s), the lab has 1"), "{why}");
        assert!(why.contains("cluster DNS"), "{why}");
        assert!(why.contains("NetworkPolicy enforcement; the lab has none"), "{why}");
        assert!(!why.contains("audit"), "{why}");
    }

    #[test]
    fn a_lab_with_everything_carries_it_and_unknowns_skip() {
        let mut f = facts();
        f.dns = Ok(true);
        f.network_policy = Some(Ok(true));
        f.nodes = 2;
        assert_eq!(f.cannot_carry(&Profile { nodes: 2, network_policy: true, audit_log: true, dns: true }), None);
        f.audit_log = Err("node unreachable".into());
        let why = f.cannot_carry(&Profile { nodes: 1, network_policy: false, audit_log: true, dns: false }).unwrap();
        assert!(why.contains("cannot tell") && why.contains("node unreachable"), "{why}");
    }
}
