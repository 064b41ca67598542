//! `klab selftest`: proves that a drill's fault really breaks what the user sees and that its
//! reference solution really fixes it, and that reset leaves the cluster as it was.
//!
//! Per scenario: setup → baseline (every check but the anti-patterns passes, looked at again for
//! up to a minute while the setup settles) → inject (the
//! injector verifies each fault live) → broken (a user-view check fails) → solve → fixed
//! (every check passes, no anti-pattern fires) → reset (the journal is undone) → clean (the
//! cluster's objects and the nodes' state equal the snapshot taken before setup). A phase that
//! fails or times out ends the scenario early, but reset always runs.

pub mod preflight;
pub mod snapshot;

use crate::check::engine::{self, CheckResult};
use crate::cluster::lab::Lab;
use crate::cluster::node::Node;
use crate::fault::{Injector, Progress};
use crate::scenario::kinds::Role;
use crate::scenario::plan::{Plan, PlannedCheck, PlannedStep};
use crate::session::journal::Journal;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseResult {
    pub name: String,
    pub status: Status,
    pub seconds: f64,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioRun {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_reason: Option<String>,
    pub status: Status,
    /// Why it failed or was skipped; empty when it passed.
    pub reason: String,
    pub seconds: f64,
    pub phases: Vec<PhaseResult>,
    /// Set when Ctrl-C stopped the run: the caller stops after this scenario.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

impl ScenarioRun {
    /// A scenario the lab cannot carry (or that cannot be planned for it).
    pub fn skipped(id: &str, title: &str, reason: String) -> Self {
        ScenarioRun {
            id: id.into(),
            title: title.into(),
            variant: None,
            variant_reason: None,
            status: Status::Skipped,
            reason: reason.clone(),
            seconds: 0.0,
            phases: vec![PhaseResult {
                name: "preflight".into(),
                status: Status::Skipped,
                seconds: 0.0,
                message: reason,
                evidence: vec![],
            }],
            interrupted: false,
        }
    }
}

/// The phases in order, as they appear in reports.
/// How long the baseline looks again while a check fails (capped by the settle time).
pub const BASELINE_SETTLE: Duration = Duration::from_secs(60);

pub const PHASES: &[&str] = &["preflight", "setup", "baseline", "inject", "broken", "solve", "fixed", "reset", "clean"];

pub struct Runner<'a> {
    pub lab: &'a Lab,
    pub nodes: Vec<Node>,
    pub journal: PathBuf,
    pub phase_timeout: Duration,
    /// How long reset and clean may take to settle (namespaces terminating, static pods).
    pub settle_timeout: Duration,
    pub progress: Progress<'a>,
    /// Called as each phase ends (live progress).
    pub on_phase: &'a (dyn Fn(&PhaseResult) + Sync),
}

enum Outcome {
    Pass(String),
    Fail(String, Vec<String>),
}

impl Runner<'_> {
    /// Runs one scenario whose preflight passed; `preflight` is that phase's message.
    pub async fn run(&self, plan: &Plan, preflight: String) -> ScenarioRun {
        let started = Instant::now();
        let mut run = ScenarioRun {
            id: plan.scenario.clone(),
            title: plan.title.clone(),
            variant: plan.variant.clone(),
            variant_reason: plan.variant_reason.clone(),
            status: Status::Passed,
            reason: String::new(),
            seconds: 0.0,
            phases: vec![],
            interrupted: false,
        };
        let node_names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let inj = Injector { lab: self.lab, nodes: self.nodes.clone(), progress: self.progress };
        let record = |run: &mut ScenarioRun, name: &str, t: Instant, o: Outcome| {
            let (status, message, evidence) = match o {
                Outcome::Pass(m) => (Status::Passed, m, vec![]),
                Outcome::Fail(m, e) => (Status::Failed, m, e),
            };
            let p = PhaseResult { name: name.into(), status, seconds: t.elapsed().as_secs_f64(), message, evidence };
            (self.on_phase)(&p);
            if p.status == Status::Failed && run.status != Status::Failed {
                run.status = Status::Failed;
                run.reason = format!("{}: {}", p.name, p.message);
            }
            run.phases.push(p);
        };
        let t = Instant::now();
        let kube = match self.lab.kube() {
            Ok(k) => k,
            Err(e) => {
                record(&mut run, "preflight", t, Outcome::Fail(format!("the apiserver does not answer: {e}"), vec![]));
                return finish(run, started);
            }
        };
        let before = match snapshot::take(kube, self.lab.nodes.as_ref(), &node_names, plan).await {
            Ok(s) => s,
            Err(e) => {
                record(
                    &mut run,
                    "preflight",
                    t,
                    Outcome::Fail(format!("cannot take the starting snapshot: {e}"), vec![]),
                );
                return finish(run, started);
            }
        };
        let mut j = match Journal::open(&self.journal) {
            Ok(j) if j.is_clean() => j,
            Ok(_) => {
                record(
                    &mut run,
                    "preflight",
                    t,
                    Outcome::Fail("a drill is still injected in this lab; run `klab reset` first".into(), vec![]),
                );
                return finish(run, started);
            }
            Err(e) => {
                record(&mut run, "preflight", t, Outcome::Fail(e.to_string(), vec![]));
                return finish(run, started);
            }
        };
        record(
            &mut run,
            "preflight",
            t,
            Outcome::Pass(format!(
                "{preflight}; snapshot of {} objects and {} node values",
                before.objects.len(),
                before.nodes.len()
            )),
        );

        let mut injected_at: Option<jiff::Timestamp> = None;
        let main_phases: [(&str, Phase); 6] = [
            ("setup", Phase::Steps(&plan.setup)),
            ("baseline", Phase::Baseline),
            ("inject", Phase::Steps(&plan.faults)),
            ("broken", Phase::Broken),
            ("solve", Phase::Steps(&plan.solution)),
            ("fixed", Phase::Fixed),
        ];
        let mut stopped = false;
        for (name, phase) in main_phases {
            if stopped {
                (self.on_phase)(&skipped_phase(name));
                run.phases.push(skipped_phase(name));
                continue;
            }
            if name == "broken" {
                injected_at = Some(jiff::Timestamp::now());
            }
            let t = Instant::now();
            let work = self.phase(&inj, &mut j, plan, &phase, injected_at);
            let outcome = tokio::select! {
                r = tokio::time::timeout(self.phase_timeout, work) => match r {
                    Ok(o) => o,
                    Err(_) => Outcome::Fail(format!("timed out after {}", crate::scenario::duration::Duration(self.phase_timeout.as_millis() as u64)), vec![]),
                },
                _ = tokio::signal::ctrl_c() => {
                    run.interrupted = true;
                    Outcome::Fail("interrupted (Ctrl-C); resetting".into(), vec![])
                }
            };
            stopped = matches!(outcome, Outcome::Fail(..));
            record(&mut run, name, t, outcome);
        }

        // Reset always runs: whatever the journal holds is undone.
        let t = Instant::now();
        let reset = tokio::time::timeout(self.settle_timeout, inj.undo_pending(&mut j)).await;
        let reset_ok = match reset {
            Ok(Ok((n, failed))) if failed.is_empty() => {
                let _ = j.archive();
                record(&mut run, "reset", t, Outcome::Pass(format!("{n} change(s) undone")));
                true
            }
            Ok(Ok((_, failed))) => {
                record(
                    &mut run,
                    "reset",
                    t,
                    Outcome::Fail(
                        format!("{} change(s) could not be undone; `klab reset` retries", failed.len()),
                        failed,
                    ),
                );
                false
            }
            Ok(Err(e)) => {
                record(&mut run, "reset", t, Outcome::Fail(e.to_string(), vec![]));
                false
            }
            Err(_) => {
                record(
                    &mut run,
                    "reset",
                    t,
                    Outcome::Fail("timed out; `klab reset` continues where it stopped".into(), vec![]),
                );
                false
            }
        };
        if !reset_ok {
            (self.on_phase)(&skipped_phase("clean"));
            run.phases.push(skipped_phase("clean"));
            return finish(run, started);
        }
        let t = Instant::now();
        let outcome = self.clean(kube, &node_names, plan, &before).await;
        record(&mut run, "clean", t, outcome);
        finish(run, started)
    }

    async fn phase(
        &self,
        inj: &Injector<'_>,
        j: &mut Journal,
        plan: &Plan,
        phase: &Phase<'_>,
        since: Option<jiff::Timestamp>,
    ) -> Outcome {
        match phase {
            Phase::Steps(steps) => run_steps(inj, j, steps).await,
            Phase::Baseline => {
                let checks: Vec<PlannedCheck> =
                    plan.checks.iter().filter(|c| c.role != Role::AntiPattern).cloned().collect();
                // A cluster that has just run the setup may need a moment more (kube-proxy programs a
                // new Service's rules a little after its pods are Ready; much later on a loaded
                // machine): look again for a short while, never longer than the settle time.
                let limit = self.settle_timeout.min(BASELINE_SETTLE);
                let start = Instant::now();
                let mut results = engine::run_all(&inj.check_context(None), &checks).await;
                while results.iter().any(|r| !r.verdict.passed) && start.elapsed() < limit {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    results = engine::run_all(&inj.check_context(None), &checks).await;
                }
                let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.verdict.passed).collect();
                if failed.is_empty() {
                    let waited = start.elapsed().as_secs();
                    Outcome::Pass(if waited >= 3 {
                        format!("all {} user and cause checks pass before the fault (after {waited}s)", results.len())
                    } else {
                        format!("all {} user and cause checks pass before the fault", results.len())
                    })
                } else {
                    Outcome::Fail(
                        format!(
                            "{} check(s) fail before any fault, still after {}s of looking again: the drill's setup \
                             is broken or the lab differs",
                            failed.len(),
                            limit.as_secs()
                        ),
                        evidence(&failed),
                    )
                }
            }
            Phase::Broken => {
                // Look once: polling (`within`) is for recoveries, not for the broken state.
                let checks: Vec<PlannedCheck> = plan
                    .checks
                    .iter()
                    .filter(|c| c.role != Role::AntiPattern)
                    .map(|c| PlannedCheck { within: None, ..c.clone() })
                    .collect();
                let results = engine::run_all(&inj.check_context(since), &checks).await;
                let has_user = results.iter().any(|r| r.role == Role::User);
                let broken: Vec<&CheckResult> =
                    results.iter().filter(|r| !r.verdict.passed && (r.role == Role::User || !has_user)).collect();
                let still: Vec<String> = results
                    .iter()
                    .filter(|r| r.verdict.passed && r.role == Role::Cause)
                    .map(|r| r.id.clone())
                    .collect();
                if broken.is_empty() {
                    Outcome::Fail(
                        if has_user {
                            "every user-view check still passes: the fault breaks nothing the user sees".into()
                        } else {
                            "every check still passes: the fault breaks nothing".into()
                        },
                        results.iter().map(|r| format!("{}: {}", r.id, r.verdict.reason)).collect(),
                    )
                } else {
                    let mut m = format!(
                        "{} user-view check(s) fail: {}",
                        broken.len(),
                        broken.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ")
                    );
                    if !still.is_empty() {
                        m.push_str(&format!(" (cause checks that still pass: {})", still.join(", ")));
                    }
                    Outcome::Pass(m)
                }
            }
            Phase::Fixed => {
                let results = engine::run_all(&inj.check_context(since), &plan.checks).await;
                let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.verdict.passed).collect();
                if failed.is_empty() {
                    Outcome::Pass(format!("all {} checks pass, no anti-pattern fires", results.len()))
                } else {
                    let ap = failed.iter().filter(|r| r.role == Role::AntiPattern).count();
                    Outcome::Fail(
                        format!(
                            "the reference solution leaves {} check(s) failing{}",
                            failed.len(),
                            if ap > 0 { format!(" ({ap} anti-pattern)") } else { String::new() }
                        ),
                        evidence(&failed),
                    )
                }
            }
        }
    }

    /// Compares the cluster with the starting snapshot until they match or time is up.
    async fn clean(
        &self,
        kube: &crate::cluster::kube::Kube,
        node_names: &[String],
        plan: &Plan,
        before: &snapshot::Snapshot,
    ) -> Outcome {
        let start = Instant::now();
        loop {
            let last = match snapshot::take(kube, self.lab.nodes.as_ref(), node_names, plan).await {
                Ok(after) => {
                    let d = snapshot::diff(before, &after);
                    if d.is_empty() {
                        return Outcome::Pass(format!(
                            "{} objects and {} node values as before",
                            after.objects.len(),
                            after.nodes.len()
                        ));
                    }
                    d
                }
                Err(e) => vec![e],
            };
            if start.elapsed() > self.settle_timeout {
                return Outcome::Fail(format!("{} difference(s) remain after reset", last.len()), last);
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
}

enum Phase<'p> {
    Steps(&'p [PlannedStep]),
    Baseline,
    Broken,
    Fixed,
}

async fn run_steps(inj: &Injector<'_>, j: &mut Journal, steps: &[PlannedStep]) -> Outcome {
    let mut done = Vec::new();
    for st in steps {
        match inj.run_step(j, st).await {
            Ok(ev) => done.push(if ev.is_empty() { st.id.clone() } else { format!("{} ({ev})", st.id) }),
            Err(e) => return Outcome::Fail(format!("step `{}` failed: {e}", st.id), done),
        }
    }
    Outcome::Pass(format!(
        "{} step(s): {}",
        steps.len(),
        steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
    ))
}

fn evidence(failed: &[&CheckResult]) -> Vec<String> {
    failed
        .iter()
        .map(|r| {
            let mut s = format!("{} [{}]: {}", r.id, role_name(r.role), r.verdict.reason);
            for e in &r.verdict.evidence {
                s.push_str("\n    ");
                s.push_str(&e.replace('\n', "\n    "));
            }
            s
        })
        .collect()
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::Cause => "cause",
        Role::AntiPattern => "anti-pattern",
    }
}

fn skipped_phase(name: &str) -> PhaseResult {
    PhaseResult {
        name: name.into(),
        status: Status::Skipped,
        seconds: 0.0,
        message: "not run: an earlier phase failed".into(),
        evidence: vec![],
    }
}

fn finish(mut run: ScenarioRun, started: Instant) -> ScenarioRun {
    run.seconds = started.elapsed().as_secs_f64();
    run
}
