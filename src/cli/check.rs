//! `klab check`: all of the drill's checks, concurrently, with their evidence.

use super::args::{CheckArgs, Global, OutputFormat};
use super::labcmd::{lab_dir, lab_failure, plan_for, state_failure, target};
use super::output::{self, DIM, GREEN, RED, YELLOW, paint};
use super::{Failure, Outcome};
use crate::check::engine::{self, CheckContext, NodeList};
use crate::cluster::lab::Lab;
use crate::exit;
use crate::fault::AUDIT_LOG_PATH;
use crate::report::junit;
use crate::scenario::catalog::Catalog;
use crate::scenario::kinds::Role;
use crate::session::journal;
use crate::session::record::{CheckAttempt, CheckOutcome, Session};
use crate::session::state::{read_json, write_json};

pub fn run(g: &Global, a: &CheckArgs) -> Outcome {
    let dir = lab_dir(g);
    if a.final_run {
        super::gameday::allow_final_run(g)?;
    }
    let mut session: Session = read_json(&dir.session_file()).map_err(state_failure)?.ok_or_else(|| {
        Failure::new(exit::NOT_READY, format!("no drill is running in lab `{}`", g.lab))
            .help("start one with `klab drill <id>`")
    })?;
    let cat = &Catalog::load_for_drill(&g.catalog, &session.scenario);
    let rt = super::runtime()?;
    let (results, mut attributions) = rt.block_on(async {
        let lab = Lab::open(&target(g), &dir, false).await.map_err(lab_failure)?;
        if lab.record.cluster_uid != session.cluster_uid && !session.cluster_uid.is_empty() {
            return Err(Failure::new(exit::REFUSED, "the lab is not the cluster the drill was started on"));
        }
        let plan = match plan_for(cat, &lab, &session.scenario, &session.set, session.variant.as_deref()).await {
            Ok(p) => p,
            Err(f) => return Err(f),
        };
        let ctx = CheckContext {
            kube: lab.kube(),
            nodes: lab.nodes.as_ref(),
            node_list: NodeList::lazy(),
            since: session.injected_at.as_deref().and_then(|t| t.parse().ok()),
            audit_log_path: AUDIT_LOG_PATH.into(),
        };
        let results = engine::run_all(&ctx, &plan.checks).await;
        let attributions =
            super::scorecard::attribute_first_passes(&session, &ctx, &plan, &results, &dir.journal_file()).await;
        Ok((results, attributions))
    })?;
    let fixed = results.iter().filter(|r| r.role != Role::AntiPattern).all(|r| r.verdict.passed);
    session.check_attempts.push(CheckAttempt {
        at: journal::now(),
        passed: fixed,
        final_run: a.final_run,
        results: results
            .iter()
            .map(|r| CheckOutcome {
                id: r.id.clone(),
                role: r.role,
                passed: r.verdict.passed,
                reason: r.verdict.reason.clone(),
                first_pass: r.verdict.passed && !session.ever_passed(&r.id),
                attribution: attributions.remove(&r.id),
            })
            .collect(),
    });
    if fixed && session.fixed_at.is_none() {
        session.fixed_at = Some(journal::now());
    }
    write_json(&dir.session_file(), &session).map_err(state_failure)?;
    if let Some(path) = &a.junit {
        let suite = junit::Suite {
            name: session.scenario.clone(),
            cases: results
                .iter()
                .map(|r| junit::Case {
                    name: r.id.clone(),
                    classname: format!("klab.check.{}", role_name(r.role)),
                    seconds: r.millis as f64 / 1000.0,
                    failure: (!r.verdict.passed).then(|| (r.verdict.reason.clone(), r.verdict.evidence.join("\n"))),
                    skipped: None,
                })
                .collect(),
        };
        std::fs::write(path, junit::render(&[suite]))
            .map_err(|e| Failure::new(exit::FAILED, format!("cannot write {}: {e}", path.display())))?;
    }
    if g.output == OutputFormat::Json {
        output::print_json(&serde_json::json!({"scenario": session.scenario, "fixed": fixed, "results": results,
            "attributions": super::scorecard::attributions_json(&session)}))?;
    } else {
        for r in &results {
            let mark = match (r.verdict.passed, r.role) {
                (true, _) => paint(GREEN, "PASS"),
                (false, Role::AntiPattern) => paint(YELLOW, "WARN"),
                (false, _) => paint(RED, "FAIL"),
            };
            anstream::println!("{mark} [{}] {} — {}", role_name(r.role), r.description, r.verdict.reason);
            if !r.verdict.passed {
                for e in &r.verdict.evidence {
                    for l in e.lines() {
                        anstream::println!("       {}", paint(DIM, l));
                    }
                }
            }
        }
        anstream::println!();
        if fixed {
            anstream::println!(
                "{}",
                paint(GREEN, "The cluster works again. `klab reset` restores the lab when you are done.")
            );
            super::scorecard::print_attributions(&session, None);
            super::scorecard::print_score_line(&session, cat);
        } else {
            anstream::println!("{}", paint(RED, "Not fixed yet."));
            let now = session.check_attempts.last().map(|a| a.at.as_str());
            super::scorecard::print_attributions(&session, now);
        }
    }
    Ok(if fixed { exit::OK } else { exit::FAILED })
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::Cause => "cause",
        Role::AntiPattern => "anti-pattern",
    }
}
