//! Faults (and setup and solution steps): each action kind knows how to read what it will
//! change (its undo data), act, check that the fault is live, and undo.
//!
//! The order is the safety: undo data is read and journalled (fsync'd) *before* acting, so a
//! crash or Ctrl-C at any point leaves a journal `reset` can replay. See `session::journal`.

pub mod staticpod;

use crate::check::engine::{self, CheckContext};
use crate::cluster::kube::{Kube, KubeError, ObjKey, strip_server_fields};
use crate::cluster::lab::Lab;
use crate::cluster::node::{self, Node, NodeError};
use crate::cluster::nodeops::{NodeOps, b64, unb64};
use crate::scenario::kinds::*;
use crate::scenario::plan::{Phase, PlannedStep};
use crate::session::journal::{self, Journal, Record, UndoItem};
use crate::session::state::StateError;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("step `{step}`: precondition failed: {message}")]
    Precondition { step: String, message: String },
    #[error("step `{step}`: {message}")]
    Failed { step: String, message: String },
    #[error("step `{step}`: the fault is not live after injection: {message}")]
    NotLive { step: String, message: String },
    #[error(transparent)]
    State(#[from] StateError),
}

/// How long a restarted component must stay healthy before a wait on it ends.
const STABLE: Duration = Duration::from_secs(1);

/// The pause between two looks at a restarting component: short at first (the kubelet often
/// restarts a static pod within a second), then longer. Every look is a `docker exec` or two
/// (CPU in docker, containerd and runc) on a node that is busy restarting its control plane, and
/// a restart can take a minute on a loaded machine.
fn poll_pause(waited: Duration) -> Duration {
    if waited < Duration::from_secs(5) { Duration::from_millis(500) } else { Duration::from_secs(2) }
}

/// Progress lines for long waits.
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

pub struct Injector<'a> {
    pub lab: &'a Lab,
    pub nodes: Vec<Node>,
    pub progress: Progress<'a>,
}

fn kube_err(step: &str) -> impl Fn(KubeError) -> FaultError + '_ {
    move |e| FaultError::Failed { step: step.to_string(), message: e.to_string() }
}
fn node_err(step: &str) -> impl Fn(NodeError) -> FaultError + '_ {
    move |e| FaultError::Failed { step: step.to_string(), message: e.to_string() }
}

impl<'a> Injector<'a> {
    fn kube(&self, step: &str) -> Result<&'a Kube, FaultError> {
        self.lab.kube().map_err(|e| FaultError::Failed { step: step.into(), message: e.to_string() })
    }
    fn ops(&self) -> NodeOps<'a> {
        NodeOps { access: self.lab.nodes.as_ref() }
    }
    fn select(&self, step: &str, sel: &str) -> Result<Vec<Node>, FaultError> {
        node::select(&self.nodes, sel)
            .map_err(|e| FaultError::Precondition { step: step.into(), message: e.to_string() })
    }
    pub fn check_context(&self, since: Option<jiff::Timestamp>) -> CheckContext<'a> {
        CheckContext {
            kube: self.lab.kube(),
            nodes: self.lab.nodes.as_ref(),
            node_list: self.nodes.clone().into(),
            since,
            audit_log_path: AUDIT_LOG_PATH.into(),
        }
    }

    /// Runs one step under the journal; returns a line of evidence for the output.
    pub async fn run_step(&self, j: &mut Journal, step: &PlannedStep) -> Result<String, FaultError> {
        let id = &step.id;
        let covered = j.covered_targets();
        let undo: Vec<UndoItem> =
            self.prepare(step).await?.into_iter().filter(|u| !covered.contains(&u.target())).collect();
        let seq = j.next_seq();
        let phase = match step.phase {
            Phase::Setup => "setup",
            Phase::Fault => "fault",
            Phase::Solution => "solution",
        };
        j.append(Record::Intent {
            seq,
            phase: phase.into(),
            step: id.clone(),
            kind: step.action.0.kind().into(),
            at: journal::now(),
            undo,
        })?;
        journal::crash_point(seq, "intent");
        let acted = self.act(step).await;
        journal::crash_point(seq, "act");
        let evidence = match acted {
            Ok(e) => e,
            Err(err) => {
                j.append(Record::Failed { seq, at: journal::now(), error: err.to_string() })?;
                return Err(err);
            }
        };
        let live = if step.phase == Phase::Fault { self.verify_live(step).await } else { Ok(String::new()) };
        match live {
            Ok(l) => {
                let ev = [evidence, l].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ");
                j.append(Record::Done { seq, at: journal::now(), evidence: Some(ev.clone()) })?;
                journal::crash_point(seq, "done");
                Ok(ev)
            }
            Err(err) => {
                j.append(Record::Failed { seq, at: journal::now(), error: err.to_string() })?;
                Err(err)
            }
        }
    }

    /// Reads the state the step will change. Also its preconditions.
    async fn prepare(&self, step: &PlannedStep) -> Result<Vec<UndoItem>, FaultError> {
        let id = step.id.as_str();
        let mut out = Vec::new();
        match &step.action.0 {
            Action::Apply(_) => {
                let kube = self.kube(id)?;
                for obj in &step.objects {
                    let key = ObjKey::of(obj).ok_or_else(|| FaultError::Precondition {
                        step: id.into(),
                        message: "object without name".into(),
                    })?;
                    let key = default_namespace(key, obj);
                    let before = kube.get(&key).await.map_err(kube_err(id))?;
                    out.push(UndoItem::Object { key, before, recreate: true });
                }
            }
            Action::Patch(PatchAction { target, .. }) | Action::Label(LabelAction { target, .. }) => {
                let key = obj_key(target);
                let before = self.kube(id)?.get(&key).await.map_err(kube_err(id))?;
                if before.is_none() {
                    return Err(FaultError::Precondition { step: id.into(), message: format!("{key} does not exist") });
                }
                out.push(UndoItem::Object { key, before, recreate: true });
            }
            Action::Delete(d) => {
                let key = obj_key(&d.target);
                let before = self.kube(id)?.get(&key).await.map_err(kube_err(id))?;
                match before {
                    None if !d.ignore_missing => {
                        return Err(FaultError::Precondition {
                            step: id.into(),
                            message: format!("{key} does not exist"),
                        });
                    }
                    None => {}
                    Some(b) => out.push(UndoItem::Object { key, before: Some(b), recreate: d.recreate_on_undo }),
                }
            }
            Action::NodeExec(a) => {
                for n in self.select(id, &a.nodes)? {
                    let Some(undo) = &a.undo else { continue };
                    let argv = match &a.save {
                        Some(save) => {
                            let o = self.ops().run(&n.name, save).await.map_err(node_err(id))?;
                            if !o.ok() {
                                return Err(FaultError::Precondition {
                                    step: id.into(),
                                    message: format!("{}: `{}` {}", n.name, save.join(" "), o.reason()),
                                });
                            }
                            let mut p = crate::scenario::template::Params::new();
                            p.insert("saved".into(), Value::from(o.stdout.trim()));
                            let r = crate::scenario::template::Renderer::new(&p);
                            undo.iter()
                                .map(|a| r.render_str(a))
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(|m| FaultError::Precondition { step: id.into(), message: m })?
                        }
                        None => undo.clone(),
                    };
                    out.push(UndoItem::Command { node: n.name.clone(), argv });
                }
            }
            Action::Sysctl(a) => {
                for n in self.select(id, &a.nodes)? {
                    for key in a.settings.keys() {
                        let value = self
                            .ops()
                            .sysctl_get(&n.name, key)
                            .await
                            .map_err(|e| FaultError::Precondition { step: id.into(), message: e.to_string() })?;
                        out.push(UndoItem::Sysctl { node: n.name.clone(), key: key.clone(), value });
                    }
                }
            }
            Action::StaticPodFlag(a) => {
                let n = self.select(id, &a.node)?.remove(0);
                let path = manifest_path(&a.manifest);
                let before = self.ops().read_file(&n.name, &path).await.map_err(node_err(id))?.ok_or_else(|| {
                    FaultError::Precondition {
                        step: id.into(),
                        message: format!("{}: no static pod manifest {path}", n.name),
                    }
                })?;
                let container = a.container.clone().unwrap_or_else(|| a.manifest.clone());
                let process = staticpod::process_name(&before, &container)
                    .map_err(|m| FaultError::Precondition { step: id.into(), message: format!("{path}: {m}") })?;
                let was_present = staticpod::flag_entry(&before, &container, &a.flag)
                    .map_err(|m| FaultError::Precondition { step: id.into(), message: m })?
                    .is_some();
                out.push(UndoItem::StaticPod {
                    node: n.name.clone(),
                    path,
                    before: b64(&before),
                    process,
                    flag: a.flag.clone(),
                    was_present,
                });
            }
            Action::EtcdFill(a) => {
                let n = self.select(id, &a.node)?.remove(0);
                let alarms = self
                    .ops()
                    .etcd_alarms(&n.name)
                    .await
                    .map_err(|e| FaultError::Precondition { step: id.into(), message: e.to_string() })?;
                if !alarms.is_empty() {
                    return Err(FaultError::Precondition {
                        step: id.into(),
                        message: format!("etcd already has alarms: {}", alarms.join(", ")),
                    });
                }
                out.push(UndoItem::EtcdFiller { node: n.name.clone(), prefix: a.prefix.clone() });
            }
            Action::Kubelet(a) => {
                for n in self.select(id, &a.nodes)? {
                    let was_running = self.ops().kubelet_running(&n.name).await.map_err(node_err(id))?;
                    out.push(UndoItem::Kubelet { node: n.name.clone(), was_running });
                }
            }
            Action::NodeFile(a) => {
                for n in self.select(id, &a.nodes)? {
                    let before = self.ops().read_file(&n.name, &a.path).await.map_err(node_err(id))?;
                    let mode = if before.is_some() {
                        self.ops()
                            .run(&n.name, &crate::cluster::process::argv(["stat", "-c", "%a", &a.path]))
                            .await
                            .ok()
                            .filter(|o| o.ok())
                            .map(|o| o.stdout.trim().to_string())
                    } else {
                        None
                    };
                    out.push(UndoItem::File {
                        node: n.name.clone(),
                        path: a.path.clone(),
                        before: before.map(|b| b64(&b)),
                        mode,
                    });
                }
            }
            Action::Etcdctl(_) | Action::EtcdRecover(_) | Action::Wait(_) => {}
        }
        Ok(out)
    }

    async fn act(&self, step: &PlannedStep) -> Result<String, FaultError> {
        let id = step.id.as_str();
        match &step.action.0 {
            Action::Apply(_) => {
                let kube = self.kube(id)?;
                let mut names = Vec::new();
                for obj in &step.objects {
                    kube.apply(obj).await.map_err(kube_err(id))?;
                    names.push(ObjKey::of(obj).map(|k| k.to_string()).unwrap_or_default());
                }
                Ok(format!("applied {}", names.join(", ")))
            }
            Action::Patch(p) => {
                let key = obj_key(&p.target);
                let body = step.patch.clone().unwrap_or(Value::Null);
                self.kube(id)?.patch(&key, p.patch_type, &body).await.map_err(kube_err(id))?;
                Ok(format!("patched {key}"))
            }
            Action::Label(l) => {
                let key = obj_key(&l.target);
                let labels: serde_json::Map<String, Value> = l
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().map(Value::from).unwrap_or(Value::Null)))
                    .collect();
                let body = serde_json::json!({"metadata": {"labels": labels}});
                self.kube(id)?.patch(&key, PatchType::Merge, &body).await.map_err(kube_err(id))?;
                Ok(format!("labelled {key}"))
            }
            Action::Delete(d) => {
                let key = obj_key(&d.target);
                let gone = self.kube(id)?.delete(&key).await.map_err(kube_err(id))?;
                Ok(if gone { format!("deleted {key}") } else { format!("{key} was already gone") })
            }
            Action::NodeExec(a) => {
                let mut lines = Vec::new();
                for n in self.select(id, &a.nodes)? {
                    let o = self.ops().run(&n.name, &a.command).await.map_err(node_err(id))?;
                    if !o.ok() {
                        return Err(FaultError::Failed {
                            step: id.into(),
                            message: format!("{}: `{}` {}", n.name, a.command.join(" "), o.reason()),
                        });
                    }
                    lines.push(format!("{}: {}", n.name, a.command.join(" ")));
                }
                Ok(lines.join("; "))
            }
            Action::Sysctl(a) => {
                for n in self.select(id, &a.nodes)? {
                    for (k, v) in &a.settings {
                        self.ops().sysctl_set(&n.name, k, v).await.map_err(node_err(id))?;
                    }
                }
                Ok(format!("set {}", a.settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")))
            }
            Action::StaticPodFlag(a) => self.static_pod_flag(id, a).await,
            Action::EtcdFill(a) => self.etcd_fill(id, a).await,
            Action::Etcdctl(a) => {
                let n = self.select(id, &a.node)?.remove(0);
                let o =
                    self.ops().etcdctl(&n.name, &a.args, None, Duration::from_secs(120)).await.map_err(node_err(id))?;
                if !o.ok() {
                    return Err(FaultError::Failed {
                        step: id.into(),
                        message: format!("etcdctl {}: {}", a.args.join(" "), o.reason()),
                    });
                }
                Ok(format!("etcdctl {}: {}", a.args.join(" "), o.stdout.trim()))
            }
            Action::EtcdRecover(a) => {
                let n = self.select(id, &a.node)?.remove(0);
                let done = self
                    .ops()
                    .etcd_recover(&n.name, a.delete_prefix.as_deref(), a.compact, a.defrag, a.disarm)
                    .await
                    .map_err(node_err(id))?;
                Ok(done.join(", "))
            }
            Action::Kubelet(a) => {
                for n in self.select(id, &a.nodes)? {
                    self.ops().kubelet(&n.name, a.state == ServiceState::Running).await.map_err(node_err(id))?;
                }
                Ok(format!("kubelet {:?} on {}", a.state, a.nodes).to_lowercase())
            }
            Action::NodeFile(a) => {
                for n in self.select(id, &a.nodes)? {
                    match &a.content {
                        Some(c) if !a.remove => self
                            .ops()
                            .write_file(&n.name, &a.path, c.as_bytes(), a.mode.as_deref())
                            .await
                            .map_err(node_err(id))?,
                        _ => self.ops().remove_file(&n.name, &a.path).await.map_err(node_err(id))?,
                    }
                }
                Ok(format!("{} {}", if a.remove { "removed" } else { "wrote" }, a.path))
            }
            Action::Wait(w) => {
                let ctx = self.check_context(None);
                let progress = self.progress;
                let started = Instant::now();
                let mut last = Instant::now();
                let v = engine::wait_until(&ctx, &w.until, w.timeout.as_std(), |v| {
                    if last.elapsed() > Duration::from_secs(10) {
                        progress(&format!("  waiting for `{id}` ({}s): {}", started.elapsed().as_secs(), v.reason));
                        last = Instant::now();
                    }
                })
                .await;
                if v.passed {
                    Ok(v.reason)
                } else {
                    Err(FaultError::Failed {
                        step: id.into(),
                        message: format!("not ready after {}: {}", w.timeout, v.reason),
                    })
                }
            }
        }
    }

    /// After injecting a fault: is it really there?
    async fn verify_live(&self, step: &PlannedStep) -> Result<String, FaultError> {
        let id = step.id.as_str();
        let not_live = |m: String| FaultError::NotLive { step: id.into(), message: m };
        match &step.action.0 {
            Action::Sysctl(a) => {
                for n in self.select(id, &a.nodes)? {
                    for (k, v) in &a.settings {
                        let now = self.ops().sysctl_get(&n.name, k).await.map_err(node_err(id))?;
                        if &now != v {
                            return Err(not_live(format!("{}: {k} reads {now}, expected {v}", n.name)));
                        }
                    }
                }
                Ok("live: values read back".into())
            }
            Action::EtcdFill(a) => {
                let n = self.select(id, &a.node)?.remove(0);
                let alarms = self.ops().etcd_alarms(&n.name).await.map_err(node_err(id))?;
                if alarms.iter().any(|a| a.contains("NOSPACE")) {
                    Ok("live: NOSPACE alarm raised".into())
                } else {
                    Err(not_live(format!("no NOSPACE alarm (alarms: {alarms:?})")))
                }
            }
            Action::Kubelet(a) => {
                for n in self.select(id, &a.nodes)? {
                    let running = self.ops().kubelet_running(&n.name).await.map_err(node_err(id))?;
                    if running != (a.state == ServiceState::Running) {
                        return Err(not_live(format!(
                            "{}: kubelet is {}",
                            n.name,
                            if running { "running" } else { "stopped" }
                        )));
                    }
                }
                Ok("live: kubelet state confirmed".into())
            }
            Action::Apply(_) => {
                let kube = self.kube(id)?;
                for obj in &step.objects {
                    if let Some(key) = ObjKey::of(obj)
                        && kube.get(&default_namespace(key.clone(), obj)).await.map_err(kube_err(id))?.is_none()
                    {
                        return Err(not_live(format!("{key} is not there")));
                    }
                }
                Ok(String::new())
            }
            _ => Ok(String::new()),
        }
    }

    /// A namespace is deleted asynchronously (its objects first); the next drill may recreate
    /// it, so reset waits until it is really gone.
    async fn wait_gone(&self, key: &ObjKey, timeout: Duration) -> Result<(), String> {
        let kube = self.lab.kube().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + timeout;
        loop {
            match kube.get(key).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) if Instant::now() > deadline => {
                    return Err(format!("{key} is still terminating after {}s", timeout.as_secs()));
                }
                Err(e) if Instant::now() > deadline => return Err(e.to_string()),
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    async fn static_pod_flag(&self, id: &str, a: &StaticPodFlagAction) -> Result<String, FaultError> {
        let n = self.select(id, &a.node)?.remove(0);
        let path = manifest_path(&a.manifest);
        let container = a.container.clone().unwrap_or_else(|| a.manifest.clone());
        let before = self
            .ops()
            .read_file(&n.name, &path)
            .await
            .map_err(node_err(id))?
            .ok_or_else(|| FaultError::Failed { step: id.into(), message: format!("{path} vanished") })?;
        let value = if a.remove { None } else { a.value.as_deref() };
        let after = staticpod::set_flag(&before, &container, &a.flag, value)
            .map_err(|m| FaultError::Failed { step: id.into(), message: m })?;
        let process = staticpod::process_name(&before, &container)
            .map_err(|m| FaultError::Failed { step: id.into(), message: m })?;
        self.ops().write_file(&n.name, &path, &after, None).await.map_err(node_err(id))?;
        let want = value.map(|v| format!("{}={v}", a.flag));
        self.wait_process(id, &n.name, &process, &a.flag, want.as_deref(), a.timeout.as_std()).await?;
        Ok(format!(
            "{}: {path} {}; {process} restarted with it",
            n.name,
            match &want {
                Some(w) => format!("sets {w}"),
                None => format!("drops {}", a.flag),
            }
        ))
    }

    /// Waits on the real state: the process runs with (or without) the flag, and the component
    /// answers again. A fixed sleep would race the kubelet (it restarts a static pod in 0.5 s
    /// or in 25 s, depending on whether deleting the old mirror pod hangs).
    pub async fn wait_process(
        &self,
        id: &str,
        node: &str,
        process: &str,
        flag: &str,
        want: Option<&str>,
        timeout: Duration,
    ) -> Result<(), FaultError> {
        let deadline = Instant::now() + timeout;
        let started = Instant::now();
        let mut last = Instant::now();
        // Healthy since when, and how many looks in a row said so.
        let mut healthy_run: Option<(Instant, u32)> = None;
        loop {
            // Every running instance must show the wanted state: the old process can linger
            // (and answer) for seconds after the new one started. Zombies have no command line.
            let lines: Vec<String> = self
                .ops()
                .process_cmdlines(node, process)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|l| !l.trim().is_empty())
                .collect();
            let ok = !lines.is_empty()
                && lines.iter().all(|l| {
                    let args: Vec<&str> = l.split_whitespace().collect();
                    match want {
                        Some(w) => args.contains(&w),
                        None => !args.iter().any(|x| *x == flag || x.starts_with(&format!("{flag}="))),
                    }
                });
            let healthy = ok
                && match process {
                    "etcd" => self.ops().etcd_healthy(node).await.map(|(h, _)| h).unwrap_or(false),
                    "kube-apiserver" => match self.lab.kube() {
                        Ok(k) => k.server_version().await.is_ok(),
                        Err(_) => true,
                    },
                    _ => true,
                };
            healthy_run = match (healthy, healthy_run) {
                (false, _) => None,
                (true, None) => Some((Instant::now(), 1)),
                (true, Some((since, n))) => Some((since, n + 1)),
            };
            // Stable: seen healthy at least twice, a second or more apart (the old instance can
            // answer for a moment before it dies).
            if matches!(healthy_run, Some((since, n)) if n >= 2 && since.elapsed() >= STABLE) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(FaultError::Failed {
                    step: id.into(),
                    message: format!(
                        "{node}: {process} did not come back {} within {}s",
                        want.map(|w| format!("with {w}")).unwrap_or_else(|| format!("without {flag}")),
                        timeout.as_secs()
                    ),
                });
            }
            if last.elapsed() > Duration::from_secs(10) {
                (self.progress)(&format!(
                    "  waiting for {process} on {node} to restart ({}s)…",
                    started.elapsed().as_secs()
                ));
                last = Instant::now();
            }
            tokio::time::sleep(poll_pause(started.elapsed())).await;
        }
    }

    async fn etcd_fill(&self, id: &str, a: &EtcdFillAction) -> Result<String, FaultError> {
        let n = self.select(id, &a.node)?.remove(0);
        let value: Vec<u8> = (0..a.value_bytes).map(|i| b'a' + (i % 26) as u8).collect();
        for i in 0..a.max_writes {
            let key = format!("{}{i:05}", a.prefix);
            let o = self
                .ops()
                .etcdctl(
                    &n.name,
                    &crate::cluster::process::argv(["put", key.as_str()]),
                    Some(&value),
                    Duration::from_secs(60),
                )
                .await
                .map_err(node_err(id))?;
            let text = format!("{}{}", o.stdout, o.stderr);
            if text.contains("database space exceeded") || text.contains("NOSPACE") {
                return Ok(format!(
                    "{} write(s) of {} bytes until etcd answered `mvcc: database space exceeded`",
                    i + 1,
                    a.value_bytes
                ));
            }
            if !o.ok() {
                return Err(FaultError::Failed {
                    step: id.into(),
                    message: format!("etcdctl put {key}: {}", o.reason()),
                });
            }
            if i % 5 == 4 {
                (self.progress)(&format!("  filling etcd: {} writes of {} kB…", i + 1, a.value_bytes / 1000));
            }
        }
        Err(FaultError::Failed {
            step: id.into(),
            message: format!("etcd took {} writes without raising NOSPACE: is the quota small enough?", a.max_writes),
        })
    }

    /// Undoes everything the journal still holds, last first, and records each undo. An
    /// apiserver that answered when this began and stops answering while its own manifest is
    /// restored is restarting: wait for it (bounded) instead of giving up. Returns how many
    /// changes were undone and the lines of those that could not be (yet).
    pub async fn undo_pending(&self, j: &mut Journal) -> Result<(usize, Vec<String>), FaultError> {
        let pending = j.pending_undo();
        let mut api_patience = if self.lab.kube_error.is_none() { Duration::from_secs(120) } else { Duration::ZERO };
        let (mut done, mut failed) = (0, Vec::new());
        for (seq, idx, item) in pending {
            let mut result = self.undo(&item).await;
            while let Err(msg) = &result {
                let transient = msg.contains("cannot reach the apiserver") || msg.contains("did not answer");
                if !transient || api_patience.is_zero() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
                api_patience = api_patience.saturating_sub(Duration::from_secs(3));
                result = self.undo(&item).await;
            }
            match result {
                Ok(msg) => {
                    j.append(Record::Undone { seq, item: idx, at: journal::now() })?;
                    done += 1;
                    (self.progress)(&format!("  ✓ {msg}"));
                }
                Err(msg) => {
                    let line = format!("{}: {msg}", item.describe());
                    (self.progress)(&format!("  ✗ {line}"));
                    failed.push(line);
                }
            }
        }
        Ok((done, failed))
    }

    /// Undoes one journal item. Idempotent: undoing twice leaves the same state.
    pub async fn undo(&self, item: &UndoItem) -> Result<String, String> {
        let ops = self.ops();
        match item {
            UndoItem::Object { key, before, recreate } => {
                let kube = self.lab.kube().map_err(|e| e.to_string())?;
                match (before, recreate) {
                    (None, _) => {
                        kube.delete(key).await.map_err(|e| e.to_string())?;
                        if key.kind == "Namespace" {
                            self.wait_gone(key, Duration::from_secs(180)).await?;
                        }
                        Ok(format!("deleted {key}"))
                    }
                    (Some(_), false) => Ok(format!("left {key} to its owner")),
                    (Some(b), true) => {
                        let mut obj = b.clone();
                        strip_server_fields(&mut obj);
                        kube.apply(&obj).await.map(|_| format!("restored {key}")).map_err(|e| e.to_string())
                    }
                }
            }
            UndoItem::Sysctl { node, key, value } => ops
                .sysctl_set(node, key, value)
                .await
                .map(|_| format!("{node}: {key}={value}"))
                .map_err(|e| e.to_string()),
            UndoItem::File { node, path, before, mode } => match before {
                None => ops
                    .remove_file(node, path)
                    .await
                    .map(|_| format!("{node}: removed {path}"))
                    .map_err(|e| e.to_string()),
                Some(b) => ops
                    .write_file(node, path, &unb64(b), mode.as_deref())
                    .await
                    .map(|_| format!("{node}: restored {path}"))
                    .map_err(|e| e.to_string()),
            },
            UndoItem::StaticPod { node, path, before, process, flag, .. } => {
                let bytes = unb64(before);
                let current = ops.read_file(node, path).await.map_err(|e| e.to_string())?;
                if current.as_deref() != Some(bytes.as_slice()) {
                    ops.write_file(node, path, &bytes, None).await.map_err(|e| e.to_string())?;
                }
                let container_entry = first_flag_entry(&bytes, flag);
                self.wait_process("reset", node, process, flag, container_entry.as_deref(), Duration::from_secs(240))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!("{node}: restored {path}; {process} runs it"))
            }
            UndoItem::EtcdFiller { node, prefix } => ops
                .etcd_recover(node, Some(prefix), true, true, true)
                .await
                .map(|d| format!("{node}: etcd {}", d.join(", ")))
                .map_err(|e| e.to_string()),
            UndoItem::Kubelet { node, was_running } => ops
                .kubelet(node, *was_running)
                .await
                .map(|_| format!("{node}: kubelet {}", if *was_running { "started" } else { "stopped" }))
                .map_err(|e| e.to_string()),
            UndoItem::Command { node, argv } => match ops.run(node, argv).await {
                Ok(o) if o.ok() => Ok(format!("{node}: {}", argv.join(" "))),
                Ok(o) => Err(format!("{node}: `{}` {}", argv.join(" "), o.reason())),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// The flag's entry in whichever container of the manifest carries it.
fn first_flag_entry(manifest: &[u8], flag: &str) -> Option<String> {
    let v: Value = serde_saphyr::from_slice(manifest).ok()?;
    for c in v.pointer("/spec/containers")?.as_array()? {
        let name = c.get("name")?.as_str()?;
        if let Ok(Some(e)) = staticpod::flag_entry(manifest, name, flag) {
            return Some(e);
        }
    }
    None
}

pub const AUDIT_LOG_PATH: &str = "/var/log/kubernetes/kube-apiserver-audit.log";

pub fn manifest_path(manifest: &str) -> String {
    format!("/etc/kubernetes/manifests/{manifest}.yaml")
}

pub fn obj_key(r: &ObjectRef) -> ObjKey {
    ObjKey {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

/// Namespaced objects without a namespace land in `default`; keep the key honest about it.
fn default_namespace(key: ObjKey, _obj: &Value) -> ObjKey {
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_is_watched_closely_at_first_then_less_often() {
        assert_eq!(poll_pause(Duration::ZERO), Duration::from_millis(500));
        assert_eq!(poll_pause(Duration::from_millis(4900)), Duration::from_millis(500));
        assert_eq!(poll_pause(Duration::from_secs(5)), Duration::from_secs(2));
        assert_eq!(poll_pause(Duration::from_secs(200)), Duration::from_secs(2));
    }
}
