//! `klab show`: the briefing a trainee gets, and with `--spoilers` everything an author needs.

use super::args::{Global, OutputFormat, ShowArgs};
use super::output::{self, BOLD, DIM, paint};
use super::{Outcome, find_scenario};
use crate::exit;
use crate::scenario::catalog::Catalog;
use crate::scenario::model::Scenario;
use serde::Serialize;

#[derive(Serialize)]
pub struct Briefing<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub difficulty: &'a str,
    pub tags: &'a [String],
    pub time_limit: String,
    pub story: &'a str,
    pub symptoms: &'a [String],
    pub nodes: u8,
    pub hints_available: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limitations: Option<&'a str>,
}

impl<'a> Briefing<'a> {
    pub fn of(s: &'a Scenario) -> Self {
        let m = &s.metadata;
        Briefing {
            id: &m.id.value,
            title: &m.title,
            difficulty: m.difficulty.as_str(),
            tags: &m.tags,
            time_limit: m.time_limit.to_string(),
            story: &s.story,
            symptoms: &s.symptoms,
            nodes: s.profile.nodes,
            hints_available: s.hints.len(),
            limitations: m.limitations.as_deref(),
        }
    }

    pub fn print(&self) {
        anstream::println!(
            "{} {}",
            paint(BOLD, self.title),
            paint(DIM, format!("({}, {}, time limit {})", self.id, self.difficulty, self.time_limit))
        );
        anstream::println!();
        for l in self.story.trim_end().lines() {
            anstream::println!("  {l}");
        }
        if !self.symptoms.is_empty() {
            anstream::println!();
            anstream::println!("{}", paint(BOLD, "What you can see:"));
            for s in self.symptoms {
                anstream::println!("  - {s}");
            }
        }
        anstream::println!();
        anstream::println!(
            "{}",
            paint(
                DIM,
                format!("tags: {} · {} hint(s) available with `klab hint`", self.tags.join(", "), self.hints_available)
            )
        );
        if let Some(l) = self.limitations {
            anstream::println!("{}", paint(DIM, format!("note: {l}")));
        }
    }
}

pub fn run(g: &Global, cat: &Catalog, a: &ShowArgs) -> Outcome {
    let e = find_scenario(cat, &a.id)?;
    let s = &e.item;
    if g.output == OutputFormat::Json {
        if a.spoilers {
            output::print_json(s)?;
        } else {
            output::print_json(&Briefing::of(s))?;
        }
        return Ok(exit::OK);
    }
    Briefing::of(s).print();
    if a.spoilers {
        anstream::println!();
        anstream::println!("{}", paint(output::RED, "SPOILERS"));
        anstream::println!("{}", paint(BOLD, "Faults:"));
        for f in &s.faults {
            anstream::println!(
                "  - {} ({}){}",
                f.id.value,
                f.action.kind(),
                f.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            );
        }
        anstream::println!("{}", paint(BOLD, "Causes:"));
        for c in &s.diagnosis.causes {
            anstream::println!(
                "  - {}: {} [faults: {}]",
                c.id.value,
                c.summary,
                c.faults.iter().map(|f| f.value.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        anstream::println!("{}", paint(BOLD, "Red herrings:"));
        for r in &s.diagnosis.red_herrings {
            anstream::println!("  - {}: {}", r.id.value, r.summary);
        }
        anstream::println!("{}", paint(BOLD, "Hints:"));
        for (i, h) in s.hints.iter().enumerate() {
            anstream::println!("  {}. ({} points) {}", i + 1, h.cost, h.text.trim());
        }
        anstream::println!("{}", paint(BOLD, "Solution:"));
        for st in &s.solution {
            anstream::println!(
                "  - {} ({}){}",
                st.id.value,
                st.action.kind(),
                st.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            );
        }
        anstream::println!("{}", paint(BOLD, "Debrief:"));
        for l in s.debrief.trim_end().lines() {
            anstream::println!("  {l}");
        }
    }
    Ok(exit::OK)
}
