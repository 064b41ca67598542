//! What a trainee does during a drill besides checking: take hints, give up.

use super::args::Global;
use super::labcmd::{lab_dir, lab_failure, plan_for, state_failure, target};
use super::output::{BOLD, DIM, GREEN, paint};
use super::{Failure, Outcome, find_scenario};
use crate::cluster::lab::Lab;
use crate::exit;
use crate::fault::Injector;
use crate::scenario::catalog::Catalog;
use crate::session::journal::{self, Journal};
use crate::session::record::{HintTaken, Session};
use crate::session::state::{LabLock, read_json, write_json};

pub(crate) fn session(g: &Global) -> Result<Session, Failure> {
    read_json(&lab_dir(g).session_file()).map_err(state_failure)?.ok_or_else(|| {
        Failure::new(exit::NOT_READY, format!("no drill is running in lab `{}`", g.lab))
            .help("start one with `klab drill <id>`")
    })
}

pub fn hint(g: &Global, cat: &Catalog) -> Outcome {
    let mut s = session(g)?;
    let e = find_scenario(cat, &s.scenario)?;
    let next = s.hints_taken.len();
    super::gameday::hints_left(g, next)?;
    let Some(h) = e.item.hints.get(next) else {
        anstream::println!(
            "No more hints: you have seen all {}. `klab solve` gives up and shows the solution.",
            e.item.hints.len()
        );
        return Ok(exit::OK);
    };
    s.hints_taken.push(HintTaken { index: next, cost: h.cost, at: journal::now() });
    write_json(&lab_dir(g).session_file(), &s).map_err(state_failure)?;
    anstream::println!(
        "{} {}",
        paint(BOLD, format!("Hint {}/{} (−{} points):", next + 1, e.item.hints.len(), h.cost)),
        h.text.trim()
    );
    Ok(exit::OK)
}

pub fn solve(g: &Global, cat: &Catalog) -> Outcome {
    let mut s = session(g)?;
    let e = find_scenario(cat, &s.scenario)?;
    let dir = lab_dir(g);
    let rt = super::runtime()?;
    rt.block_on(async {
        let _lock = LabLock::acquire(&dir, &g.lab).map_err(state_failure)?;
        let lab = Lab::open(&target(g), &dir, false).await.map_err(lab_failure)?;
        let plan = plan_for(cat, &lab, &s.scenario, &s.set, s.variant.as_deref()).await?;
        let nodes = lab.nodes.nodes().await.unwrap_or_default();
        let progress = |l: &str| anstream::eprintln!("{l}");
        let inj = Injector { lab: &lab, nodes, progress: &progress };
        let mut j = Journal::open(&dir.journal_file()).map_err(state_failure)?;
        anstream::eprintln!("{} applying the reference solution", paint(BOLD, "→"));
        for st in &plan.solution {
            let ev = inj
                .run_step(&mut j, st)
                .await
                .map_err(|err| Failure::new(exit::CLUSTER, err.to_string()).help("the lab may need `klab reset`"))?;
            anstream::eprintln!("  {} {} {}", paint(GREEN, "✓"), st.id, paint(DIM, ev));
        }
        Ok::<(), Failure>(())
    })?;
    s.gave_up = true;
    write_json(&dir.session_file(), &s).map_err(state_failure)?;
    anstream::println!();
    anstream::println!("{}", paint(BOLD, "Debrief"));
    for c in &e.item.diagnosis.causes {
        anstream::println!(
            "  cause: {}{}",
            c.summary,
            if c.explanation.is_empty() { String::new() } else { format!(" — {}", c.explanation.trim()) }
        );
    }
    for r in &e.item.diagnosis.red_herrings {
        anstream::println!(
            "  red herring: {}{}",
            r.summary,
            if r.explanation.is_empty() { String::new() } else { format!(" — {}", r.explanation.trim()) }
        );
    }
    let notes: Vec<&str> = s.diagnoses.iter().map(|d| d.notes.trim()).filter(|n| !n.is_empty()).collect();
    if !notes.is_empty() {
        anstream::println!("  your notes:");
        for n in notes {
            anstream::println!("    - {n}");
        }
    }
    anstream::println!();
    for l in e.item.debrief.trim_end().lines() {
        anstream::println!("  {l}");
    }
    for r in &e.item.references {
        anstream::println!("  - {}: {}", r.title, r.url);
    }
    anstream::println!(
        "\nScore for this drill: 0 (solved by klab). `klab check` confirms the fix; `klab reset` restores the lab."
    );
    Ok(exit::OK)
}
