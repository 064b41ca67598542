//! The check engine: evaluates check specs against a lab and returns verdicts with evidence.
//!
//! Every check runs under its own timeout, all checks of a scenario run concurrently, and a
//! failing or unreachable apiserver gives a failed verdict that says so — never a hang or a
//! panic. Evidence is what was seen, so a trainee learns from a failure.

use super::matcher;
use crate::cluster::kube::{Kube, KubeError, ObjKey};
use crate::cluster::node::{self, Node, NodeAccess};
use crate::cluster::nodeops::NodeOps;
use crate::scenario::kinds::*;
use crate::scenario::plan::PlannedCheck;
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    /// One line: why it passed or failed.
    pub reason: String,
    /// What was seen (object fields, command output, the apiserver's error).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// The check could not look (apiserver or node unreachable): failed, and `not` must not
    /// turn that into a pass.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
}

impl Verdict {
    pub fn pass(reason: impl Into<String>) -> Self {
        Verdict { passed: true, reason: reason.into(), evidence: vec![], unknown: false }
    }
    pub fn fail(reason: impl Into<String>) -> Self {
        Verdict { passed: false, reason: reason.into(), evidence: vec![], unknown: false }
    }
    pub fn with(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }
    fn of(ok: bool, reason: String) -> Self {
        Verdict { passed: ok, reason, evidence: vec![], unknown: false }
    }
}

/// What checks may look at.
pub struct CheckContext<'a> {
    pub kube: Result<&'a Kube, KubeError>,
    pub nodes: &'a dyn NodeAccess,
    pub node_list: NodeList,
    /// When the faults were injected (events and audit checks look only after it).
    pub since: Option<jiff::Timestamp>,
    /// Path of the apiserver audit log on the control-plane node.
    pub audit_log_path: String,
}

/// The lab's nodes: known up front, or listed through node access when a check first needs
/// them (a `klab check` of API-level checks never lists them). Empty when listing failed.
#[derive(Debug, Default)]
pub struct NodeList(tokio::sync::OnceCell<Vec<Node>>);

impl NodeList {
    /// Listed on first use.
    pub fn lazy() -> Self {
        NodeList(tokio::sync::OnceCell::new())
    }
}

impl From<Vec<Node>> for NodeList {
    fn from(nodes: Vec<Node>) -> Self {
        NodeList(tokio::sync::OnceCell::new_with(Some(nodes)))
    }
}

impl CheckContext<'_> {
    /// The lab's nodes, control plane first; listed once, when first asked.
    pub async fn node_list(&self) -> &[Node] {
        self.node_list.0.get_or_init(|| async { self.nodes.nodes().await.unwrap_or_default() }).await
    }
}

pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub role: Role,
    pub description: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub millis: u128,
}

/// Runs every check concurrently; each polls until `within` when asked.
pub async fn run_all(ctx: &CheckContext<'_>, checks: &[PlannedCheck]) -> Vec<CheckResult> {
    let futs = checks.iter().map(|c| async move {
        let start = Instant::now();
        let verdict = run_one(ctx, c).await;
        CheckResult {
            id: c.id.clone(),
            role: c.role,
            description: c.description.clone(),
            verdict,
            millis: start.elapsed().as_millis(),
        }
    });
    futures::future::join_all(futs).await
}

pub async fn run_one(ctx: &CheckContext<'_>, c: &PlannedCheck) -> Verdict {
    let timeout = c.timeout.map(|d| d.as_std()).unwrap_or(DEFAULT_CHECK_TIMEOUT);
    let deadline = c.within.map(|w| Instant::now() + w.as_std());
    loop {
        let v = match tokio::time::timeout(timeout, evaluate(ctx, &c.spec)).await {
            Ok(v) => v,
            Err(_) => Verdict::fail(format!("no answer within {}s", timeout.as_secs())),
        };
        match deadline {
            Some(d) if !v.passed && Instant::now() + Duration::from_secs(2) < d => {
                tokio::time::sleep(Duration::from_secs(2)).await
            }
            _ => return v,
        }
    }
}

/// Polls `spec` until it passes or `timeout` ends (setup `wait` steps).
pub async fn wait_until(
    ctx: &CheckContext<'_>,
    spec: &CheckSpec,
    timeout: Duration,
    mut progress: impl FnMut(&Verdict),
) -> Verdict {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = match tokio::time::timeout(left.max(Duration::from_secs(1)), evaluate(ctx, spec)).await {
            Ok(v) => v,
            Err(_) => Verdict::fail(format!("no answer within {}s", timeout.as_secs())),
        };
        if v.passed || Instant::now() >= deadline {
            return v;
        }
        progress(&v);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn api_down(e: &KubeError) -> Verdict {
    let mut v = Verdict::fail(format!("the apiserver did not help: {e}")).with(e.to_string());
    v.unknown = true;
    v
}

/// The apiserver could not be asked (as opposed to answering no).
fn api_unreachable(e: &KubeError) -> bool {
    matches!(e, KubeError::Unreachable(_) | KubeError::Timeout(_))
}

/// A failed verdict that says klab could not look.
fn unknown(mut v: Verdict) -> Verdict {
    v.unknown = true;
    v
}

/// The nodes a selector names. When the lab's nodes could not be listed at all, klab cannot
/// look; a selector that matches none of the listed nodes is a plain failure.
async fn select(ctx: &CheckContext<'_>, sel: &str) -> Result<Vec<Node>, Verdict> {
    let list = ctx.node_list().await;
    if list.is_empty() {
        return Err(unknown(Verdict::fail("the lab's nodes could not be listed: node access failed")));
    }
    node::select(list, sel).map_err(|e| Verdict::fail(e.to_string()))
}

/// The verdict of a per-node check: the nodes' own answers decide; when every node that answered
/// was fine but some could not be reached, the check failed without looking.
fn node_verdict(pass: String, answers: Vec<String>, unreachable: Vec<String>, evidence: Vec<String>) -> Verdict {
    let could_not_look = answers.is_empty() && !unreachable.is_empty();
    let mut v = if answers.is_empty() && unreachable.is_empty() {
        Verdict::pass(pass)
    } else {
        Verdict::fail(answers.into_iter().chain(unreachable.iter().cloned()).collect::<Vec<_>>().join("; "))
    };
    v.evidence = evidence;
    v.evidence.extend(unreachable);
    v.unknown = could_not_look;
    v
}

pub fn evaluate<'a>(ctx: &'a CheckContext<'a>, spec: &'a CheckSpec) -> futures::future::BoxFuture<'a, Verdict> {
    Box::pin(async move {
        match spec {
            CheckSpec::Resource(c) => resource(ctx, c).await,
            CheckSpec::ProbePod(c) => probe_pod(ctx, c).await,
            CheckSpec::PodExec(c) => pod_exec(ctx, c).await,
            CheckSpec::NodeExec(c) => node_exec(ctx, c).await,
            CheckSpec::Sysctl(c) => sysctl(ctx, c).await,
            CheckSpec::Etcd(c) => etcd(ctx, c).await,
            CheckSpec::Rollout(c) => rollout(ctx, c).await,
            CheckSpec::Events(c) => events(ctx, c).await,
            CheckSpec::Audit(c) => audit(ctx, c).await,
            CheckSpec::ApiWrite(c) => api_write(ctx, c).await,
            CheckSpec::MirrorPods(c) => mirror_pods(ctx, c).await,
            CheckSpec::All(list) => {
                let vs = futures::future::join_all(list.iter().map(|s| evaluate(ctx, s))).await;
                let failed: Vec<&Verdict> = vs.iter().filter(|v| !v.passed).collect();
                let mut v = if failed.is_empty() {
                    Verdict::pass(format!("all {} hold", vs.len()))
                } else {
                    Verdict::fail(failed.iter().map(|v| v.reason.clone()).collect::<Vec<_>>().join("; "))
                };
                v.evidence = vs.into_iter().flat_map(|v| v.evidence).collect();
                v
            }
            CheckSpec::Any(list) => {
                let vs = futures::future::join_all(list.iter().map(|s| evaluate(ctx, s))).await;
                let mut v = match vs.iter().find(|v| v.passed) {
                    Some(p) => Verdict::pass(p.reason.clone()),
                    None => Verdict::fail(format!(
                        "none holds: {}",
                        vs.iter().map(|v| v.reason.clone()).collect::<Vec<_>>().join("; ")
                    )),
                };
                v.evidence = vs.into_iter().flat_map(|v| v.evidence).collect();
                v
            }
            CheckSpec::Not(inner) => {
                let v = evaluate(ctx, inner).await;
                if v.unknown {
                    return Verdict {
                        passed: false,
                        reason: format!("cannot tell: {}", v.reason),
                        evidence: v.evidence,
                        unknown: true,
                    };
                }
                Verdict {
                    passed: !v.passed,
                    reason: format!("not: {}", v.reason),
                    evidence: v.evidence,
                    unknown: false,
                }
            }
        }
    })
}

async fn resource(ctx: &CheckContext<'_>, c: &ResourceCheck) -> Verdict {
    let kube = match &ctx.kube {
        Ok(k) => *k,
        Err(e) => return api_down(e),
    };
    let what = format!(
        "{} {}{}",
        c.kind,
        c.namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default(),
        c.name.as_deref().unwrap_or("*")
    );
    let objects = match &c.name {
        Some(name) => {
            let key = ObjKey {
                api_version: c.api_version.clone(),
                kind: c.kind.clone(),
                namespace: c.namespace.clone(),
                name: name.clone(),
            };
            kube.get(&key).await.map(|o| o.into_iter().collect::<Vec<_>>())
        }
        None => kube.list(&c.api_version, &c.kind, c.namespace.as_deref(), c.label_selector.as_deref(), None).await,
    };
    let objects = match objects {
        Ok(o) => o,
        Err(e) => return api_down(&e).with(format!("while reading {what}")),
    };
    let mut mismatches = Vec::new();
    let matching: Vec<&Value> = objects
        .iter()
        .filter(|o| match &c.match_tree {
            None => true,
            Some(t) => match matcher::matches(t, Some(o), "") {
                Ok(()) => true,
                Err(m) => {
                    mismatches
                        .push(format!("{}: {m}", o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?")));
                    false
                }
            },
        })
        .collect();
    let names: Vec<&str> =
        matching.iter().filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str)).collect();
    let n = matching.len() as u32;
    let mut v = if let Some(range) = &c.count {
        let ok = range.min.is_none_or(|m| n >= m) && range.max.is_none_or(|m| n <= m);
        Verdict::of(
            ok,
            format!(
                "{n} {what} match (expected {}–{})",
                range.min.map(|m| m.to_string()).unwrap_or_default(),
                range.max.map(|m| m.to_string()).unwrap_or_default()
            ),
        )
    } else if c.present {
        Verdict::of(
            n > 0,
            if n > 0 {
                format!("{what} found: {}", names.join(", "))
            } else if objects.is_empty() {
                format!("{what} does not exist")
            } else {
                format!("{what} exists but does not match")
            },
        )
    } else {
        Verdict::of(
            n == 0,
            if n == 0 { format!("no {what} matches") } else { format!("{what} still there: {}", names.join(", ")) },
        )
    };
    v.evidence.extend(mismatches.into_iter().take(5));
    v
}

fn check_expect(e: &Expect, code: i32, stdout: &str) -> Result<(), String> {
    let want_code = e.exit_code.unwrap_or(0);
    if code != want_code {
        return Err(format!("exit code {code}, expected {want_code}"));
    }
    if let Some(s) = &e.stdout_contains
        && !stdout.contains(s.as_str())
    {
        return Err(format!("output does not contain {s:?}"));
    }
    if let Some(s) = &e.stdout_equals
        && stdout.trim() != s.trim()
    {
        return Err(format!("output is {:?}, expected {s:?}", stdout.trim()));
    }
    if let Some(re) = &e.stdout_matches {
        match regex::Regex::new(re) {
            Ok(r) if !r.is_match(stdout) => return Err(format!("output does not match /{re}/")),
            Err(err) => return Err(format!("bad pattern: {err}")),
            _ => {}
        }
    }
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.trim_end().lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

async fn probe_pod(ctx: &CheckContext<'_>, c: &ProbePodCheck) -> Verdict {
    let kube = match &ctx.kube {
        Ok(k) => *k,
        Err(e) => return api_down(e),
    };
    let name = format!("klab-probe-{:08x}", fastrand::u32(..));
    let node_name = match &c.node {
        Some(sel) => match select(ctx, sel).await {
            Ok(n) => n.first().map(|n| n.name.clone()),
            Err(v) => return v,
        },
        None => None,
    };
    let mut spec = serde_json::json!({
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
        "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": "probe", "image": c.image, "imagePullPolicy": "IfNotPresent", "command": c.command}]
    });
    if let Some(n) = &node_name {
        spec["nodeName"] = Value::from(n.as_str());
    }
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": c.namespace, "labels": {"app.kubernetes.io/managed-by": "klab", "klab.dev/probe": "true"}},
        "spec": spec});
    let key = ObjKey {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: Some(c.namespace.clone()),
        name: name.clone(),
    };
    if let Err(e) = kube.create(&pod).await {
        if api_unreachable(&e) {
            return api_down(&e).with("the probe pod was not created");
        }
        return Verdict::fail(format!("the probe pod could not be created: {e}")).with(e.to_string());
    }
    let deadline = Instant::now() + c.timeout.as_std();
    let verdict = loop {
        match kube.get(&key).await {
            Ok(Some(p)) => {
                let phase = p.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending").to_string();
                if phase == "Succeeded" || phase == "Failed" {
                    let code = p
                        .pointer("/status/containerStatuses/0/state/terminated/exitCode")
                        .and_then(Value::as_i64)
                        .unwrap_or(-1) as i32;
                    let logs = kube.logs(&c.namespace, &name, None).await.unwrap_or_default();
                    let mut v = match check_expect(&c.expect, code, &logs) {
                        Ok(()) => Verdict::pass(format!("probe `{}` succeeded", c.command.join(" "))),
                        Err(m) => Verdict::fail(format!("probe `{}`: {m}", short_cmd(&c.command))),
                    };
                    v.evidence.push(format!(
                        "pod {name} on {}: exit code {code}",
                        p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("?")
                    ));
                    if !logs.trim().is_empty() {
                        v.evidence.push(tail(&logs, 5));
                    }
                    break v;
                }
                if Instant::now() > deadline {
                    let waiting = p
                        .pointer("/status/containerStatuses/0/state/waiting/reason")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    break Verdict::fail(format!("probe pod still {phase} after {}s {waiting}", c.timeout.as_secs()))
                        .with(format!("pod {name}: phase {phase} {waiting}"));
                }
            }
            Ok(None) => break Verdict::fail("the probe pod vanished"),
            Err(e) if Instant::now() > deadline => break api_down(&e),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    };
    let _ = kube.delete_now(&key).await;
    verdict
}

fn short_cmd(cmd: &[String]) -> String {
    let s = cmd.join(" ");
    if s.chars().count() > 60 { format!("{}…", s.chars().take(60).collect::<String>()) } else { s }
}

async fn pod_exec(ctx: &CheckContext<'_>, c: &PodExecCheck) -> Verdict {
    let kube = match &ctx.kube {
        Ok(k) => *k,
        Err(e) => return api_down(e),
    };
    let pod = match (&c.pod, &c.label_selector) {
        (Some(p), _) => p.clone(),
        (None, Some(sel)) => match kube.list("v1", "Pod", Some(&c.namespace), Some(sel), None).await {
            Ok(list) => {
                // A pod on its way out (deletionTimestamp set) still runs, but speaks for the
                // old template: the newest running pod is what the user meets.
                let mut running: Vec<&Value> = list
                    .iter()
                    .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
                    .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
                    .collect();
                running.sort_by_key(|p| {
                    std::cmp::Reverse(
                        p.pointer("/metadata/creationTimestamp")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    )
                });
                match running.first() {
                    Some(p) => p.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string(),
                    None => return Verdict::fail(format!("no running pod matches {sel} in {}", c.namespace)),
                }
            }
            Err(e) => return api_down(&e),
        },
        (None, None) => return Verdict::fail("podExec names no pod"),
    };
    let mut command = c.command.clone();
    if c.service_env {
        match kube.list("v1", "Service", Some(&c.namespace), None, None).await {
            Ok(services) => {
                let vars = service_env(&services);
                if !vars.is_empty() {
                    command = std::iter::once("env".to_string()).chain(vars).chain(command).collect();
                }
            }
            Err(e) => return api_down(&e).with(format!("while listing the Services of {}", c.namespace)),
        }
    }
    match kube.exec(&c.namespace, &pod, c.container.as_deref(), &command, Duration::from_secs(45)).await {
        Err(e) if api_unreachable(&e) => api_down(&e).with(format!("while running a command in {}/{pod}", c.namespace)),
        Err(e) => Verdict::fail(format!("exec in {}/{pod} failed: {e}", c.namespace)).with(e.to_string()),
        Ok((code, out, err)) => {
            let mut v = match check_expect(&c.expect, code, &out) {
                Ok(()) => Verdict::pass(format!("`{}` in {pod} succeeded", short_cmd(&c.command))),
                Err(m) => Verdict::fail(format!("`{}` in {pod}: {m}", short_cmd(&c.command))),
            };
            v.evidence.push(format!("{}/{pod}: exit code {code}", c.namespace));
            let text = format!("{}{}", out, err);
            if !text.trim().is_empty() {
                v.evidence.push(tail(&text, 5));
            }
            v
        }
    }
}

/// The variables the kubelet gives a pod started now for these Services (`NAME_SERVICE_HOST`,
/// `NAME_SERVICE_PORT`, `NAME_SERVICE_PORT_<PORT NAME>`, `NAME_PORT`), as `KEY=VALUE` arguments
/// for `env`. Headless Services have none, as with the kubelet.
pub fn service_env(services: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for svc in services {
        let ip = svc.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or_default();
        let name = svc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        if ip.is_empty() || ip == "None" || name.is_empty() {
            continue;
        }
        let prefix = env_name(name);
        let ports = svc.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
        out.push(format!("{prefix}_SERVICE_HOST={ip}"));
        for (i, p) in ports.iter().enumerate() {
            let Some(port) = p.get("port").and_then(Value::as_i64) else { continue };
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            if i == 0 {
                out.push(format!("{prefix}_SERVICE_PORT={port}"));
                out.push(format!("{prefix}_PORT={}://{ip}:{port}", proto.to_lowercase()));
            }
            if let Some(pn) = p.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                out.push(format!("{prefix}_SERVICE_PORT_{}={port}", env_name(pn)));
            }
        }
    }
    out
}

fn env_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

async fn node_exec(ctx: &CheckContext<'_>, c: &NodeExecCheck) -> Verdict {
    let nodes = match select(ctx, &c.nodes).await {
        Ok(n) => n,
        Err(v) => return v,
    };
    let mut failures = Vec::new();
    let mut unreachable = Vec::new();
    let mut evidence = Vec::new();
    for n in &nodes {
        match ctx.nodes.exec(&n.name, &c.command, None, node::NODE_TIMEOUT).await {
            Err(e) if e.is_unreachable() => unreachable.push(e.to_string()),
            Err(e) => failures.push(format!("{}: {e}", n.name)),
            Ok(o) => {
                evidence.push(format!("{}: exit {} {}", n.name, o.code, tail(&format!("{}{}", o.stdout, o.stderr), 3)));
                if let Err(m) = check_expect(&c.expect, o.code, &o.stdout) {
                    failures.push(format!("{}: {m}", n.name));
                }
            }
        }
    }
    node_verdict(
        format!("`{}` as expected on {} node(s)", short_cmd(&c.command), nodes.len()),
        failures,
        unreachable,
        evidence,
    )
}

async fn sysctl(ctx: &CheckContext<'_>, c: &SysctlCheck) -> Verdict {
    let nodes = match select(ctx, &c.nodes).await {
        Ok(n) => n,
        Err(v) => return v,
    };
    let ops = NodeOps { access: ctx.nodes };
    let mut bad = Vec::new();
    let mut unreachable = Vec::new();
    let mut evidence = Vec::new();
    for n in &nodes {
        match ops.sysctl_get(&n.name, &c.key).await {
            Ok(v) => {
                evidence.push(format!("{}: {} = {v}", n.name, c.key));
                if v != c.equals {
                    bad.push(format!("{} = {v} on {}", c.key, n.name));
                }
            }
            Err(e) if e.is_unreachable() => unreachable.push(e.to_string()),
            Err(e) => bad.push(e.to_string()),
        }
    }
    let answers = if bad.is_empty() { bad } else { vec![format!("{} (expected {})", bad.join(", "), c.equals)] };
    node_verdict(format!("{} = {} on every node", c.key, c.equals), answers, unreachable, evidence)
}

async fn etcd(ctx: &CheckContext<'_>, c: &EtcdCheck) -> Verdict {
    let node = match select(ctx, &c.node).await {
        Ok(n) => n[0].name.clone(),
        Err(v) => return v,
    };
    let ops = NodeOps { access: ctx.nodes };
    let mut problems = Vec::new();
    let mut unreachable = Vec::new();
    let mut evidence = Vec::new();
    if c.no_alarms {
        match ops.etcd_alarms(&node).await {
            Ok(a) if a.is_empty() => evidence.push("etcdctl alarm list: (none)".into()),
            Ok(a) => {
                evidence.push(format!("etcdctl alarm list: {}", a.join(", ")));
                problems.push(format!("etcd alarm raised: {}", a.join(", ")));
            }
            Err(e) if e.is_unreachable() => unreachable.push(e.to_string()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if c.healthy {
        match ops.etcd_healthy(&node).await {
            Ok((true, t)) => evidence.push(t),
            Ok((false, t)) => {
                problems.push("etcd is not healthy".into());
                evidence.push(t);
            }
            Err(e) if e.is_unreachable() => unreachable.push(e.to_string()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(max) = c.max_db_bytes {
        match ops.etcd_status(&node).await {
            Ok((_, size)) => {
                evidence.push(format!("etcd database size {size} bytes"));
                if size > max {
                    problems.push(format!("etcd database is {size} bytes, more than {max}: compact and defragment"));
                }
            }
            Err(e) if e.is_unreachable() => unreachable.push(e.to_string()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    unreachable.dedup();
    node_verdict("etcd is fine".into(), problems, unreachable, evidence)
}

async fn rollout(ctx: &CheckContext<'_>, c: &RolloutCheck) -> Verdict {
    let kube = match &ctx.kube {
        Ok(k) => *k,
        Err(e) => return api_down(e),
    };
    let kind = format!("{:?}", c.kind);
    let key = ObjKey {
        api_version: "apps/v1".into(),
        kind: kind.clone(),
        namespace: Some(c.namespace.clone()),
        name: c.name.clone(),
    };
    let obj = match kube.get(&key).await {
        Ok(Some(o)) => o,
        Ok(None) => return Verdict::fail(format!("{kind} {}/{} does not exist", c.namespace, c.name)),
        Err(e) => return api_down(&e),
    };
    let n = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let gen_ok = n("/status/observedGeneration") >= n("/metadata/generation");
    let (ok, detail) = match c.kind {
        WorkloadKind::Deployment => {
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            // As `kubectl rollout status`: every replica updated, no old one left, and the
            // updated ones available (a stalled rollout keeps an old pod available).
            let (upd, avail, total) =
                (n("/status/updatedReplicas"), n("/status/availableReplicas"), n("/status/replicas"));
            let old = (total - upd).max(0);
            (
                gen_ok && upd >= want && old == 0 && avail >= upd,
                format!(
                    "{avail}/{want} available, {upd} updated{}",
                    if old > 0 { format!(", {old} old replica(s) still there") } else { String::new() }
                ),
            )
        }
        WorkloadKind::DaemonSet => {
            let want = n("/status/desiredNumberScheduled");
            let (ready, upd) = (n("/status/numberReady"), n("/status/updatedNumberScheduled"));
            (gen_ok && want > 0 && ready >= want && upd >= want, format!("{ready}/{want} ready, {upd} updated"))
        }
        WorkloadKind::StatefulSet => {
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let (ready, upd) = (n("/status/readyReplicas"), n("/status/updatedReplicas"));
            (gen_ok && ready >= want && upd >= want, format!("{ready}/{want} ready, {upd} updated"))
        }
    };
    let v = Verdict::of(ok, format!("{kind} {}/{}: {detail}", c.namespace, c.name));
    if ok {
        v
    } else {
        v.with(format!(
            "{kind} {}/{}: {detail}{}",
            c.namespace,
            c.name,
            if gen_ok { "" } else { " (rollout not observed yet)" }
        ))
    }
}

fn event_time(e: &Value) -> Option<jiff::Timestamp> {
    ["/lastTimestamp", "/eventTime", "/firstTimestamp", "/metadata/creationTimestamp"]
        .iter()
        .find_map(|p| e.pointer(p).and_then(Value::as_str).and_then(|s| s.parse().ok()))
}

async fn events(ctx: &CheckContext<'_>, c: &EventsCheck) -> Verdict {
    let kube = match &ctx.kube {
        Ok(k) => *k,
        Err(e) => return api_down(e),
    };
    let list = match kube.list("v1", "Event", c.namespace.as_deref(), None, None).await {
        Ok(l) => l,
        Err(e) => return api_down(&e),
    };
    let hits: Vec<&Value> = list
        .iter()
        .filter(|e| e.get("reason").and_then(Value::as_str) == Some(c.reason.as_str()))
        .filter(|e| e.get("type").and_then(Value::as_str) == Some(c.event_type.as_str()))
        .filter(|e| {
            c.message_contains
                .as_ref()
                .is_none_or(|m| e.get("message").and_then(Value::as_str).unwrap_or("").contains(m.as_str()))
        })
        .filter(|e| match (ctx.since, event_time(e)) {
            (Some(s), Some(t)) => t >= s,
            _ => true,
        })
        .collect();
    let evidence: Vec<String> = hits
        .iter()
        .take(3)
        .map(|e| {
            format!(
                "{} {}: {}",
                e.pointer("/involvedObject/kind").and_then(Value::as_str).unwrap_or(""),
                e.pointer("/involvedObject/name").and_then(Value::as_str).unwrap_or(""),
                e.get("message").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    let n = hits.len();
    let mut v = if c.present {
        Verdict::of(n > 0, format!("{n} {} event(s) with reason {}", c.event_type, c.reason))
    } else {
        Verdict::of(
            n == 0,
            if n == 0 {
                format!("no {} event with reason {} since the fault", c.event_type, c.reason)
            } else {
                format!("{n} {} event(s) with reason {} since the fault", c.event_type, c.reason)
            },
        )
    };
    v.evidence = evidence;
    v
}

async fn audit(ctx: &CheckContext<'_>, c: &AuditCheck) -> Verdict {
    let node = match select(ctx, "control-plane").await {
        Ok(n) => n[0].name.clone(),
        Err(v) => return v,
    };
    let ops = NodeOps { access: ctx.nodes };
    let text = match ops.read_file(&node, &ctx.audit_log_path).await {
        Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(None) => {
            return Verdict::fail(format!(
                "no audit log at {} on {node}: is audit logging on in this lab?",
                ctx.audit_log_path
            ));
        }
        Err(e) if e.is_unreachable() => return unknown(Verdict::fail(format!("cannot read the audit log: {e}"))),
        Err(e) => return Verdict::fail(e.to_string()),
    };
    let code_ok = |code: i64| match c.code.as_deref() {
        None => true,
        Some(p) if p.ends_with("xx") => {
            p.chars().next().and_then(|d| d.to_digit(10)).is_some_and(|d| code / 100 == d as i64)
        }
        Some(p) => p.parse::<i64>().is_ok_and(|x| x == code),
    };
    let mut hits = Vec::new();
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else { continue };
        if e.get("stage").and_then(Value::as_str) == Some("RequestReceived") {
            continue;
        }
        let s = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or("");
        if c.user.as_ref().is_some_and(|u| s("/user/username") != u)
            || c.verb.as_ref().is_some_and(|v| s("/verb") != v)
            || c.resource.as_ref().is_some_and(|r| s("/objectRef/resource") != r)
            || c.namespace.as_ref().is_some_and(|n| s("/objectRef/namespace") != n)
            || c.name.as_ref().is_some_and(|n| s("/objectRef/name") != n)
            || !code_ok(e.pointer("/responseStatus/code").and_then(Value::as_i64).unwrap_or(0))
        {
            continue;
        }
        if let (Some(since), Ok(t)) = (ctx.since, s("/stageTimestamp").parse::<jiff::Timestamp>())
            && t < since
        {
            continue;
        }
        hits.push(format!(
            "{} {} {} {}/{} → {}",
            s("/stageTimestamp"),
            s("/user/username"),
            s("/verb"),
            s("/objectRef/resource"),
            s("/objectRef/name"),
            e.pointer("/responseStatus/code").and_then(Value::as_i64).unwrap_or(0)
        ));
    }
    let n = hits.len();
    let mut v = if c.present {
        Verdict::of(n > 0, format!("{n} matching audit event(s)"))
    } else {
        Verdict::of(n == 0, format!("{n} matching audit event(s), expected none"))
    };
    v.evidence = hits.into_iter().rev().take(3).collect();
    v
}

async fn api_write(ctx: &CheckContext<'_>, c: &ApiWriteCheck) -> Verdict {
    let kube = match &ctx.kube {
        Ok(k) => *k,
        Err(e) => return api_down(e),
    };
    let name = format!("klab-write-probe-{:08x}", fastrand::u32(..));
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": c.namespace, "labels": {"app.kubernetes.io/managed-by": "klab"}}, "data": {"probe": "write"}});
    match kube.create(&cm).await {
        Err(e) if api_unreachable(&e) => api_down(&e),
        Err(e) => Verdict::fail(format!("writes fail: {e}")).with(e.to_string()),
        Ok(_) => {
            let key = ObjKey {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some(c.namespace.clone()),
                name,
            };
            let _ = kube.delete(&key).await;
            Verdict::pass(format!("a ConfigMap could be written in {}", c.namespace))
        }
    }
}

async fn mirror_pods(ctx: &CheckContext<'_>, c: &MirrorPodsCheck) -> Verdict {
    let kube = match &ctx.kube {
        Ok(k) => *k,
        Err(e) => return api_down(e),
    };
    let nodes = match select(ctx, &c.nodes).await {
        Ok(n) => n,
        Err(v) => return v,
    };
    let ops = NodeOps { access: ctx.nodes };
    let mut missing = Vec::new();
    let mut seen = Vec::new();
    for n in &nodes {
        let ls = match ops.run(&n.name, &crate::cluster::process::argv(["ls", "/etc/kubernetes/manifests"])).await {
            Ok(o) if o.ok() => o.stdout,
            Ok(o) => return Verdict::fail(format!("{}: cannot list static pods: {}", n.name, o.reason())),
            Err(e) if e.is_unreachable() => return unknown(Verdict::fail(e.to_string())),
            Err(e) => return Verdict::fail(e.to_string()),
        };
        for file in
            ls.lines().map(str::trim).filter(|f| f.ends_with(".yaml") || f.ends_with(".yml") || f.ends_with(".json"))
        {
            let path = format!("/etc/kubernetes/manifests/{file}");
            let Ok(Some(bytes)) = ops.read_file(&n.name, &path).await else { continue };
            let Ok(m) = serde_saphyr::from_slice::<Value>(&bytes) else { continue };
            let base = m.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let ns = m.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
            let mirror = format!("{base}-{}", n.name);
            let key = ObjKey {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: Some(ns.into()),
                name: mirror.clone(),
            };
            match kube.get(&key).await {
                Ok(Some(_)) => seen.push(mirror),
                Ok(None) => missing.push(format!("{ns}/{mirror}")),
                Err(e) => return api_down(&e),
            }
        }
    }
    if missing.is_empty() {
        Verdict::pass(format!("all {} static pods are visible in the API", seen.len()))
    } else {
        Verdict::fail(format!("static pods running but invisible in the API: {}", missing.join(", ")))
            .with("their containers run (crictl ps shows them) but the mirror pods are missing")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::node::NodeError;
    use crate::cluster::process::Output;

    struct NoNodes;
    #[async_trait::async_trait]
    impl NodeAccess for NoNodes {
        async fn nodes(&self) -> Result<Vec<Node>, NodeError> {
            Ok(vec![])
        }
        async fn exec(&self, node: &str, _: &[String], _: Option<&[u8]>, _: Duration) -> Result<Output, NodeError> {
            Err(NodeError::NoMatch(node.into()))
        }
        fn describe(&self) -> String {
            "none".into()
        }
    }

    #[test]
    fn service_env_is_what_the_kubelet_gives() {
        let svcs = vec![
            serde_json::json!({"metadata": {"name": "report-api"}, "spec": {"clusterIP": "10.96.4.7",
                "ports": [{"port": 8080, "protocol": "TCP", "name": "http"}, {"port": 9090, "name": "metrics"}]}}),
            serde_json::json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}}),
        ];
        assert_eq!(
            service_env(&svcs),
            [
                "REPORT_API_SERVICE_HOST=10.96.4.7",
                "REPORT_API_SERVICE_PORT=8080",
                "REPORT_API_PORT=tcp://10.96.4.7:8080",
                "REPORT_API_SERVICE_PORT_HTTP=8080",
                "REPORT_API_SERVICE_PORT_METRICS=9090",
            ]
        );
    }

    #[tokio::test]
    async fn not_of_a_check_that_could_not_look_is_not_a_pass() {
        let ctx = CheckContext {
            kube: Err(KubeError::Unreachable("connection refused".into())),
            nodes: &NoNodes,
            node_list: vec![].into(),
            since: None,
            audit_log_path: String::new(),
        };
        let spec: CheckSpec = serde_json::from_value(serde_json::json!({"not": {"resource": {"apiVersion": "v1", "kind": "Pod", "namespace": "x", "name": "y"}}})).unwrap();
        let v = evaluate(&ctx, &spec).await;
        assert!(!v.passed && v.unknown, "{v:?}");
        assert!(v.reason.contains("cannot tell") && v.reason.contains("connection refused"), "{}", v.reason);
        let plain: CheckSpec = serde_json::from_value(serde_json::json!({"apiWrite": {}})).unwrap();
        let w = evaluate(&ctx, &plain).await;
        assert!(!w.passed && w.reason.contains("apiserver"), "{w:?}");
    }
}
