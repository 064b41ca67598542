//! The trainee's progress as `klab status` and `klab check` show it: the score so far with its
//! breakdown, and who fixed each cause. The rules live in `check::score` and
//! `check::attribution`; this module gathers their inputs (audit log, journal) and prints.

use super::output::{BOLD, DIM, GREEN, YELLOW, paint};
use crate::check::attribution::{self, Attribution, Case, FixedBy};
use crate::check::engine::{CheckContext, CheckResult};
use crate::check::score::{self, Score};
use crate::cluster::node;
use crate::cluster::nodeops::NodeOps;
use crate::scenario::catalog::Catalog;
use crate::scenario::kinds::Role;
use crate::scenario::plan::Plan;
use crate::session::journal::{Journal, Record};
use crate::session::record::Session;
use jiff::Timestamp;
use std::collections::HashMap;
use std::path::Path;

fn ts(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Reads the apiserver's audit log on the control-plane node (through node access, so it works
/// while the apiserver does not).
async fn read_audit_log(ctx: &CheckContext<'_>) -> Result<Vec<u8>, String> {
    let cp = node::select(ctx.node_list().await, "control-plane").map_err(|e| e.to_string())?;
    let name = &cp[0].name;
    let ops = NodeOps { access: ctx.nodes };
    match ops.read_file(name, &ctx.audit_log_path).await {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(format!("no audit log at {} on {name}", ctx.audit_log_path)),
        Err(e) => Err(e.to_string()),
    }
}

/// When `klab solve` applied solution steps (from the journal).
fn solve_times(journal_path: &Path) -> Vec<Timestamp> {
    let Ok(j) = Journal::open(journal_path) else { return vec![] };
    j.records
        .iter()
        .filter_map(|r| match r {
            Record::Intent { phase, at, .. } if phase == "solution" => ts(at),
            _ => None,
        })
        .collect()
}

/// For every cause check passing for the first time in this run: who fixed it. Reads the audit
/// log once, and only when there is something to attribute.
pub(crate) async fn attribute_first_passes(
    session: &Session,
    ctx: &CheckContext<'_>,
    plan: &Plan,
    results: &[CheckResult],
    journal_path: &Path,
) -> HashMap<String, Attribution> {
    let firsts: Vec<&CheckResult> =
        results.iter().filter(|r| r.role == Role::Cause && r.verdict.passed && !session.ever_passed(&r.id)).collect();
    let mut out = HashMap::new();
    if firsts.is_empty() {
        return out;
    }
    let to = Timestamp::now();
    let log = read_audit_log(ctx).await;
    let solves = solve_times(journal_path);
    let start = session.injected_at.as_deref().or(Some(session.started_at.as_str())).and_then(ts);
    for r in firsts {
        let last_fail = session
            .check_attempts
            .iter()
            .rev()
            .find(|a| a.results.iter().any(|o| o.id == r.id && !o.passed))
            .and_then(|a| ts(&a.at));
        let Some(from) = last_fail.or(start) else { continue };
        let planned = plan.checks.iter().find(|c| c.id == r.id);
        let case = Case {
            from,
            to,
            self_heals: planned.and_then(|c| c.self_heals.as_ref()),
            api_only: planned.is_some_and(|c| attribution::observes_only_api_objects(&c.spec)),
            solve_at: solves.iter().copied().find(|t| *t > from && *t <= to),
            writes: log.as_ref().map(|b| attribution::writes_in(b, from, to)).map_err(Clone::clone),
        };
        out.insert(r.id.clone(), attribution::attribute(&case));
    }
    out
}

fn clock(at: &str) -> String {
    ts(at).map(|t| t.strftime("%H:%M:%S").to_string()).unwrap_or_else(|| at.to_string())
}

/// Prints who fixed each cause: all of them (`only_run: None`), or those first passed in the run
/// recorded at `only_run`.
pub(crate) fn print_attributions(s: &Session, only_run: Option<&str>) {
    let list: Vec<_> = s.attributions().into_iter().filter(|(_, at, _)| only_run.is_none_or(|r| r == *at)).collect();
    if list.is_empty() {
        return;
    }
    anstream::println!("{}", paint(BOLD, "Who fixed what"));
    for (id, at, a) in list {
        let style = match a.by {
            FixedBy::You | FixedBy::Solve => GREEN,
            FixedBy::Cluster => YELLOW,
            FixedBy::CantTell => DIM,
        };
        anstream::println!("  cause check {id} (first passed {}): {}", clock(at), paint(style, &a.verdict));
        anstream::println!("       {}", paint(DIM, &a.why));
        for e in &a.evidence {
            anstream::println!("       {}", paint(DIM, e));
        }
    }
}

pub(crate) fn attributions_json(s: &Session) -> serde_json::Value {
    serde_json::Value::Array(
        s.attributions()
            .into_iter()
            .map(|(id, at, a)| serde_json::json!({"check": id, "firstPass": at, "attribution": a}))
            .collect(),
    )
}

fn score_of(s: &Session, cat: &Catalog) -> Option<Score> {
    let e = cat.scenario(&s.scenario)?;
    Some(score::score(&score::input_of(s, &e.item, Timestamp::now())))
}

/// One line after a fixed `klab check`.
pub(crate) fn print_score_line(s: &Session, cat: &Catalog) {
    if let Some(sc) = score_of(s, cat) {
        anstream::println!(
            "Score: {}/{} (`klab status` shows the breakdown; `klab diagnose` if you have not named the causes)",
            sc.points,
            sc.max
        );
    }
}

/// The score so far with its breakdown, the diagnoses and who fixed what (`klab status`).
pub(crate) fn print_status(s: &Session, cat: &Catalog) {
    let Some(sc) = score_of(s, cat) else { return };
    let when = if s.gave_up {
        "final: gave up"
    } else if sc.provisional {
        "so far; final once `klab check` finds the cluster fixed"
    } else {
        "final"
    };
    anstream::println!("score {} ({when})", paint(BOLD, format!("{}/{}", sc.points, sc.max)));
    let w = sc.items.iter().map(|i| i.rule.len()).max().unwrap_or(0);
    for i in &sc.items {
        let line = format!("  {:>4}  {:<w$}  {}", format!("−{}", i.minus), i.rule, i.detail);
        anstream::println!("{}", if i.minus == 0 { paint(DIM, line) } else { line });
    }
    if let Some(e) = cat.scenario(&s.scenario)
        && let Some(last) = s.diagnoses.last()
    {
        let named: Vec<String> = last.causes.clone();
        if let Ok(g) = crate::check::diagnosis::grade(&e.item.diagnosis, &named) {
            anstream::println!(
                "diagnoses: {} (last: {} of {} causes found{})",
                s.diagnoses.len(),
                g.found.len(),
                g.causes_total,
                if g.wrongly_blamed.is_empty() {
                    String::new()
                } else {
                    format!(", {} red herring(s) blamed", g.wrongly_blamed.len())
                }
            );
        }
    }
    for (i, d) in s.diagnoses.iter().enumerate().filter(|(_, d)| !d.notes.trim().is_empty()) {
        anstream::println!("  note {}: {}", i + 1, d.notes.trim());
    }
    print_attributions(s, None);
}

/// The score and attributions for `klab status -o json`.
pub(crate) fn status_json(s: Option<&Session>, cat: &Catalog) -> serde_json::Value {
    match s {
        None => serde_json::Value::Null,
        Some(s) => serde_json::json!({
            "score": score_of(s, cat),
            "firstPass": s.first_pass(),
            "attributions": attributions_json(s),
        }),
    }
}
