//! What "the cluster is as before" means for selftest: the objects a drill could leave behind
//! (with their content, minus what the cluster itself changes all the time) and the nodes'
//! state a fault could leave changed (sysctls, static pod manifests, files the plan writes,
//! the kubelet). Taken before setup and compared after reset.

use crate::cluster::kube::Kube;
use crate::cluster::node::{NODE_TIMEOUT, NodeAccess};
use crate::cluster::nodeops::NodeOps;
use crate::scenario::kinds::Action;
use crate::scenario::plan::Plan;
use serde_json::Value;
use std::collections::BTreeMap;

/// Types whose objects a drill creates or changes. Types the server does not serve (e.g.
/// PodSecurityPolicy after 1.24, CronJob's batch/v1 before 1.21) are left out, not failed.
const TYPES: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("v1", "Pod"),
    ("v1", "Node"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("batch/v1beta1", "CronJob"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("policy/v1beta1", "PodSecurityPolicy"),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
];

/// Annotations the cluster rewrites by itself (rollout revisions, leader election).
const VOLATILE_ANNOTATIONS: &[&str] = &[
    "deployment.kubernetes.io/revision",
    "deprecated.daemonset.template.generation",
    "kubectl.kubernetes.io/last-applied-configuration",
    "control-plane.alpha.kubernetes.io/leader",
    "endpoints.kubernetes.io/last-change-trigger-time",
];

/// Sysctls every drill is held to, besides those its plan sets.
const BASE_SYSCTLS: &[&str] = &["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"];

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Snapshot {
    /// `Kind ns/name` → a canonical text of what matters in the object.
    pub objects: BTreeMap<String, String>,
    /// `node: what` → value.
    pub nodes: BTreeMap<String, String>,
    /// Types that could not be read (not served, forbidden), for the record.
    pub unread: Vec<String>,
}

/// Takes a snapshot through the API and the nodes. An unreachable apiserver is an error: a
/// comparison against nothing would pass anything.
pub async fn take(kube: &Kube, nodes: &dyn NodeAccess, node_names: &[String], plan: &Plan) -> Result<Snapshot, String> {
    let mut snap = Snapshot::default();
    let lists = futures::future::join_all(TYPES.iter().map(|(av, kind)| kube.list(av, kind, None, None, None))).await;
    let mut reached = false;
    for ((av, kind), r) in TYPES.iter().zip(lists) {
        match r {
            Ok(items) => {
                reached = true;
                for o in items {
                    if let Some((key, body)) = fingerprint(kind, &o) {
                        snap.objects.insert(key, body);
                    }
                }
            }
            Err(e) => {
                let msg = e.to_string();
                if msg.contains("cannot reach") || msg.contains("did not answer") {
                    return Err(format!("cannot read {kind}: {msg}"));
                }
                snap.unread.push(format!("{av} {kind}"));
            }
        }
    }
    if !reached {
        return Err("the apiserver serves none of the object types a drill uses".into());
    }
    let (sysctls, files) = node_targets(plan);
    let ops = NodeOps { access: nodes };
    for n in node_names {
        for key in &sysctls {
            let v = ops.sysctl_get(n, key).await.unwrap_or_else(|e| format!("unreadable ({e})"));
            snap.nodes.insert(format!("{n}: sysctl {key}"), v);
        }
        let argv: Vec<String> =
            ["find", "/etc/kubernetes/manifests", "-maxdepth", "1", "-type", "f", "-exec", "md5sum", "{}", "+"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        match nodes.exec(n, &argv, None, NODE_TIMEOUT).await {
            Ok(o) => {
                for l in o.stdout.lines() {
                    if let Some((sum, path)) = l.split_once(char::is_whitespace) {
                        snap.nodes.insert(format!("{n}: file {}", path.trim()), sum.to_string());
                    }
                }
            }
            Err(e) => return Err(format!("cannot read node {n}: {e}")),
        }
        for path in &files {
            let v = match ops.read_file(n, path).await {
                Ok(Some(bytes)) => format!("{} bytes, fnv {:016x}", bytes.len(), fnv(&bytes)),
                Ok(None) => "absent".into(),
                Err(e) => format!("unreadable ({e})"),
            };
            snap.nodes.insert(format!("{n}: file {path}"), v);
        }
        let kubelet = match ops.kubelet_running(n).await {
            Ok(true) => "running".to_string(),
            Ok(false) => "stopped".to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        snap.nodes.insert(format!("{n}: kubelet"), kubelet);
    }
    Ok(snap)
}

/// The sysctl keys and node files a plan touches, plus the base sysctls.
fn node_targets(plan: &Plan) -> (Vec<String>, Vec<String>) {
    let mut sysctls: Vec<String> = BASE_SYSCTLS.iter().map(|s| s.to_string()).collect();
    let mut files = Vec::new();
    for st in plan.steps() {
        match &st.action.0 {
            Action::Sysctl(a) => sysctls.extend(a.settings.keys().cloned()),
            Action::NodeFile(a) => files.push(a.path.clone()),
            _ => {}
        }
    }
    sysctls.sort();
    sysctls.dedup();
    files.sort();
    files.dedup();
    (sysctls, files)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

/// The key and canonical content of an object, or `None` for objects the cluster itself
/// creates and replaces (pods of controllers, klab's own write probes).
pub fn fingerprint(kind: &str, o: &Value) -> Option<(String, String)> {
    let name = o.pointer("/metadata/name")?.as_str()?;
    let ns = o.pointer("/metadata/namespace").and_then(|v| v.as_str());
    let key = match ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    if kind == "ConfigMap" && name.starts_with("klab-write-probe-") {
        return None;
    }
    // selftest's own NetworkPolicy probe (deleted before a scenario starts, maybe still going).
    if ns.unwrap_or(if kind == "Namespace" { name } else { "" }).starts_with(super::preflight::PROBE_NS_PREFIX) {
        return None;
    }
    if kind == "Pod" {
        // Only pods nobody owns: a controller's pods come and go by design.
        let owned = o.pointer("/metadata/ownerReferences").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty());
        let mirror = o.pointer("/metadata/annotations/kubernetes.io~1config.mirror").is_some();
        return (!owned && !mirror).then(|| (key, String::new()));
    }
    let labels = o.pointer("/metadata/labels").cloned().unwrap_or(Value::Null);
    let mut annotations = o.pointer("/metadata/annotations").cloned().unwrap_or(Value::Null);
    if let Some(m) = annotations.as_object_mut() {
        m.retain(|k, _| !VOLATILE_ANNOTATIONS.contains(&k.as_str()));
    }
    let body = if kind == "Node" {
        // Nodes: who they are and what keeps pods off them; the rest is the kubelet's status.
        // The node lifecycle controller's taints follow the kubelet's health (held separately,
        // as "kubelet running") and lag it by seconds; the rest is someone's decision.
        let taints: Vec<&Value> = o
            .pointer("/spec/taints")
            .and_then(|t| t.as_array())
            .map(|t| {
                t.iter()
                    .filter(|x| {
                        !matches!(
                            x.get("key").and_then(|k| k.as_str()),
                            Some("node.kubernetes.io/not-ready" | "node.kubernetes.io/unreachable")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({"labels": labels, "taints": taints, "unschedulable": o.pointer("/spec/unschedulable")})
    } else {
        let mut rest = o.clone();
        if let Some(m) = rest.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
            m.remove("apiVersion");
            m.remove("kind");
        }
        serde_json::json!({"labels": labels, "annotations": annotations, "content": rest})
    };
    Some((key, body.to_string()))
}

/// What differs, one line each: `+ added`, `- gone`, `~ changed`. Empty when equal.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in &before.objects {
        match after.objects.get(k) {
            None => out.push(format!("- {k} is gone")),
            Some(a) if a != v => out.push(format!("~ {k} changed: {}", first_difference(v, a))),
            _ => {}
        }
    }
    for k in after.objects.keys() {
        if !before.objects.contains_key(k) {
            out.push(format!("+ {k} was left behind"));
        }
    }
    for (k, v) in &before.nodes {
        match after.nodes.get(k) {
            None => out.push(format!("- {k} is gone (was {v})")),
            Some(a) if a != v => out.push(format!("~ {k}: {v} → {a}")),
            _ => {}
        }
    }
    for (k, v) in &after.nodes {
        if !before.nodes.contains_key(k) {
            out.push(format!("+ {k}: {v} (new)"));
        }
    }
    out
}

/// The first JSON path where two canonical texts differ, with both values (shortened).
fn first_difference(a: &str, b: &str) -> String {
    let (Ok(va), Ok(vb)) = (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)) else {
        return "content differs".into();
    };
    fn walk(a: &Value, b: &Value, path: &mut Vec<String>) -> Option<String> {
        match (a, b) {
            (Value::Object(ma), Value::Object(mb)) => {
                for (k, x) in ma {
                    path.push(k.clone());
                    let r = match mb.get(k) {
                        Some(y) => walk(x, y, path),
                        None => Some(format!("{} removed", path.join("."))),
                    };
                    path.pop();
                    if r.is_some() {
                        return r;
                    }
                }
                mb.keys().find(|k| !ma.contains_key(*k)).map(|k| format!("{}.{k} added", path.join(".")))
            }
            (Value::Array(xa), Value::Array(xb)) if xa.len() == xb.len() => {
                for (i, (x, y)) in xa.iter().zip(xb).enumerate() {
                    path.push(i.to_string());
                    let r = walk(x, y, path);
                    path.pop();
                    if r.is_some() {
                        return r;
                    }
                }
                None
            }
            _ if a == b => None,
            _ => Some(format!("{}: {} → {}", path.join("."), short(a), short(b))),
        }
    }
    walk(&va, &vb, &mut Vec::new()).unwrap_or_else(|| "content differs".into())
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 { format!("{}…", s.chars().take(80).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volatile_annotations_and_status_do_not_count() {
        let a = json!({"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1",
            "annotations": {"deployment.kubernetes.io/revision": "1"}}, "spec": {"replicas": 1}, "status": {"x": 1}});
        let b = json!({"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "9",
            "annotations": {"deployment.kubernetes.io/revision": "2"}}, "spec": {"replicas": 1}, "status": {"x": 2}});
        assert_eq!(fingerprint("Deployment", &a), fingerprint("Deployment", &b));
        let c = json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 0}});
        assert_ne!(fingerprint("Deployment", &a).unwrap().1, fingerprint("Deployment", &c).unwrap().1);
    }

    #[test]
    fn lifecycle_taints_do_not_count_a_drain_does() {
        let ready = json!({"metadata": {"name": "w"}, "spec": {}});
        let not_ready = json!({"metadata": {"name": "w"}, "spec": {"taints": [
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "timeAdded": "2026-11-27T00:00:00Z"}]}});
        let cordoned = json!({"metadata": {"name": "w"}, "spec": {"unschedulable": true, "taints": [
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}});
        assert_eq!(fingerprint("Node", &ready), fingerprint("Node", &not_ready));
        assert_ne!(fingerprint("Node", &ready), fingerprint("Node", &cordoned));
    }

    #[test]
    fn controller_pods_and_write_probes_are_ignored_standalone_pods_are_not() {
        let owned =
            json!({"metadata": {"name": "web-1", "namespace": "shop", "ownerReferences": [{"kind": "ReplicaSet"}]}});
        assert!(fingerprint("Pod", &owned).is_none());
        let alone = json!({"metadata": {"name": "toolbox", "namespace": "shop"}});
        assert_eq!(fingerprint("Pod", &alone).unwrap().0, "Pod shop/toolbox");
        let probe = json!({"metadata": {"name": "klab-write-probe-0000abcd", "namespace": "default"}});
        assert!(fingerprint("ConfigMap", &probe).is_none());
    }

    #[test]
    fn diff_names_leaks_losses_changes_and_node_state() {
        let mut before = Snapshot::default();
        before.objects.insert("Namespace kube-system".into(), "{}".into());
        before.objects.insert("ConfigMap a/b".into(), r#"{"content":{"data":{"k":"1"}}}"#.into());
        before.nodes.insert("n1: sysctl net.ipv4.ip_forward".into(), "1".into());
        let mut after = before.clone();
        assert!(diff(&before, &after).is_empty());
        after.objects.insert("Namespace shop".into(), "{}".into());
        after.objects.remove("Namespace kube-system");
        after.objects.insert("ConfigMap a/b".into(), r#"{"content":{"data":{"k":"2"}}}"#.into());
        after.nodes.insert("n1: sysctl net.ipv4.ip_forward".into(), "0".into());
        let d = diff(&before, &after);
        assert!(d.contains(&"+ Namespace shop was left behind".to_string()), "{d:?}");
        assert!(d.contains(&"- Namespace kube-system is gone".to_string()), "{d:?}");
        assert!(d.contains(&"~ ConfigMap a/b changed: content.data.k: \"1\" → \"2\"".to_string()), "{d:?}");
        assert!(d.contains(&"~ n1: sysctl net.ipv4.ip_forward: 1 → 0".to_string()), "{d:?}");
    }
}
