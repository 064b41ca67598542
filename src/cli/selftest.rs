//! `klab selftest`: the lab, the preflight per drill, live progress, the summary table, JSON
//! and JUnit. The state machine itself is `crate::selftest`.

use super::args::{Global, OutputFormat, SelftestArgs};
use super::labcmd::{ensure_lab, ensured_lab_failure, lab_dir, lab_failure, plan_for, state_failure, target};
use super::output::{self, BOLD, DIM, GREEN, RED, YELLOW, paint};
use super::{Failure, Outcome};
use crate::cluster::lab::{Kind, Lab};
use crate::exit;
use crate::report::junit;
use crate::scenario::catalog::Catalog;
use crate::selftest::preflight::{self, Facts};
use crate::selftest::{PhaseResult, Runner, ScenarioRun, Status};
use crate::session::state::{LabLock, LabRecord, read_json};

fn say(line: &str) {
    anstream::eprintln!("{line}");
}

/// The drills to prove: named ones, else the user's folders', else the built-in ones.
fn selection(g: &Global, cat: &Catalog, a: &SelftestArgs) -> Result<Vec<String>, Failure> {
    let mut ids: Vec<String> = if !a.ids.is_empty() {
        for id in &a.ids {
            super::find_scenario(cat, id)?;
        }
        a.ids.clone()
    } else if !g.catalog.is_empty() {
        cat.scenarios.iter().filter(|(_, e)| !e.source.origin.is_builtin()).map(|(id, _)| id.clone()).collect()
    } else {
        cat.scenarios.keys().cloned().collect()
    };
    ids.retain(|id| !a.exclude.contains(id));
    if ids.is_empty() {
        return Err(Failure::new(exit::USAGE, "no drill to prove").help("name drills, or give --catalog DIR with some"));
    }
    Ok(ids)
}

pub fn run(g: &Global, cat: &Catalog, a: &SelftestArgs) -> Outcome {
    let ids = selection(g, cat, a)?;
    for d in &cat.diagnostics {
        if ids.iter().any(|id| d.file.contains(id.as_str())) {
            say(&d.to_string());
        }
    }
    let rt = super::runtime()?;
    let (runs, tier, facts) = rt.block_on(prove(g, cat, a, &ids))?;
    let failed = runs.iter().filter(|r| r.status == Status::Failed).count();
    let passed = runs.iter().filter(|r| r.status == Status::Passed).count();
    let skipped = runs.iter().filter(|r| r.status == Status::Skipped).count();
    if let Some(path) = &a.junit {
        std::fs::write(path, junit::render(&suites(&runs)))
            .map_err(|e| Failure::new(exit::FAILED, format!("cannot write {}: {e}", path.display())))?;
    }
    if g.output == OutputFormat::Json {
        output::print_json(&serde_json::json!({
            "lab": g.lab, "tier": tier, "facts": facts,
            "passed": passed, "failed": failed, "skipped": skipped, "scenarios": runs,
        }))?;
    } else {
        print_table(&runs, &tier);
        anstream::println!(
            "\n{}, {}, {} (tier: {tier})",
            paint(GREEN, format!("{passed} passed")),
            paint(if failed > 0 { RED } else { DIM }, format!("{failed} failed")),
            paint(if skipped > 0 { YELLOW } else { DIM }, format!("{skipped} skipped")),
        );
    }
    Ok(if runs.iter().any(|r| r.interrupted) {
        exit::INTERRUPTED
    } else if failed > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

async fn prove(
    g: &Global,
    cat: &Catalog,
    a: &SelftestArgs,
    ids: &[String],
) -> Result<(Vec<ScenarioRun>, String, Option<Facts>), Failure> {
    let kind = Kind::default();
    let tier = kind.version().await.map_err(lab_failure)?;
    let needed = ids.iter().filter_map(|id| cat.scenario(id)).map(|e| e.item.profile.nodes).max().unwrap_or(1);
    let wants_np = ids.iter().filter_map(|id| cat.scenario(id)).any(|e| e.item.profile.network_policy);
    if !a.fresh {
        ensure_lab(g, needed).await?;
    }
    let dir = lab_dir(g);
    let mut runs = Vec::new();
    let mut facts: Option<Facts> = None;
    let mut stop: Option<String> = None;
    for id in ids {
        let e = super::find_scenario(cat, id)?;
        if let Some(why) = &stop {
            runs.push(ScenarioRun::skipped(id, &e.item.metadata.title, why.clone()));
            continue;
        }
        say(&format!("{} {id} — {}", paint(BOLD, "▶"), e.item.metadata.title));
        if a.fresh {
            fresh_lab(g, e.item.profile.nodes).await?;
            facts = None;
        }
        let _lock = LabLock::acquire(&dir, &g.lab).map_err(state_failure)?;
        let lab = Lab::open(&target(g), &dir, true).await.map_err(ensured_lab_failure)?;
        let nodes = lab.nodes.nodes().await.map_err(|e| Failure::new(exit::CLUSTER, e.to_string()))?;
        let node_names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let kube = lab.kube().map_err(|e| Failure::new(exit::CLUSTER, e.to_string()))?;
        if facts.is_none() {
            let late = preflight::wait_nodes_ready(kube, a.settle.as_std(), &say).await;
            if !late.is_empty() {
                say(&format!("  {} not Ready: {}", paint(YELLOW, "!"), late.join(", ")));
            }
            let mut f = preflight::facts(kube, lab.nodes.as_ref(), &node_names).await;
            if wants_np {
                f.network_policy = Some(preflight::probe_network_policy(kube, &a.probe_image, &say).await);
            }
            say(&format!("  {}", paint(DIM, describe_facts(&f))));
            facts = Some(f);
        }
        let f = facts.as_ref().expect("facts were just read");
        if let Some(why) = f.cannot_carry(&e.item.profile) {
            let r = ScenarioRun::skipped(id, &e.item.metadata.title, format!("the lab cannot carry it: {why}"));
            say(&format!("  {} {}", paint(YELLOW, "skipped"), r.reason));
            runs.push(r);
            continue;
        }
        let plan = match plan_for(cat, &lab, id, &[], None).await {
            Ok(p) => p,
            Err(f) if f.message.contains("no variant") => {
                let r = ScenarioRun::skipped(id, &e.item.metadata.title, f.message);
                say(&format!("  {} {}", paint(YELLOW, "skipped"), r.reason));
                runs.push(r);
                continue;
            }
            Err(f) => return Err(f),
        };
        let mut pre = format!("{} node(s), server {}", f.nodes, f.server_version);
        if let Some(v) = &plan.variant {
            pre.push_str(&format!(", variant {v} ({})", plan.variant_reason.clone().unwrap_or_default()));
            say(&format!("  variant {v} ({})", plan.variant_reason.clone().unwrap_or_default()));
        }
        let progress = |l: &str| say(&format!("  {}", paint(DIM, l.trim_start())));
        let on_phase = |p: &PhaseResult| print_phase(p);
        let runner = Runner {
            lab: &lab,
            nodes,
            journal: dir.journal_file(),
            phase_timeout: a.timeout.as_std(),
            settle_timeout: a.settle.as_std(),
            progress: &progress,
            on_phase: &on_phase,
        };
        let r = runner.run(&plan, pre).await;
        if r.interrupted {
            stop = Some("not run: interrupted".into());
        } else if r.status == Status::Failed && !a.keep_going {
            stop = Some(format!("not run: `{id}` failed (--keep-going goes on after a failure)"));
        }
        runs.push(r);
    }
    Ok((runs, tier, facts))
}

/// `--fresh`: the lab is recreated for each drill with the drill's node count.
async fn fresh_lab(g: &Global, nodes: u8) -> Result<(), Failure> {
    let kind = Kind::default();
    if kind.clusters().await.map_err(lab_failure)?.iter().any(|c| c == &g.lab) {
        let rec: Option<LabRecord> = read_json(&lab_dir(g).lab_file()).map_err(state_failure)?;
        if rec.is_none() {
            return Err(Failure::new(
                exit::REFUSED,
                format!("kind cluster `{}` was not created by klab; --fresh will not delete it", g.lab),
            ));
        }
        say(&format!("  → recreating lab `{}` with {nodes} node(s)", g.lab));
        kind.delete(&g.lab, g.kubeconfig.as_deref()).await.map_err(lab_failure)?;
        let _ = std::fs::remove_file(lab_dir(g).lab_file());
    }
    ensure_lab(g, nodes).await.map(|_| ())
}

fn describe_facts(f: &Facts) -> String {
    let yn = |r: &Result<bool, String>| match r {
        Ok(true) => "yes".to_string(),
        Ok(false) => "no".to_string(),
        Err(e) => format!("unknown ({e})"),
    };
    let mut s = format!(
        "lab: {} node(s), server {}, audit log {}, cluster DNS {}",
        f.nodes,
        f.server_version,
        yn(&f.audit_log),
        yn(&f.dns)
    );
    if let Some(np) = &f.network_policy {
        s.push_str(&format!(", NetworkPolicy enforced {}", yn(np)));
    }
    s
}

fn print_phase(p: &PhaseResult) {
    let mark = match p.status {
        Status::Passed => paint(GREEN, "✓"),
        Status::Failed => paint(RED, "✗"),
        Status::Skipped => paint(DIM, "-"),
    };
    say(&format!("  {mark} {:<9} {} {}", p.name, paint(DIM, format!("{:>6.1}s", p.seconds)), p.message));
    if p.status == Status::Failed {
        for e in &p.evidence {
            for l in e.lines() {
                say(&format!("      {}", paint(DIM, l)));
            }
        }
    }
}

fn print_table(runs: &[ScenarioRun], tier: &str) {
    anstream::println!();
    anstream::println!("{}", paint(BOLD, format!("selftest on {tier}")));
    let w = runs.iter().map(|r| r.id.len()).max().unwrap_or(8).max(8);
    anstream::println!("{:<w$}  {:<8}  {:<8}  {:>7}  DETAIL", "DRILL", "VARIANT", "RESULT", "TIME");
    for r in runs {
        let res = match r.status {
            Status::Passed => paint(GREEN, "passed  "),
            Status::Failed => paint(RED, "FAILED  "),
            Status::Skipped => paint(YELLOW, "skipped "),
        };
        let detail = match r.status {
            Status::Passed => {
                r.phases.iter().map(|p| format!("{} {:.0}s", p.name, p.seconds)).collect::<Vec<_>>().join(" · ")
            }
            _ => r.reason.clone(),
        };
        anstream::println!(
            "{:<w$}  {:<8}  {res}  {:>6.0}s  {detail}",
            r.id,
            r.variant.as_deref().unwrap_or("-"),
            r.seconds
        );
    }
}

/// A testsuite per drill, a testcase per phase; a skipped drill is one skipped testcase.
pub fn suites(runs: &[ScenarioRun]) -> Vec<junit::Suite> {
    runs.iter()
        .map(|r| junit::Suite {
            name: match &r.variant {
                Some(v) => format!("{} ({v})", r.id),
                None => r.id.clone(),
            },
            cases: r
                .phases
                .iter()
                .map(|p| junit::Case {
                    name: p.name.clone(),
                    classname: format!("klab.selftest.{}", r.id),
                    seconds: p.seconds,
                    failure: (p.status == Status::Failed).then(|| (p.message.clone(), p.evidence.join("\n"))),
                    skipped: (p.status == Status::Skipped).then(|| p.message.clone()),
                })
                .collect(),
        })
        .collect()
}
