//! An opt-in model of a kind cluster inside the fake API server, for the drills nothing real on
//! this machine can carry (`deny-all-egress` needs a NetworkPolicy enforcer, `coredns-down`
//! needs CoreDNS). Switched on by `FakeApiServer::model_cluster()`; off, the fake server is
//! unchanged. It is a model, not a cluster: every answer below is computed from the objects the
//! fake server holds, by the rules written here, and what is not written here does not happen.
//!
//! Modelled:
//! - **kube-system as kind has it** (`seed`): a `coredns` Deployment (2 replicas, labels and pod
//!   template `k8s-app: kube-dns`, kind's CoreDNS image, ports 53/UDP `dns`, 53/TCP `dns-tcp`,
//!   9153 `metrics`), the `kube-dns` Service (ClusterIP 10.96.0.10, selector
//!   `k8s-app: kube-dns`), the `kubernetes` Service (443 → 6443) whose Endpoints name the
//!   apiserver on the node's IP ([`NODE_IP`]:6443), and the node's InternalIP.
//! - **Admission-time defaults** (`admit`, on create): Services get a free ClusterIP from
//!   10.96.100.0 up (unless one is given, `None`, or ExternalName), `type: ClusterIP`, and per
//!   port `protocol: TCP` and `targetPort = port`. Pods are bound to the node, run and are Ready
//!   at once (the kubelet), with a unique IP from 10.244.0.2 up; the kubelet's Service variables
//!   (`<NAME>_SERVICE_HOST`/`_PORT` of the namespace's Services and `kubernetes`) are fixed for
//!   the pod at that moment, as for a container started then.
//! - **Controllers**, run to a fixed point after every write (synchronously: no controller lag
//!   is modelled): Deployment → one ReplicaSet per pod-template hash (`<name>-<hash>`, label
//!   `pod-template-hash`), the current one scaled to `spec.replicas` and older ones to 0 (a
//!   rollout completes at once), and `status` as the deployment controller writes it
//!   (observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas, and the
//!   `Available` / `Progressing` conditions: `NewReplicaSetAvailable` when complete);
//!   ReplicaSet → owned pods (`<rs>-<random>`, template labels, ownerReference) created or
//!   deleted to match `spec.replicas`, and its status; Endpoints → for every Service with a
//!   selector, the Ready pods of its namespace that carry every selector label, ports resolved
//!   from `targetPort` (numbers, or names of the pods' container ports), grouped into subsets;
//!   no `subsets` at all when nothing matches; Endpoints of deleted Services go; garbage
//!   collection → an object whose every ownerReference names a uid that no longer exists is
//!   deleted (a deleted Deployment takes its ReplicaSets, they their pods).
//! - **The pod network**, answering pod exec when no scripted responder (`on_exec`) is
//!   registered for the pod. Commands understood — those the two drills' checks, their setup
//!   waits and selftest's NetworkPolicy probe run (read from `checks/*.yaml`,
//!   `scenarios/{deny-all-egress,coredns-down}.yaml`, `src/selftest/preflight.rs`):
//!   `env [K=V…] [cmd…]`, `timeout N cmd…`, `wget [-q] -O - [--no-check-certificate]
//!   [--header H]… URL`, `nslookup NAME [SERVER]`, and `sh -c SCRIPT …` for exactly the two
//!   scripts of `checks/service-get-exec.yaml` and `checks/api-reachable-exec.yaml` (compared
//!   with those files' text, so a changed check fails here loudly instead of being guessed).
//!   Anything else exits 127 saying it is not modelled.
//!   - Routing: a Service ClusterIP and port → that Service's Endpoints (the first ready
//!     address: kube-proxy's random pick is not modelled) → the pod, or the apiserver at
//!     [`NODE_IP`]:6443; a pod IP directly; any other address answers nothing. A Service without
//!     endpoints refuses TCP (kube-proxy's REJECT) and swallows UDP.
//!   - NetworkPolicies (networking.k8s.io/v1, the standard semantics), checked on the
//!     translated destination (after kube-proxy's DNAT), for both directions: a pod is isolated
//!     for Egress / Ingress when a policy of its namespace selects it (`podSelector`, `{}` = all)
//!     and lists that type in `policyTypes` (absent: `Ingress`, plus `Egress` when it has egress
//!     rules); an isolated pod's traffic passes only when some rule of a selecting policy
//!     allows it. A rule with no `to`/`from` allows every peer, with no `ports` every port. Peers:
//!     `podSelector` (pods of the policy's namespace), `namespaceSelector` (every pod of the
//!     matching namespaces, by Namespace labels), both (the selected pods of those namespaces),
//!     `ipBlock` (`cidr` minus `except`, IPv4; matched against any address, pod or not — the
//!     apiserver on the node is reachable through an isolated pod's egress only by `ipBlock`).
//!     Ports: `protocol` (default TCP), `port` as a number (with `endPort`) or a name resolved
//!     in the destination pod's container ports, absent = all ports. Selectors: `matchLabels`
//!     and `matchExpressions` (In, NotIn, Exists, DoesNotExist). Traffic that a policy denies
//!     is dropped (it hangs). `enforce_network_policies(false)` plays a CNI that ignores them.
//!   - Servers: a pod whose container command runs busybox `httpd [-p PORT] -h DIR` serves
//!     HTTP on PORT (default 80), and the page at `/` and `/index.html` is the text its command
//!     `echo`es into `DIR/index.html` (the drills' `web` pods and the probe's server do exactly
//!     that; the content comes from the pod template's command, no per-test table); other paths
//!     are 404, other ports refuse. A pod whose image is CoreDNS's answers DNS on 53/UDP and TCP:
//!     `<svc>.<ns>.svc.cluster.local` → the Service's ClusterIP (headless: its ready endpoint
//!     IPs), other `cluster.local` names NXDOMAIN, anything else SERVFAIL (no upstream). The
//!     apiserver answers HTTPS `/api` (APIVersions), `/version`, `/healthz`, `/livez`, `/readyz`
//!     when a bearer token is sent, else 403 (kind's anonymous user); plain HTTP gets 400.
//!   - Pods resolve names through the cluster DNS IP the kubelet writes into resolv.conf
//!     ([`CLUSTER_DNS`], kind's), with the search list `<ns>.svc.cluster.local svc.cluster.local
//!     cluster.local` and ndots 5, as a `ClusterFirst` pod; the query must be routed and allowed
//!     like any UDP packet to port 53.
//!   - Time is not simulated, only compared: a dropped connection never ends, an unanswered DNS
//!     lookup ends after 10 s (nslookup: ";; connection timed out; no servers could be
//!     reached") or 15 s (wget: "bad address"); `timeout N` kills what would last N seconds or
//!     more (exit 143, as busybox's timeout). Every answer comes back at once. A command that
//!     would never end without a `timeout` around it exits 137 and says so.
//!   - The service account token is mounted unless the pod sets
//!     `automountServiceAccountToken: false`.
//!   - Every routing and policy decision is logged (`FakeApiServer::network_log()`), so a test
//!     can check *why* traffic passed or was dropped.
//!
//! Not modelled: StatefulSets, DaemonSets, Jobs, kube-proxy's load balancing (always the first
//! endpoint), NodePorts and LoadBalancers, readiness probes and not-ready pods, container
//! images, restarts, scheduling, resources, multiple nodes' networks, hostNetwork pods,
//! IPv6, EndpointSlices, `dnsPolicy` other than ClusterFirst, CoreDNS's own configuration and
//! upstream resolvers, TLS (HTTPS is only told apart from HTTP), named NetworkPolicy ports toward
//! a destination that is not a pod (they match nothing), policies of other API groups (Calico,
//! Cilium), the containers named in exec (any container answers as the pod),
//! ServiceAccount-level `automountServiceAccountToken`, and every command not listed above.

use super::{Key, State, delete_object, key, now, random_suffix, running_pod_status};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

/// The kind node's address: pods' hostIP and where the apiserver listens (port 6443).
pub const NODE_IP: &str = "172.18.0.2";
/// The apiserver's port on the node.
pub const APISERVER_PORT: u16 = 6443;
/// What the kubelet writes into a pod's resolv.conf (kind's `clusterDNS`).
pub const CLUSTER_DNS: &str = "10.96.0.10";
/// CoreDNS's image on kind v0.24 (kubeadm 1.31's).
pub const COREDNS_IMAGE: &str = "registry.k8s.io/coredns/coredns:v1.11.1";

/// How long an unanswered DNS lookup lasts before the client gives up (busybox nslookup, and
/// libc's resolver over the search list for wget).
const NSLOOKUP_GIVES_UP: u64 = 10;
const WGET_LOOKUP_GIVES_UP: u64 = 15;

pub struct Model {
    /// The modelled CNI enforces NetworkPolicies.
    pub enforce_network_policy: bool,
    /// Every routing, DNS and policy decision, in order.
    pub net_log: Vec<String>,
    /// The Service variables the kubelet gave each pod (by namespace and name) when it started.
    kubelet_env: HashMap<(String, String), Vec<(String, String)>>,
}

impl Default for Model {
    fn default() -> Self {
        Model { enforce_network_policy: true, net_log: vec![], kubelet_env: HashMap::new() }
    }
}

// ============================================================================ object helpers

fn items(s: &State, api_version: &str, kind: &str) -> Vec<Value> {
    s.objects.iter().filter(|(k, _)| k.0 == api_version && k.1 == kind).map(|(_, v)| v.clone()).collect()
}

fn items_in(s: &State, api_version: &str, kind: &str, ns: &str) -> Vec<Value> {
    s.objects.iter().filter(|(k, _)| k.0 == api_version && k.1 == kind && k.2 == ns).map(|(_, v)| v.clone()).collect()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn name_of(v: &Value) -> &str {
    text(v, "/metadata/name")
}

fn ns_of(v: &Value) -> &str {
    text(v, "/metadata/namespace")
}

fn uid_of(v: &Value) -> &str {
    text(v, "/metadata/uid")
}

fn labels_of(v: &Value) -> &Value {
    v.pointer("/metadata/labels").unwrap_or(&Value::Null)
}

fn obj_key(v: &Value) -> Key {
    key(text(v, "/apiVersion"), text(v, "/kind"), ns_of(v), name_of(v))
}

/// A LabelSelector (`matchLabels`, `matchExpressions`); `{}` selects everything.
fn selector_matches(sel: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object)
        && ml.iter().any(|(k, v)| get(k) != v.as_str())
    {
        return false;
    }
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let k = text(e, "/key");
        let values: Vec<&str> =
            e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let ok = match text(e, "/operator") {
            "In" => get(k).is_some_and(|x| values.contains(&x)),
            "NotIn" => get(k).is_none_or(|x| !values.contains(&x)),
            "Exists" => get(k).is_some(),
            "DoesNotExist" => get(k).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// A Service's selector: every label must be there with that value.
fn service_selects(sel: &Map<String, Value>, labels: &Value) -> bool {
    sel.iter().all(|(k, v)| labels.get(k).and_then(Value::as_str) == v.as_str())
}

fn controller_uid(o: &Value) -> Option<&str> {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller") == Some(&json!(true)))
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
}

fn owner_ref(owner: &Value) -> Value {
    json!([{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": name_of(owner), "uid": uid_of(owner),
            "controller": true, "blockOwnerDeletion": true}])
}

fn running(p: &Value) -> bool {
    text(p, "/status/phase") == "Running" && p.pointer("/metadata/deletionTimestamp").is_none()
}

fn ready(p: &Value) -> bool {
    running(p)
        && p.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|c| {
            c.iter().any(|x| x.get("type") == Some(&json!("Ready")) && x.get("status") == Some(&json!("True")))
        })
}

fn pod_ip(p: &Value) -> &str {
    text(p, "/status/podIP")
}

fn containers(p: &Value) -> impl Iterator<Item = &Value> {
    p.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten()
}

// ============================================================================ seed and admission

/// What a fresh kind cluster has that the model needs: the node's address, the `kubernetes`
/// Service and its endpoint, CoreDNS and the kube-dns Service.
pub(super) fn seed(s: &mut State) {
    let nodes = items(s, "v1", "Node");
    match nodes.first() {
        Some(n) => {
            let mut n = n.clone();
            n["status"]["addresses"] =
                json!([{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": name_of(&n)}]);
            s.put(n);
        }
        None => {
            s.put(json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "klab-control-plane", "labels": {"node-role.kubernetes.io/control-plane": ""}},
                "spec": {"providerID": "kind://docker/klab/klab-control-plane"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}],
                           "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": "klab-control-plane"}]}}));
        }
    }
    let api_ip = s
        .objects
        .get(&key("v1", "Service", "default", "kubernetes"))
        .map(|svc| text(svc, "/spec/clusterIP").to_string())
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| "10.96.0.1".into());
    s.put(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": api_ip, "clusterIPs": [api_ip],
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": APISERVER_PORT}]}}));
    s.put(json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": NODE_IP}], "ports": [{"name": "https", "port": APISERVER_PORT, "protocol": "TCP"}]}]}));
    s.put(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}},
        "spec": {"type": "ClusterIP", "clusterIP": CLUSTER_DNS, "clusterIPs": [CLUSTER_DNS], "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}}));
    s.put(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {"priorityClassName": "system-cluster-critical", "serviceAccountName": "coredns", "dnsPolicy": "Default",
                             "containers": [{"name": "coredns", "image": COREDNS_IMAGE, "args": ["-conf", "/etc/coredns/Corefile"],
                                 "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                           {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                           {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}],
                                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}}}]}}}}));
}

/// Admission-time defaults of objects created through the API (see the file's top).
pub(super) fn admit(s: &mut State, obj: &mut Value) {
    if s.model.is_none() {
        return;
    }
    match (text(obj, "/apiVersion"), text(obj, "/kind")) {
        ("v1", "Service") => admit_service(s, obj),
        ("v1", "Pod") => start_pod(s, obj),
        _ => {}
    }
}

fn admit_service(s: &State, svc: &mut Value) {
    let ty = text(svc, "/spec/type").to_string();
    let ty = if ty.is_empty() { "ClusterIP".to_string() } else { ty };
    svc["spec"]["type"] = json!(ty);
    if ty != "ExternalName" {
        if text(svc, "/spec/clusterIP").is_empty() {
            let used: HashSet<String> =
                items(s, "v1", "Service").iter().map(|x| text(x, "/spec/clusterIP").to_string()).collect();
            let ip = (0u32..)
                .map(|i| format!("10.96.{}.{}", 100 + i / 250, i % 250 + 1))
                .find(|ip| !used.contains(ip))
                .unwrap_or_default();
            svc["spec"]["clusterIP"] = json!(ip);
        }
        svc["spec"]["clusterIPs"] = json!([svc["spec"]["clusterIP"].clone()]);
    }
    if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports {
            if p.get("protocol").is_none() {
                p["protocol"] = json!("TCP");
            }
            if p.get("targetPort").is_none() {
                p["targetPort"] = p["port"].clone();
            }
        }
    }
}

/// The scheduler and the kubelet: bound to the node, running and Ready with a unique IP, and the
/// Service variables of this moment fixed for its containers.
fn start_pod(s: &mut State, pod: &mut Value) {
    if text(pod, "/status/phase") != "Running" {
        pod["status"] = running_pod_status(pod);
    }
    let used: HashSet<String> = items(s, "v1", "Pod").iter().map(|p| pod_ip(p).to_string()).collect();
    let ip = (0u32..)
        .map(|i| format!("10.244.{}.{}", i / 250, i % 250 + 2))
        .find(|ip| !used.contains(ip))
        .unwrap_or_default();
    pod["status"]["podIP"] = json!(ip);
    pod["status"]["podIPs"] = json!([{"ip": ip}]);
    pod["status"]["hostIP"] = json!(NODE_IP);
    if text(pod, "/spec/nodeName").is_empty() {
        let node = items(s, "v1", "Node").first().map(|n| name_of(n).to_string()).unwrap_or_default();
        pod["spec"]["nodeName"] = json!(node);
    }
    let ns = ns_of(pod).to_string();
    let mut env = Vec::new();
    let mut services = items_in(s, "v1", "Service", &ns);
    if ns != "default"
        && let Some(k) = s.objects.get(&key("v1", "Service", "default", "kubernetes"))
    {
        services.push(k.clone());
    }
    for svc in &services {
        let ip = text(svc, "/spec/clusterIP");
        let Some(port) = svc.pointer("/spec/ports/0/port").and_then(Value::as_i64) else { continue };
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let prefix = name_of(svc).to_uppercase().replace('-', "_");
        env.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        env.push((format!("{prefix}_SERVICE_PORT"), port.to_string()));
    }
    if let Some(m) = s.model.as_mut() {
        m.kubelet_env.insert((ns, name_of(pod).to_string()), env);
    }
}

// ============================================================================ controllers

/// Runs the controllers until nothing changes any more (bounded).
pub(super) fn reconcile(s: &mut State) {
    if s.model.is_none() {
        return;
    }
    for _ in 0..20 {
        let changed = collect_garbage(s) | deployments(s) | replica_sets(s) | endpoints(s);
        if !changed {
            return;
        }
    }
    eprintln!("fake cluster model: the controllers did not settle after 20 rounds");
}

/// Deletes objects whose every owner is gone.
fn collect_garbage(s: &mut State) -> bool {
    let uids: HashSet<&str> = s.objects.values().map(uid_of).collect();
    let orphans: Vec<Key> = s
        .objects
        .iter()
        .filter(|(_, o)| {
            o.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|refs| {
                !refs.is_empty()
                    && refs.iter().all(|r| !uids.contains(r.get("uid").and_then(Value::as_str).unwrap_or("")))
            })
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in &orphans {
        delete_object(s, k);
    }
    !orphans.is_empty()
}

/// Objects' key order changes with patches; the hash must not.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, String> = m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let parts: Vec<String> = sorted.iter().map(|(k, v)| format!("{}:{v}", json!(k))).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The pod-template hash, encoded as Kubernetes encodes it (FNV-32a, decimal, "safe" letters).
fn template_hash(template: &Value) -> String {
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let h = canonical(template).bytes().fold(0x811c9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x01000193));
    h.to_string().bytes().map(|b| SAFE[b as usize % SAFE.len()] as char).collect()
}

fn deployments(s: &mut State) -> bool {
    let mut changed = false;
    for d in items(s, "apps/v1", "Deployment") {
        let (ns, name, uid) = (ns_of(&d).to_string(), name_of(&d).to_string(), uid_of(&d).to_string());
        let want = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let template = d.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
        let hash = template_hash(&template);
        let rs_name = format!("{name}-{hash}");
        let owned = |s: &State| -> Vec<Value> {
            items_in(s, "apps/v1", "ReplicaSet", &ns).into_iter().filter(|r| controller_uid(r) == Some(&uid)).collect()
        };
        match owned(s).into_iter().find(|r| name_of(r) == rs_name) {
            None => {
                let mut tmpl = template.clone();
                tmpl["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = d.pointer("/spec/selector").cloned().unwrap_or_else(|| json!({}));
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                s.put(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": rs_name, "namespace": ns, "labels": tmpl["metadata"]["labels"].clone(),
                                 "ownerReferences": owner_ref(&d)},
                    "spec": {"replicas": want, "selector": selector, "template": tmpl}}));
                changed = true;
            }
            Some(mut cur) if cur.pointer("/spec/replicas").and_then(Value::as_i64) != Some(want) => {
                cur["spec"]["replicas"] = json!(want);
                s.put(cur);
                changed = true;
            }
            Some(_) => {}
        }
        for mut old in owned(s).into_iter().filter(|r| name_of(r) != rs_name) {
            if old.pointer("/spec/replicas").and_then(Value::as_i64) != Some(0) {
                old["spec"]["replicas"] = json!(0);
                s.put(old);
                changed = true;
            }
        }
        // Status, from the pods of every ReplicaSet it owns.
        let (mut total, mut updated, mut available) = (0i64, 0i64, 0i64);
        for rs in owned(s) {
            let ruid = uid_of(&rs).to_string();
            for p in items_in(s, "v1", "Pod", &ns).iter().filter(|p| {
                controller_uid(p) == Some(ruid.as_str()) && p.pointer("/metadata/deletionTimestamp").is_none()
            }) {
                total += 1;
                if name_of(&rs) == rs_name {
                    updated += 1;
                }
                if ready(p) {
                    available += 1;
                }
            }
        }
        let complete = updated >= want && total == updated && available >= want;
        let old_conditions: Vec<Value> =
            d.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        let condition = |ty: &str, status: &str, reason: &str, message: String| {
            old_conditions
                .iter()
                .find(|c| c["type"] == ty && c["status"] == status && c["reason"] == reason && c["message"] == message)
                .cloned()
                .unwrap_or_else(|| {
                    json!({"type": ty, "status": status, "reason": reason, "message": message,
                           "lastUpdateTime": now(), "lastTransitionTime": now()})
                })
        };
        let conditions = vec![
            if available >= want {
                condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.".into(),
                )
            } else {
                condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.".into(),
                )
            },
            if complete {
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                )
            } else {
                condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{rs_name}\" is progressing."),
                )
            },
        ];
        let mut status = json!({"observedGeneration": d.pointer("/metadata/generation").cloned().unwrap_or(json!(1))});
        for (field, n) in [
            ("replicas", total),
            ("updatedReplicas", updated),
            ("readyReplicas", available),
            ("availableReplicas", available),
            ("unavailableReplicas", (want - available).max(0)),
        ] {
            if n > 0 {
                status[field] = json!(n);
            }
        }
        status["conditions"] = json!(conditions);
        if d.get("status") != Some(&status) {
            let mut d = d.clone();
            d["status"] = status;
            s.put(d);
            changed = true;
        }
    }
    changed
}

fn replica_sets(s: &mut State) -> bool {
    let mut changed = false;
    for rs in items(s, "apps/v1", "ReplicaSet") {
        let (ns, uid) = (ns_of(&rs).to_string(), uid_of(&rs).to_string());
        let want = rs.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1).max(0) as usize;
        let pods: Vec<Value> = items_in(s, "v1", "Pod", &ns)
            .into_iter()
            .filter(|p| controller_uid(p) == Some(uid.as_str()) && p.pointer("/metadata/deletionTimestamp").is_none())
            .collect();
        for _ in pods.len()..want {
            let tmpl = rs.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
            let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{}-{}", name_of(&rs), random_suffix()), "namespace": ns,
                             "labels": tmpl.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                             "ownerReferences": owner_ref(&rs)},
                "spec": tmpl.get("spec").cloned().unwrap_or(json!({}))});
            if let Some(a) = tmpl.pointer("/metadata/annotations") {
                pod["metadata"]["annotations"] = a.clone();
            }
            start_pod(s, &mut pod);
            s.put(pod);
            changed = true;
        }
        for extra in pods.iter().skip(want).rev() {
            delete_object(s, &obj_key(extra));
            changed = true;
        }
        let pods: Vec<Value> = items_in(s, "v1", "Pod", &ns)
            .into_iter()
            .filter(|p| controller_uid(p) == Some(uid.as_str()) && p.pointer("/metadata/deletionTimestamp").is_none())
            .collect();
        let n = pods.len() as i64;
        let r = pods.iter().filter(|p| ready(p)).count() as i64;
        let mut status = json!({"replicas": n, "observedGeneration": rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1))});
        for (field, v) in [("fullyLabeledReplicas", n), ("readyReplicas", r), ("availableReplicas", r)] {
            if v > 0 {
                status[field] = json!(v);
            }
        }
        let cur = s.objects.get(&obj_key(&rs)).cloned();
        if let Some(mut cur) = cur
            && cur.get("status") != Some(&status)
        {
            cur["status"] = status;
            s.put(cur);
            changed = true;
        }
    }
    changed
}

/// The port a Service port leads to on this pod: a number, or a container port's name.
fn target_port(svc_port: &Value, pod: &Value) -> Option<i64> {
    let proto = svc_port.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
    match svc_port.get("targetPort").or_else(|| svc_port.get("port"))? {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => containers(pod)
            .flat_map(|c| c.get("ports").and_then(Value::as_array).into_iter().flatten())
            .find(|p| {
                p.get("name").and_then(Value::as_str) == Some(name.as_str())
                    && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == proto
            })
            .and_then(|p| p.get("containerPort"))
            .and_then(Value::as_i64),
        _ => None,
    }
}

fn endpoints(s: &mut State) -> bool {
    let mut changed = false;
    let services = items(s, "v1", "Service");
    for svc in &services {
        let Some(sel) = svc.pointer("/spec/selector").and_then(Value::as_object).filter(|m| !m.is_empty()) else {
            continue; // no selector: its Endpoints are someone else's (the apiserver's, a user's)
        };
        if text(svc, "/spec/type") == "ExternalName" {
            continue;
        }
        let (ns, name) = (ns_of(svc).to_string(), name_of(svc).to_string());
        let mut pods: Vec<Value> = items_in(s, "v1", "Pod", &ns)
            .into_iter()
            .filter(|p| ready(p) && service_selects(sel, labels_of(p)))
            .collect();
        pods.sort_by(|a, b| pod_ip(a).cmp(pod_ip(b)));
        let ports: Vec<Value> = svc.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut groups: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
        for p in &pods {
            let resolved: Vec<Value> = ports
                .iter()
                .filter_map(|sp| {
                    let port = target_port(sp, p)?;
                    let mut e =
                        json!({"port": port, "protocol": sp.get("protocol").and_then(Value::as_str).unwrap_or("TCP")});
                    if let Some(n) = sp.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                        e["name"] = json!(n);
                    }
                    Some(e)
                })
                .collect();
            if resolved.is_empty() && !ports.is_empty() {
                continue;
            }
            let entry = groups.entry(canonical(&json!(resolved))).or_insert_with(|| (vec![], resolved.clone()));
            entry.0.push(json!({"ip": pod_ip(p), "nodeName": text(p, "/spec/nodeName"),
                "targetRef": {"kind": "Pod", "name": name_of(p), "namespace": ns, "uid": uid_of(p)}}));
        }
        let subsets: Vec<Value> = groups
            .into_values()
            .map(|(addresses, ports)| {
                let mut sub = json!({"addresses": addresses});
                if !ports.is_empty() {
                    sub["ports"] = json!(ports);
                }
                sub
            })
            .collect();
        let k = key("v1", "Endpoints", &ns, &name);
        let mut ep = s.objects.get(&k).cloned().unwrap_or_else(
            || json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns}}),
        );
        let before = ep.clone();
        ep["metadata"]["labels"] = svc.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        if let Some(m) = ep.as_object_mut() {
            if subsets.is_empty() {
                m.shift_remove("subsets");
            } else {
                m.insert("subsets".into(), json!(subsets));
            }
        }
        if ep != before || !s.objects.contains_key(&k) {
            s.put(ep);
            changed = true;
        }
    }
    let gone: Vec<Key> = items(s, "v1", "Endpoints")
        .iter()
        .filter(|ep| !s.objects.contains_key(&key("v1", "Service", ns_of(ep), name_of(ep))))
        .map(obj_key)
        .collect();
    for k in &gone {
        delete_object(s, k);
        changed = true;
    }
    changed
}

// ============================================================================ the pod network

/// How a modelled command ended: its output, exit code, and how long it ran (`None`: never ends
/// by itself).
struct Run {
    out: String,
    err: String,
    code: i32,
    secs: Option<u64>,
}

impl Run {
    fn done(out: impl Into<String>, err: impl Into<String>, code: i32) -> Run {
        Run { out: out.into(), err: err.into(), code, secs: Some(0) }
    }
    fn hangs() -> Run {
        Run { out: String::new(), err: String::new(), code: 0, secs: None }
    }
    fn not_modelled(what: &str) -> Run {
        Run::done("", format!("fake cluster model: {what} is not modelled\n"), 127)
    }
}

/// The scripts of the checks that run `sh -c`, read from the check files themselves.
static SCRIPTS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    let script = |yaml: &str| -> String {
        let v: Value = serde_saphyr::from_str(yaml).expect("a check file");
        let cmd = v.pointer("/check/podExec/command").and_then(Value::as_array).expect("a podExec command");
        assert!(cmd.len() > 2 && cmd[0] == "sh" && cmd[1] == "-c", "not an `sh -c` check: {cmd:?}");
        cmd[2].as_str().expect("the script").to_string()
    };
    vec![
        ("service-get-exec", script(include_str!("../../checks/service-get-exec.yaml"))),
        ("api-reachable-exec", script(include_str!("../../checks/api-reachable-exec.yaml"))),
    ]
});

/// Where a connection ends up after routing.
enum Dest<'a> {
    Pod(&'a Value),
    Apiserver,
}

enum Dns {
    Found(String, Vec<String>),
    NxDomain,
    ServFail,
    /// Nothing answered (why).
    Silence(String),
}

struct Net<'a> {
    s: &'a State,
    enforce: bool,
    pod: &'a Value,
    log: Vec<String>,
}

/// Answers a pod exec from the model. Called without a scripted responder for the pod.
pub(super) fn exec(s: &mut State, ns: &str, pod: &str, argv: &[String]) -> (String, String, i32) {
    let Some(p) = s.objects.get(&key("v1", "Pod", ns, pod)).cloned() else {
        return (String::new(), format!("pods \"{pod}\" not found\n"), 1);
    };
    let Some(model) = s.model.as_ref() else {
        return (String::new(), "fake cluster model: off\n".into(), 1);
    };
    let mut env: Vec<(String, String)> =
        model.kubelet_env.get(&(ns.to_string(), pod.to_string())).cloned().unwrap_or_default();
    for c in containers(&p).take(1) {
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            env.push((text(e, "/name").to_string(), text(e, "/value").to_string()));
        }
    }
    env.push(("HOSTNAME".into(), pod.to_string()));
    let enforce = model.enforce_network_policy;
    let (run, log) = {
        let mut net = Net { s: &*s, enforce, pod: &p, log: vec![] };
        let run = if running(&p) {
            net.run(argv, &env)
        } else {
            Run::done("", format!("pod {ns}/{pod} is not running\n"), 1)
        };
        (run, net.log)
    };
    if let Some(m) = s.model.as_mut() {
        m.net_log.extend(log);
    }
    match run.secs {
        Some(_) => (run.out, run.err, run.code),
        None => (
            run.out,
            format!(
                "{}fake cluster model: `{}` would never end (nothing answers and no `timeout` limits it)\n",
                run.err,
                argv.join(" ")
            ),
            137,
        ),
    }
}

fn get_env<'e>(env: &'e [(String, String)], k: &str) -> Option<&'e str> {
    env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn ipv4(s: &str) -> Option<u32> {
    let parts: Vec<u8> = s.split('.').map(|p| p.parse().ok()).collect::<Option<Vec<u8>>>()?;
    (parts.len() == 4).then(|| u32::from_be_bytes([parts[0], parts[1], parts[2], parts[3]]))
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else { return false };
    let (Some(ip), Some(net), Ok(bits)) = (ipv4(ip), ipv4(net), bits.parse::<u32>()) else { return false };
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits.min(32)) };
    ip & mask == net & mask
}

/// The port a pod's `httpd` listens on and the page it serves (see the file's top).
fn http_server(pod: &Value) -> Option<(u16, Option<String>)> {
    static HTTPD: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"\bhttpd\b([^;&|]*)").expect("re"));
    static PORT: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"\s-p\s+(\d+)").expect("re"));
    static DIR: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"\s-h\s+(\S+)").expect("re"));
    static ECHO: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r#"echo\s+(?:'([^']*)'|"([^"]*)"|([^\s>'"]+))\s*>\s*(\S+)"#).expect("re"));
    for c in containers(pod) {
        let words: Vec<&str> = ["command", "args"]
            .iter()
            .flat_map(|f| c.get(*f).and_then(Value::as_array).into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        let line = words.join(" ");
        let Some(h) = HTTPD.captures(&line) else { continue };
        let flags = format!(" {}", &h[1]);
        let port = PORT.captures(&flags).and_then(|m| m[1].parse().ok()).unwrap_or(80);
        let dir = DIR.captures(&flags).map(|m| m[1].trim_end_matches('/').to_string()).unwrap_or_else(|| ".".into());
        let page = ECHO.captures_iter(&line).find(|m| m[4] == format!("{dir}/index.html")).map(|m| {
            let t = m.get(1).or(m.get(2)).or(m.get(3)).map(|x| x.as_str()).unwrap_or("");
            format!("{t}\n")
        });
        return Some((port, page));
    }
    None
}

fn dns_server(pod: &Value) -> bool {
    containers(pod).any(|c| text(c, "/image").contains("coredns"))
}

impl<'a> Net<'a> {
    fn who(&self) -> String {
        format!("{}/{}", ns_of(self.pod), name_of(self.pod))
    }

    fn run(&mut self, argv: &[String], env: &[(String, String)]) -> Run {
        match argv.first().map(String::as_str) {
            None => Run::not_modelled("an empty command"),
            Some("env") => {
                let mut env = env.to_vec();
                let mut i = 1;
                while let Some((k, v)) =
                    argv.get(i).and_then(|a| a.split_once('=')).filter(|(k, _)| !k.starts_with('-'))
                {
                    env.push((k.to_string(), v.to_string()));
                    i += 1;
                }
                if i == argv.len() {
                    let out: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
                    return Run::done(out, "", 0);
                }
                self.run(&argv[i..], &env)
            }
            Some("timeout") => {
                let Some(n) = argv.get(1).and_then(|n| n.trim_end_matches('s').parse::<u64>().ok()) else {
                    return Run::not_modelled(&format!("`timeout {}`", argv[1..].join(" ")));
                };
                let r = self.run(&argv[2..], env);
                if r.secs.is_none_or(|t| t >= n) {
                    self.log.push(format!("{}: `{}` killed by timeout after {n}s", self.who(), argv[2..].join(" ")));
                    Run { out: String::new(), err: String::new(), code: 143, secs: Some(n) }
                } else {
                    r
                }
            }
            Some("sh") if argv.get(1).map(String::as_str) == Some("-c") && argv.len() > 2 => self.sh(argv, env),
            Some("wget") => self.wget(&argv[1..]),
            Some("nslookup") => self.nslookup(&argv[1..]),
            Some(other) => Run::not_modelled(&format!("the command `{other}`")),
        }
    }

    fn sh(&mut self, argv: &[String], env: &[(String, String)]) -> Run {
        let arg = |i: usize| argv.get(3 + i).cloned().unwrap_or_default(); // $0, $1, …
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        match SCRIPTS.iter().find(|(_, text)| *text == argv[2]).map(|(id, _)| *id) {
            Some("service-get-exec") => {
                let prefix = arg(1);
                let host = get_env(env, &format!("{prefix}_SERVICE_HOST")).unwrap_or("").to_string();
                let port = get_env(env, &format!("{prefix}_SERVICE_PORT")).unwrap_or("").to_string();
                if host.is_empty() {
                    return Run::done(
                        "",
                        format!("no {prefix}_SERVICE_HOST in the environment: no such Service in the namespace\n"),
                        3,
                    );
                }
                let url = format!("http://{host}:{port}{}", arg(2));
                self.run(&s(&["timeout", "10", "wget", "-q", "-O", "-", &url]), env)
            }
            Some("api-reachable-exec") => {
                let mounted = self.pod.pointer("/spec/automountServiceAccountToken") != Some(&json!(false));
                let token = if mounted { "fake-service-account-token" } else { "" };
                let header = format!("Authorization: Bearer {token}");
                let url = arg(1);
                self.run(
                    &s(&[
                        "timeout",
                        "10",
                        "wget",
                        "-q",
                        "-O",
                        "-",
                        "--no-check-certificate",
                        "--header",
                        &header,
                        &url,
                    ]),
                    env,
                )
            }
            _ => Run::not_modelled(
                "this `sh -c` script (only those of checks/service-get-exec.yaml and checks/api-reachable-exec.yaml are)",
            ),
        }
    }

    fn wget(&mut self, args: &[String]) -> Run {
        let (mut url, mut to_stdout, mut headers) = (None, false, vec![]);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-q" | "--no-check-certificate" => {}
                "-O" => to_stdout = it.next().map(String::as_str) == Some("-"),
                "--header" => headers.extend(it.next().cloned()),
                f if f.starts_with('-') => return Run::not_modelled(&format!("wget's option `{f}`")),
                u => url = Some(u.to_string()),
            }
        }
        let Some(url) = url else { return Run::done("", "BusyBox wget: no URL\n", 1) };
        if !to_stdout {
            return Run::not_modelled("wget writing to a file (only `-O -`)");
        }
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url.as_str()));
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse::<u16>().unwrap_or(0)),
            None => (hostport.to_string(), if scheme == "https" { 443 } else { 80 }),
        };
        let ip = if ipv4(&host).is_some() {
            host.clone()
        } else {
            match self.resolve(&host, CLUSTER_DNS) {
                Dns::Found(_, ips) => ips[0].clone(),
                Dns::NxDomain | Dns::ServFail => return Run::done("", format!("wget: bad address '{host}'\n"), 1),
                Dns::Silence(_) => {
                    return Run {
                        secs: Some(WGET_LOOKUP_GIVES_UP),
                        ..Run::done("", format!("wget: bad address '{host}'\n"), 1)
                    };
                }
            }
        };
        let what = format!("wget {url}");
        match self.connect(&what, &ip, port, "TCP") {
            Err(None) => Run::hangs(),
            Err(Some(_)) => {
                Run::done("", format!("wget: can't connect to remote host ({ip}): Connection refused\n"), 1)
            }
            Ok(Dest::Pod(p)) => match http_server(p) {
                Some(_) if scheme == "https" => {
                    Run::done("", "wget: error getting response: Connection reset by peer\n", 1)
                }
                Some((_, Some(page))) if path == "/" || path == "/index.html" => Run::done(page, "", 0),
                _ => Run::done("", "wget: server returned error: HTTP/1.1 404 Not Found\n", 1),
            },
            Ok(Dest::Apiserver) => {
                if scheme != "https" {
                    return Run::done("", "wget: server returned error: HTTP/1.0 400 Bad Request\n", 1);
                }
                let token = headers
                    .iter()
                    .filter_map(|h| h.strip_prefix("Authorization: Bearer "))
                    .any(|t| !t.trim().is_empty());
                if !token {
                    return Run::done("", "wget: server returned error: HTTP/1.1 403 Forbidden\n", 1);
                }
                match path.as_str() {
                    "/api" | "/api/" => Run::done(
                        json!({"kind": "APIVersions", "versions": ["v1"],
                               "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("{NODE_IP}:{APISERVER_PORT}")}]})
                        .to_string(),
                        "",
                        0,
                    ),
                    "/version" => Run::done(
                        json!({"major": self.s.major, "minor": self.s.minor, "gitVersion": self.s.git_version}).to_string(),
                        "",
                        0,
                    ),
                    "/healthz" | "/livez" | "/readyz" => Run::done("ok", "", 0),
                    _ => Run::done("", "wget: server returned error: HTTP/1.1 404 Not Found\n", 1),
                }
            }
        }
    }

    fn nslookup(&mut self, args: &[String]) -> Run {
        if let Some(f) = args.iter().find(|a| a.starts_with('-')) {
            return Run::not_modelled(&format!("nslookup's option `{f}`"));
        }
        let Some(name) = args.first() else { return Run::done("", "Usage: nslookup HOST [DNS_SERVER]\n", 1) };
        let server = args.get(1).map(String::as_str).unwrap_or(CLUSTER_DNS).to_string();
        let header = format!("Server:\t\t{server}\nAddress:\t{server}:53\n\n");
        match self.resolve(name, &server) {
            Dns::Found(fqdn, ips) => {
                let answers: String = ips.iter().map(|ip| format!("Name:\t{fqdn}\nAddress: {ip}\n")).collect();
                Run::done(format!("{header}{answers}\n"), "", 0)
            }
            Dns::NxDomain => Run::done(format!("{header}** server can't find {name}: NXDOMAIN\n\n"), "", 1),
            Dns::ServFail => Run::done(format!("{header}** server can't find {name}: SERVFAIL\n\n"), "", 1),
            Dns::Silence(_) => Run {
                secs: Some(NSLOOKUP_GIVES_UP),
                ..Run::done(";; connection timed out; no servers could be reached\n\n", "", 1)
            },
        }
    }

    /// A lookup through resolv.conf's search list (ndots 5), asking `server`.
    fn resolve(&mut self, name: &str, server: &str) -> Dns {
        let ns = ns_of(self.pod).to_string();
        let candidates: Vec<String> = if let Some(abs) = name.strip_suffix('.') {
            vec![abs.to_string()]
        } else {
            let searched = [
                format!("{name}.{ns}.svc.cluster.local"),
                format!("{name}.svc.cluster.local"),
                format!("{name}.cluster.local"),
            ];
            if name.matches('.').count() >= 5 {
                std::iter::once(name.to_string()).chain(searched).collect()
            } else {
                searched.into_iter().chain(std::iter::once(name.to_string())).collect()
            }
        };
        let mut last = Dns::NxDomain;
        for c in candidates {
            match self.query(server, &c) {
                found @ Dns::Found(..) => return found,
                silence @ Dns::Silence(_) => return silence,
                other => last = other,
            }
        }
        last
    }

    /// One question to one server over UDP 53: routed and policed like any packet.
    fn query(&mut self, server: &str, fqdn: &str) -> Dns {
        let what = format!("DNS {fqdn}");
        let dest = match self.connect(&what, server, 53, "UDP") {
            Ok(d) => d,
            Err(_) => return Dns::Silence(format!("no answer from {server}")),
        };
        let Dest::Pod(_) = dest else {
            return Dns::Silence(format!("{server} is not a DNS server"));
        };
        let name = fqdn.to_lowercase();
        let answer = match name.strip_suffix(".svc.cluster.local").map(|r| r.split('.').collect::<Vec<_>>()) {
            Some(parts) if parts.len() == 2 => match self.s.objects.get(&key("v1", "Service", parts[1], parts[0])) {
                Some(svc) if text(svc, "/spec/clusterIP") != "None" && !text(svc, "/spec/clusterIP").is_empty() => {
                    Dns::Found(name.clone(), vec![text(svc, "/spec/clusterIP").to_string()])
                }
                Some(_) => {
                    let ips: Vec<String> = self
                        .s
                        .objects
                        .get(&key("v1", "Endpoints", parts[1], parts[0]))
                        .and_then(|ep| ep.get("subsets"))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .flat_map(|sub| sub.get("addresses").and_then(Value::as_array).into_iter().flatten())
                        .map(|a| text(a, "/ip").to_string())
                        .collect();
                    if ips.is_empty() { Dns::NxDomain } else { Dns::Found(name.clone(), ips) }
                }
                None => Dns::NxDomain,
            },
            _ if name == "cluster.local" || name.ends_with(".cluster.local") => Dns::NxDomain,
            _ => Dns::ServFail,
        };
        let said = match &answer {
            Dns::Found(_, ips) => ips.join(","),
            Dns::NxDomain => "NXDOMAIN".into(),
            Dns::ServFail => "SERVFAIL (no upstream is modelled)".into(),
            Dns::Silence(w) => w.clone(),
        };
        self.log.push(format!("{}: {what}: answered {said}", self.who()));
        answer
    }

    /// Routes a connection from this pod and polices it. `Err(None)`: dropped (it hangs),
    /// `Err(Some(why))`: refused.
    fn connect(&mut self, what: &str, ip: &str, port: u16, proto: &str) -> Result<Dest<'a>, Option<String>> {
        let who = self.who();
        let mut route = format!("{ip}:{port}/{proto}");
        let (ip, port) = match self.route_service(ip, port, proto) {
            Ok(Some((svc, ep_ip, ep_port))) => {
                route.push_str(&format!(" → Service {svc} → {ep_ip}:{ep_port}"));
                (ep_ip, ep_port)
            }
            Ok(None) => (ip.to_string(), port),
            Err((why, refused)) => {
                self.log
                    .push(format!("{who}: {what}: {route}: {} ({why})", if refused { "refused" } else { "dropped" }));
                return Err(refused.then_some(why));
            }
        };
        let s = self.s;
        let dest = if let Some(p) =
            s.objects.iter().find(|(k, p)| k.0 == "v1" && k.1 == "Pod" && running(p) && pod_ip(p) == ip).map(|(_, p)| p)
        {
            route.push_str(&format!(" (pod {}/{})", ns_of(p), name_of(p)));
            Dest::Pod(p)
        } else if ip == NODE_IP && port == APISERVER_PORT {
            route.push_str(" (the apiserver)");
            Dest::Apiserver
        } else if ip == NODE_IP {
            self.log.push(format!("{who}: {what}: {route}: refused (nothing listens there on the node)"));
            return Err(Some("nothing listens".into()));
        } else {
            self.log.push(format!("{who}: {what}: {route}: dropped (no such address)"));
            return Err(None);
        };
        if let Err(why) = self.police(&dest, &ip, port, proto) {
            self.log.push(format!("{who}: {what}: {route}: dropped ({why})"));
            return Err(None);
        }
        if let Dest::Pod(p) = &dest {
            let listens = if dns_server(p) {
                port == 53
            } else {
                proto == "TCP" && http_server(p).is_some_and(|(lp, _)| lp == port)
            };
            if !listens {
                self.log.push(format!("{who}: {what}: {route}: nothing listens on that port"));
                return Err(if proto == "TCP" { Some("nothing listens".into()) } else { None });
            }
        }
        let why = if self.enforce { "allowed by NetworkPolicies" } else { "NetworkPolicies not enforced" };
        self.log.push(format!("{who}: {what}: {route}: connected ({why})"));
        Ok(dest)
    }

    /// A Service's ClusterIP and port → one of its endpoints. `Ok(None)`: not a ClusterIP.
    /// `Err((why, refused))`: the Service leads nowhere.
    #[allow(clippy::type_complexity)]
    fn route_service(&self, ip: &str, port: u16, proto: &str) -> Result<Option<(String, String, u16)>, (String, bool)> {
        let Some(svc) = items(self.s, "v1", "Service")
            .into_iter()
            .find(|svc| text(svc, "/spec/clusterIP") == ip && ip != "None" && !ip.is_empty())
        else {
            return Ok(None);
        };
        let id = format!("{}/{}", ns_of(&svc), name_of(&svc));
        let Some(sp) = svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten().find(|p| {
            p.get("port").and_then(Value::as_i64) == Some(i64::from(port))
                && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == proto
        }) else {
            return Err((format!("Service {id} has no port {port}/{proto}"), false));
        };
        let port_name = sp.get("name").and_then(Value::as_str).unwrap_or("");
        let endpoint = self
            .s
            .objects
            .get(&key("v1", "Endpoints", ns_of(&svc), name_of(&svc)))
            .and_then(|ep| ep.get("subsets"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|sub| {
                let p = sub.get("ports").and_then(Value::as_array).into_iter().flatten().find(|p| {
                    p.get("name").and_then(Value::as_str).unwrap_or("") == port_name
                        && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == proto
                })?;
                let addr = sub.get("addresses").and_then(Value::as_array)?.first()?;
                Some((text(addr, "/ip").to_string(), p.get("port").and_then(Value::as_u64)? as u16))
            });
        match endpoint {
            Some((eip, eport)) => Ok(Some((id, eip, eport))),
            None => Err((format!("Service {id} has no endpoints"), proto == "TCP")),
        }
    }

    /// NetworkPolicy verdict for this pod → `dest` (`ip`:`port`/`proto`, after DNAT).
    fn police(&self, dest: &Dest, ip: &str, port: u16, proto: &str) -> Result<(), String> {
        if !self.enforce {
            return Ok(());
        }
        let dst_pod = match dest {
            Dest::Pod(p) => Some(*p),
            Dest::Apiserver => None,
        };
        // Egress of the source pod.
        let src = self.pod;
        let egress = self.isolating(src, "Egress");
        if !egress.is_empty()
            && !egress.iter().any(|np| self.rules_allow(np, "egress", "to", dst_pod, ip, port, proto, dst_pod))
        {
            return Err(format!(
                "egress from {}/{} is isolated by NetworkPolicy {} and no egress rule allows {ip}:{port}/{proto}",
                ns_of(src),
                name_of(src),
                names(&egress)
            ));
        }
        // Ingress of the destination pod.
        if let Some(dst) = dst_pod {
            let ingress = self.isolating(dst, "Ingress");
            if !ingress.is_empty()
                && !ingress
                    .iter()
                    .any(|np| self.rules_allow(np, "ingress", "from", Some(src), pod_ip(src), port, proto, Some(dst)))
            {
                return Err(format!(
                    "ingress to {}/{} is isolated by NetworkPolicy {} and no ingress rule allows {}/{} on {port}/{proto}",
                    ns_of(dst),
                    name_of(dst),
                    names(&ingress),
                    ns_of(src),
                    name_of(src)
                ));
            }
        }
        Ok(())
    }

    /// The policies of `pod`'s namespace that select it for `direction`.
    fn isolating(&self, pod: &Value, direction: &str) -> Vec<Value> {
        items_in(self.s, "networking.k8s.io/v1", "NetworkPolicy", ns_of(pod))
            .into_iter()
            .filter(|np| {
                let sel = np.pointer("/spec/podSelector").cloned().unwrap_or_else(|| json!({}));
                selector_matches(&sel, labels_of(pod)) && policy_types(np).iter().any(|t| t == direction)
            })
            .collect()
    }

    /// Whether some rule of `np`'s `field` (egress/ingress) allows the peer on that port.
    #[allow(clippy::too_many_arguments)]
    fn rules_allow(
        &self,
        np: &Value,
        field: &str,
        peers_field: &str,
        peer_pod: Option<&Value>,
        peer_ip: &str,
        port: u16,
        proto: &str,
        port_owner: Option<&Value>,
    ) -> bool {
        let np_ns = ns_of(np);
        np.pointer(&format!("/spec/{field}")).and_then(Value::as_array).into_iter().flatten().any(|rule| {
            let ports_ok = match rule.get("ports").and_then(Value::as_array).filter(|p| !p.is_empty()) {
                None => true,
                Some(ports) => ports.iter().any(|p| {
                    p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == proto
                        && match p.get("port") {
                            None | Some(Value::Null) => true,
                            Some(Value::Number(n)) => {
                                let lo = n.as_u64().unwrap_or(0);
                                let hi = p.get("endPort").and_then(Value::as_u64).unwrap_or(lo);
                                (lo..=hi).contains(&u64::from(port))
                            }
                            Some(Value::String(name)) => port_owner.is_some_and(|o| {
                                containers(o)
                                    .flat_map(|c| c.get("ports").and_then(Value::as_array).into_iter().flatten())
                                    .any(|cp| {
                                        text(cp, "/name") == name
                                            && cp.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == proto
                                            && cp.get("containerPort").and_then(Value::as_u64) == Some(u64::from(port))
                                    })
                            }),
                            Some(_) => false,
                        }
                }),
            };
            let peers_ok = match rule.get(peers_field).and_then(Value::as_array).filter(|p| !p.is_empty()) {
                None => true,
                Some(peers) => peers.iter().any(|peer| {
                    if let Some(block) = peer.get("ipBlock") {
                        return in_cidr(peer_ip, text(block, "/cidr"))
                            && !block
                                .get("except")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .any(|e| e.as_str().is_some_and(|c| in_cidr(peer_ip, c)));
                    }
                    let Some(pp) = peer_pod else { return false };
                    let ns_ok = match peer.get("namespaceSelector") {
                        Some(sel) => self
                            .s
                            .objects
                            .get(&key("v1", "Namespace", "", ns_of(pp)))
                            .is_some_and(|n| selector_matches(sel, labels_of(n))),
                        None => ns_of(pp) == np_ns,
                    };
                    let pod_ok = peer.get("podSelector").is_none_or(|sel| selector_matches(sel, labels_of(pp)));
                    ns_ok && pod_ok
                }),
            };
            ports_ok && peers_ok
        })
    }
}

/// `policyTypes`, defaulted as the apiserver does when absent.
fn policy_types(np: &Value) -> Vec<String> {
    match np.pointer("/spec/policyTypes").and_then(Value::as_array).filter(|t| !t.is_empty()) {
        Some(t) => t.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        None => {
            let mut t = vec!["Ingress".to_string()];
            if np.pointer("/spec/egress").and_then(Value::as_array).is_some_and(|e| !e.is_empty()) {
                t.push("Egress".into());
            }
            t
        }
    }
}

fn names(policies: &[Value]) -> String {
    policies.iter().map(|p| format!("{}/{}", ns_of(p), name_of(p))).collect::<Vec<_>>().join(", ")
}
