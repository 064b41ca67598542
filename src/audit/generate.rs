//! A generator of realistic audit logs: kubelets, kube-proxy, controllers, the scheduler,
//! CoreDNS, monitoring and ingress service accounts, and a few humans with kubectl; reads and
//! writes in the proportions a small cluster shows; 401s from nodes with expired certificates,
//! 403s from an ingress controller listing Secrets, 422s from the garbage collector; mostly
//! `ResponseComplete`, some `RequestReceived`; request bodies from a few hundred bytes to a
//! hundred kilobytes. Deterministic for a seed.
//!
//! It exists for benchmarks, tests and practice material. It writes to the writer it is given
//! and nowhere else, and never emits real credentials.

use std::fmt::Write as _;
use std::io::{self, Write};

#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Stop after about this many bytes.
    pub bytes: u64,
    pub seed: u64,
    /// Microseconds since the epoch of the first event.
    pub start_micros: i64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions { bytes: 10 << 20, seed: 1, start_micros: 1_714_521_600_000_000 }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenStats {
    pub events: u64,
    pub bytes: u64,
}

struct Actor {
    user: &'static str,
    groups: &'static [&'static str],
    agent: &'static str,
    ips: &'static [&'static str],
    weight: u32,
    /// (verb, api group, resource, subresource, namespaced, weight)
    calls: &'static [(&'static str, &'static str, &'static str, &'static str, bool, u32)],
}

const NODES: &[&str] = &[
    "system:node:kind-control-plane",
    "system:node:kind-worker",
    "system:node:kind-worker2",
    "system:node:kind-worker3",
];
const NODE_IPS: &[&str] = &["172.18.0.2", "172.18.0.3", "172.18.0.4", "172.18.0.5"];
const NAMESPACES: &[&str] = &["default", "kube-system", "monitoring", "ingress", "shop", "payments", "dev"];
const APPS: &[&str] = &["web", "api", "cart", "checkout", "worker", "redis", "postgres", "grafana"];

const ACTORS: &[Actor] = &[
    Actor {
        user: "",
        groups: &["system:nodes", "system:authenticated"],
        agent: "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350",
        ips: NODE_IPS,
        weight: 300,
        calls: &[
            ("get", "", "nodes", "", false, 20),
            ("patch", "", "nodes", "status", false, 10),
            ("watch", "", "pods", "", false, 4),
            ("get", "", "pods", "", true, 15),
            ("patch", "", "pods", "status", true, 10),
            ("get", "", "configmaps", "", true, 8),
            ("get", "", "secrets", "", true, 6),
            ("update", "coordination.k8s.io", "leases", "", true, 25),
            ("create", "", "events", "", true, 8),
            ("list", "", "services", "", false, 2),
        ],
    },
    Actor {
        user: "system:serviceaccount:kube-system:kube-proxy",
        groups: &["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        agent: "kube-proxy/v1.30.2 (linux/amd64) kubernetes/3968350",
        ips: NODE_IPS,
        weight: 60,
        calls: &[
            ("watch", "discovery.k8s.io", "endpointslices", "", false, 5),
            ("watch", "", "services", "", false, 3),
            ("list", "", "nodes", "", false, 1),
            ("get", "", "nodes", "", false, 1),
        ],
    },
    Actor {
        user: "system:kube-controller-manager",
        groups: &["system:authenticated"],
        agent: "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/leader-election",
        ips: &["172.18.0.2"],
        weight: 80,
        calls: &[
            ("update", "coordination.k8s.io", "leases", "", true, 10),
            ("get", "coordination.k8s.io", "leases", "", true, 10),
            ("list", "", "pods", "", false, 1),
        ],
    },
    Actor {
        user: "system:serviceaccount:kube-system:replicaset-controller",
        groups: &["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        agent: "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:replicaset-controller",
        ips: &["172.18.0.2"],
        weight: 40,
        calls: &[
            ("create", "", "pods", "", true, 3),
            ("delete", "", "pods", "", true, 2),
            ("update", "apps", "replicasets", "status", true, 4),
            ("create", "", "events", "", true, 3),
        ],
    },
    Actor {
        user: "system:serviceaccount:kube-system:deployment-controller",
        groups: &["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        agent: "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:deployment-controller",
        ips: &["172.18.0.2"],
        weight: 25,
        calls: &[
            ("create", "apps", "replicasets", "", true, 2),
            ("update", "apps", "deployments", "status", true, 5),
            ("patch", "apps", "replicasets", "", true, 2),
        ],
    },
    Actor {
        user: "system:serviceaccount:kube-system:generic-garbage-collector",
        groups: &["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        agent: "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:generic-garbage-collector",
        ips: &["172.18.0.2"],
        weight: 20,
        calls: &[
            ("patch", "", "pods", "", true, 6),
            ("get", "apps", "replicasets", "", true, 3),
            ("delete", "apps", "replicasets", "", true, 1),
        ],
    },
    Actor {
        user: "system:kube-scheduler",
        groups: &["system:authenticated"],
        agent: "kube-scheduler/v1.30.2 (linux/amd64) kubernetes/3968350/scheduler",
        ips: &["172.18.0.2"],
        weight: 50,
        calls: &[
            ("create", "", "pods", "binding", true, 4),
            ("update", "coordination.k8s.io", "leases", "", true, 10),
            ("watch", "", "pods", "", false, 1),
            ("patch", "", "pods", "status", true, 2),
        ],
    },
    Actor {
        user: "system:serviceaccount:kube-system:coredns",
        groups: &["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        agent: "coredns/v1.11.1 (linux/amd64) kubernetes/$Format",
        ips: &["10.244.0.3", "10.244.0.4"],
        weight: 20,
        calls: &[
            ("watch", "discovery.k8s.io", "endpointslices", "", false, 3),
            ("watch", "", "services", "", false, 2),
            ("list", "", "namespaces", "", false, 1),
        ],
    },
    Actor {
        user: "system:serviceaccount:monitoring:prometheus",
        groups: &["system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"],
        agent: "prometheus/2.52.0",
        ips: &["10.244.1.17"],
        weight: 40,
        calls: &[
            ("list", "", "pods", "", true, 4),
            ("watch", "", "pods", "", true, 2),
            ("list", "", "endpoints", "", true, 3),
            ("get", "", "nodes", "", false, 1),
        ],
    },
    Actor {
        user: "system:serviceaccount:ingress:traefik",
        groups: &["system:serviceaccounts", "system:serviceaccounts:ingress", "system:authenticated"],
        agent: "traefik/v2.11.2 (linux/amd64)",
        ips: &["10.244.2.9"],
        weight: 15,
        calls: &[
            ("list", "", "secrets", "", false, 3),
            ("watch", "networking.k8s.io", "ingresses", "", false, 2),
            ("list", "", "services", "", false, 2),
        ],
    },
    Actor {
        user: "system:apiserver",
        groups: &["system:authenticated", "system:masters"],
        agent: "kube-apiserver/v1.30.2 (linux/amd64) kubernetes/3968350",
        ips: &["::1"],
        weight: 20,
        calls: &[
            ("get", "", "namespaces", "", false, 3),
            ("list", "", "resourcequotas", "", false, 1),
            ("get", "", "services", "", true, 1),
        ],
    },
    Actor {
        user: "alice@example.com",
        groups: &["dev", "system:authenticated"],
        agent: "kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b",
        ips: &["192.168.10.21"],
        weight: 6,
        calls: &[
            ("get", "apps", "deployments", "", true, 5),
            ("list", "", "pods", "", true, 5),
            ("patch", "apps", "deployments", "", true, 2),
            ("create", "", "pods", "exec", true, 1),
            ("get", "", "pods", "log", true, 2),
            ("list", "", "secrets", "", true, 1),
        ],
    },
    Actor {
        user: "bob@example.com",
        groups: &["ops", "system:authenticated"],
        agent: "kubectl/v1.29.4 (darwin/arm64) kubernetes/55fb7fb",
        ips: &["192.168.10.35"],
        weight: 4,
        calls: &[
            ("create", "apps", "deployments", "", true, 1),
            ("delete", "", "pods", "", true, 1),
            ("update", "", "configmaps", "", true, 1),
            ("create", "", "secrets", "", true, 1),
            ("get", "", "nodes", "", false, 2),
        ],
    },
    Actor {
        user: "kubernetes-admin",
        groups: &["kubeadm:cluster-admins", "system:authenticated"],
        agent: "kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b",
        ips: &["172.18.0.1"],
        weight: 3,
        calls: &[
            ("get", "", "namespaces", "", false, 1),
            ("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", false, 1),
            ("delete", "apps", "deployments", "", true, 1),
            ("list", "", "nodes", "", false, 2),
        ],
    },
];

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn weighted<T>(rng: &mut fastrand::Rng, items: &[T], w: impl Fn(&T) -> u32) -> usize {
    let total: u32 = items.iter().map(&w).sum();
    let mut x = rng.u32(..total.max(1));
    for (i, it) in items.iter().enumerate() {
        let wi = w(it);
        if x < wi {
            return i;
        }
        x -= wi;
    }
    items.len() - 1
}

fn fmt_time(us: i64) -> String {
    match jiff::Timestamp::from_microsecond(us) {
        Ok(t) => {
            let s = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
            format!("{s}.{:06}Z", us.rem_euclid(1_000_000))
        }
        Err(_) => "1970-01-01T00:00:00.000000Z".into(),
    }
}

/// A body of roughly `size` bytes shaped like a Kubernetes object.
fn body(rng: &mut fastrand::Rng, out: &mut String, kind: &str, ns: &str, name: &str, size: usize) {
    let _ = write!(
        out,
        r#"{{"kind":"{kind}","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"{ns}","uid":"{:08x}-1f2e-4c3d-9a8b-{:012x}","resourceVersion":"{}","labels":{{"app":"{name}","tier":"backend"}},"annotations":{{"deployment.kubernetes.io/revision":"{}"}},"managedFields":[{{"manager":"kubectl-client-side-apply","operation":"Update","apiVersion":"apps/v1","time":"2024-05-01T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{"f:labels":{{".":{{}},"f:app":{{}}}}}}}}}}]}},"spec":{{"replicas":{},"template":{{"spec":{{"containers":["#,
        rng.u32(..),
        rng.u64(..1 << 48),
        rng.u32(100_000..9_999_999),
        rng.u8(1..20),
        rng.u8(1..6)
    );
    let mut i = 0;
    while out.len() < size || i == 0 {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"name":"c{i}","image":"registry.example.com/{name}:1.{}.{}","args":["--port=8080","--log-level=info"],"env":[{{"name":"MODE","value":"production"}},{{"name":"REPLICA","value":"{i}"}},{{"name":"DESCRIPTION","value":"lorem ipsum dolor sit amet, consectetur adipiscing elit \"quoted\" text"}}],"resources":{{"limits":{{"cpu":"500m","memory":"256Mi"}}}},"ports":[{{"containerPort":{},"protocol":"TCP"}}]}}"#,
            rng.u8(..30),
            rng.u8(..10),
            8000 + i
        );
        i += 1;
    }
    out.push_str("]}}}}");
}

/// Writes events to `w` until about `opts.bytes` have been written.
pub fn generate(w: &mut impl Write, opts: &GenOptions) -> io::Result<GenStats> {
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let mut stats = GenStats::default();
    let mut now = opts.start_micros;
    let mut line = String::with_capacity(64 * 1024);
    while stats.bytes < opts.bytes {
        line.clear();
        now += i64::from(rng.u32(..1500));
        let actor = &ACTORS[weighted(&mut rng, ACTORS, |a| a.weight)];
        let call = actor.calls[weighted(&mut rng, actor.calls, |c| c.5)];
        let (verb, group, resource, sub, namespaced, _) = call;
        let node_idx = rng.usize(..NODES.len());
        let user = if actor.user.is_empty() { NODES[node_idx] } else { actor.user };
        let ip = if actor.ips == NODE_IPS { NODE_IPS[node_idx] } else { *pick(&mut rng, actor.ips) };
        let ns = if namespaced { *pick(&mut rng, NAMESPACES) } else { "" };
        let name = match resource {
            "nodes" => NODES[node_idx].trim_start_matches("system:node:").to_string(),
            "leases" => pick(&mut rng, &["kube-controller-manager", "kube-scheduler", "kind-worker", "kind-worker2"])
                .to_string(),
            _ => format!("{}-{:x}", pick(&mut rng, APPS), rng.u32(..0xfffff)),
        };
        let has_name = !matches!(verb, "list" | "watch") && (verb != "create" || !sub.is_empty());
        let expired_cert = actor.user.is_empty() && node_idx == 3 && rng.u8(..4) == 0;
        let mut code: u16 = match verb {
            "create" => 201,
            _ => 200,
        };
        let roll = rng.u16(..1000);
        if expired_cert {
            code = 401;
        } else if actor.user.ends_with(":traefik") && resource == "secrets" {
            code = 403;
        } else if actor.user.ends_with("generic-garbage-collector") && verb == "patch" && roll < 600 {
            code = 422;
        } else if verb == "get" && roll < 40 {
            code = 404;
        } else if verb == "update" && roll < 30 {
            code = 409;
        } else if roll < 3 {
            code = 500;
        } else if actor.user.starts_with("alice") && roll < 120 {
            code = 403;
        }
        let latency: i64 = match verb {
            "watch" => i64::from(rng.u32(1_000_000..600_000_000)),
            "list" => i64::from(rng.u32(2_000..80_000)) * i64::from(rng.u32(1..4)),
            "get" => i64::from(rng.u32(300..6_000)),
            _ => i64::from(rng.u32(2_000..40_000)),
        };
        let stage_roll = rng.u8(..100);
        let stage = if stage_roll < 7 {
            "RequestReceived"
        } else if verb == "watch" && stage_roll < 55 {
            "ResponseStarted"
        } else {
            "ResponseComplete"
        };
        let level = if matches!(verb, "create" | "update" | "patch") && resource != "secrets" && resource != "events" {
            "RequestResponse"
        } else {
            "Metadata"
        };
        let api_version = "v1";
        let prefix = if group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{group}/v1") };
        let mut uri = prefix;
        if !ns.is_empty() {
            let _ = write!(uri, "/namespaces/{ns}");
        }
        let _ = write!(uri, "/{resource}");
        if has_name {
            let _ = write!(uri, "/{name}");
        }
        if !sub.is_empty() {
            let _ = write!(uri, "/{sub}");
        }
        match verb {
            "list" => uri.push_str("?limit=500\\u0026resourceVersion=0"),
            "watch" => {
                let _ = write!(
                    uri,
                    "?allowWatchBookmarks=true\\u0026resourceVersion={}\\u0026timeout=7m26s\\u0026timeoutSeconds=446\\u0026watch=true",
                    rng.u32(..9_999_999)
                );
            }
            "patch" if sub == "status" => uri.push_str("?timeout=10s"),
            _ => {}
        }
        let received = now;
        let _ = write!(
            line,
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"{level}","auditID":"{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}","stage":"{stage}","requestURI":"{uri}","verb":"{verb}","user":"#,
            rng.u32(..),
            rng.u16(..),
            rng.u16(..0xfff),
            rng.u16(..0xfff),
            rng.u64(..1 << 48)
        );
        if code == 401 {
            line.push_str("{}");
        } else {
            let _ = write!(line, r#"{{"username":"{user}","groups":["#);
            for (i, g) in actor.groups.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "\"{g}\"");
            }
            line.push_str("]}");
        }
        let _ = write!(
            line,
            r#","sourceIPs":["{ip}"],"userAgent":"{}","objectRef":{{"resource":"{resource}""#,
            actor.agent
        );
        if !ns.is_empty() {
            let _ = write!(line, r#","namespace":"{ns}""#);
        }
        if has_name {
            let _ = write!(line, r#","name":"{name}""#);
        }
        if !group.is_empty() {
            let _ = write!(line, r#","apiGroup":"{group}""#);
        }
        let _ = write!(line, r#","apiVersion":"{api_version}""#);
        if !sub.is_empty() {
            let _ = write!(line, r#","subresource":"{sub}""#);
        }
        line.push('}');
        if stage != "RequestReceived" {
            let _ = write!(line, r#","responseStatus":{{"metadata":{{}},"code":{code}"#);
            if code >= 400 {
                let (status_reason, msg) = match code {
                    401 => ("Unauthorized", "Unauthorized".to_string()),
                    403 => (
                        "Forbidden",
                        format!(
                            "{resource} is forbidden: User \\\"{user}\\\" cannot {verb} resource \\\"{resource}\\\" in API group \\\"{group}\\\""
                        ),
                    ),
                    404 => ("NotFound", format!("{resource} \\\"{name}\\\" not found")),
                    409 => (
                        "Conflict",
                        format!(
                            "Operation cannot be fulfilled on {resource} \\\"{name}\\\": the object has been modified; please apply your changes to the latest version and try again"
                        ),
                    ),
                    422 => (
                        "Invalid",
                        format!(
                            "Pod \\\"{name}\\\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
                        ),
                    ),
                    _ => ("InternalError", "Internal error occurred: etcdserver: request timed out".to_string()),
                };
                let _ = write!(line, r#","status":"Failure","message":"{msg}","reason":"{status_reason}""#);
            }
            line.push('}');
        }
        if level == "RequestResponse" && stage != "RequestReceived" {
            let size = match rng.u16(..1000) {
                0..=9 => 100_000,
                10..=99 => 12_000,
                _ => 1_200,
            };
            let kind = match resource {
                "deployments" => "Deployment",
                "replicasets" => "ReplicaSet",
                "pods" => "Pod",
                "configmaps" => "ConfigMap",
                "nodes" => "Node",
                _ => "Object",
            };
            line.push_str(r#","requestObject":"#);
            body(&mut rng, &mut line, kind, ns, &name, size);
            if code < 400 && rng.bool() {
                line.push_str(r#","responseObject":"#);
                body(&mut rng, &mut line, kind, ns, &name, size / 2);
            }
        }
        let stage_time = if stage == "RequestReceived" { received } else { received + latency };
        let _ = write!(
            line,
            r#","requestReceivedTimestamp":"{}","stageTimestamp":"{}""#,
            fmt_time(received),
            fmt_time(stage_time)
        );
        if code == 401 {
            line.push_str("}\n");
        } else {
            let decision = if code == 403 { "forbid" } else { "allow" };
            let reason = if code == 403 || actor.user.is_empty() {
                String::new()
            } else {
                format!(
                    r#"RBAC: allowed by ClusterRoleBinding \"system:{0}\" of ClusterRole \"system:{0}\" to User \"{user}\""#,
                    resource
                )
            };
            let _ = write!(
                line,
                r#","annotations":{{"authorization.k8s.io/decision":"{decision}","authorization.k8s.io/reason":"{reason}"}}}}"#
            );
            line.push('\n');
        }
        w.write_all(line.as_bytes())?;
        stats.events += 1;
        stats.bytes += line.len() as u64;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_line_is_a_valid_event_and_scans_alike() {
        let mut buf = Vec::new();
        let stats =
            generate(&mut buf, &GenOptions { bytes: 2 << 20, ..GenOptions::default() }).expect("writes to memory");
        assert!(stats.events > 100);
        for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let e = crate::audit::Event::from_json(line).expect("valid JSON event");
            let f = crate::audit::scan::scan(line).expect("scans");
            assert_eq!(f.username.get(), e.user.username);
            assert_eq!(f.resource.get(), e.resource());
            assert_eq!(f.code, e.code());
            assert_eq!(f.request_uri.get(), e.request_uri);
            assert_eq!(f.latency_micros(), e.latency().map(|d| d.as_micros() as i64));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_log() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let o = GenOptions { bytes: 100_000, ..GenOptions::default() };
        generate(&mut a, &o).expect("writes");
        generate(&mut b, &o).expect("writes");
        assert_eq!(a, b);
    }
}
