//! `klab diagnose`: the trainee names the causes they found, from the drill's causes mixed with
//! its red herrings (which is which is not shown), and learns how many causes they found — never
//! which ones they missed, unless they gave up.

use super::args::{DiagnoseArgs, Global, OutputFormat};
use super::labcmd::{lab_dir, state_failure};
use super::output::{self, BOLD, GREEN, RED, YELLOW, paint};
use super::{Failure, Outcome, find_scenario};
use crate::check::diagnosis::{self, Candidate, Grade, UnknownIds};
use crate::exit;
use crate::scenario::catalog::Catalog;
use crate::session::journal;
use crate::session::record::DiagnosisAttempt;
use crate::session::state::write_json;
use std::io::{BufRead, IsTerminal, Write};

pub fn run(g: &Global, cat: &Catalog, a: &DiagnoseArgs) -> Outcome {
    let mut s = super::trainee::session(g)?;
    let e = find_scenario(cat, &s.scenario)?;
    let d = &e.item.diagnosis;
    let cands = diagnosis::candidates(d, diagnosis::session_seed(&s.started_at, &s.scenario));
    let (named, note) = if !a.causes.is_empty() {
        (a.causes.clone(), a.note.clone().unwrap_or_default())
    } else if std::io::stdin().is_terminal() {
        let mut input = std::io::stdin().lock();
        let mut err = std::io::stderr();
        let picked = pick(&mut input, &mut err, &cands)?;
        let note = match &a.note {
            Some(n) => n.clone(),
            None => ask_note(&mut input, &mut err),
        };
        (picked, note)
    } else {
        print_candidates(g, &cands)?;
        return Err(Failure::new(exit::USAGE, "no terminal to pick from: name the causes you blame with --cause ID")
            .help("e.g. `klab diagnose --cause <id> --cause <id>`; the candidates are listed above"));
    };
    let grade = diagnosis::grade(d, &named).map_err(|UnknownIds(ids)| {
        Failure::new(exit::USAGE, format!("unknown cause id(s): {}", ids.join(", ")))
            .help(format!("the candidates are: {}", cands.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")))
    })?;
    let mut causes: Vec<String> = Vec::new();
    for n in named {
        if !causes.contains(&n) {
            causes.push(n);
        }
    }
    s.diagnoses.push(DiagnosisAttempt { at: journal::now(), causes, notes: note.clone() });
    write_json(&lab_dir(g).session_file(), &s).map_err(state_failure)?;
    let summary = |id: &str| cands.iter().find(|c| c.id == id).map(|c| c.summary.clone()).unwrap_or_default();
    let listed = |ids: &[String]| -> Vec<Candidate> {
        ids.iter().map(|id| Candidate { id: id.clone(), summary: summary(id) }).collect()
    };
    let attempt = s.diagnoses.len();
    if g.output == OutputFormat::Json {
        let mut v = serde_json::json!({
            "scenario": s.scenario,
            "attempt": attempt,
            "causesFound": grade.found.len(),
            "causesTotal": grade.causes_total,
            "credit": grade.credit(),
            "complete": grade.complete(),
            "found": listed(&grade.found),
            "wronglyBlamed": listed(&grade.wrongly_blamed),
            "note": note,
        });
        if s.gave_up {
            v["missed"] = serde_json::to_value(listed(&grade.missed)).unwrap_or_default();
        }
        output::print_json(&v)?;
    } else {
        print_grade(&grade, attempt, s.gave_up, &summary);
    }
    Ok(if grade.complete() { exit::OK } else { exit::FAILED })
}

fn print_grade(grade: &Grade, attempt: usize, gave_up: bool, summary: &dyn Fn(&str) -> String) {
    let head = format!("Diagnosis {attempt}: {} of {} causes found", grade.found.len(), grade.causes_total);
    anstream::println!("{}", paint(BOLD, head));
    for id in &grade.found {
        anstream::println!("  {} {id} — {}", paint(GREEN, "found"), summary(id));
    }
    for id in &grade.wrongly_blamed {
        anstream::println!("  {} {id} — {} (a red herring)", paint(RED, "wrongly blamed"), summary(id));
    }
    if gave_up {
        for id in &grade.missed {
            anstream::println!("  {} {id} — {}", paint(YELLOW, "missed"), summary(id));
        }
    }
    anstream::println!();
    if grade.complete() {
        anstream::println!("{}", paint(GREEN, "Every cause found, no red herring blamed."));
    } else if !grade.missed.is_empty() && !gave_up {
        let n = grade.missed.len();
        anstream::println!(
            "{}",
            paint(
                YELLOW,
                format!(
                    "{n} cause{} still missing: keep looking (`klab hint` if stuck), then `klab diagnose` again.",
                    if n == 1 { " is" } else { "s are" }
                )
            )
        );
    } else if !grade.wrongly_blamed.is_empty() {
        anstream::println!("{}", paint(YELLOW, "Drop the red herrings: what rules them out?"));
    }
}

fn print_candidates(g: &Global, cands: &[Candidate]) -> Result<(), Failure> {
    if g.output == OutputFormat::Json {
        return output::print_json(&serde_json::json!({"candidates": cands}));
    }
    anstream::println!("Candidate causes (some are red herrings); blame them with --cause ID, repeatable:");
    let w = cands.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in cands {
        anstream::println!("  {:<w$}  {}", c.id, c.summary);
    }
    Ok(())
}

/// The numbered picker: the list on `out`, a line of numbers from `input`; asks again after a
/// line it cannot read, until the input ends.
pub(crate) fn pick(input: &mut dyn BufRead, out: &mut dyn Write, cands: &[Candidate]) -> Result<Vec<String>, Failure> {
    let _ = writeln!(out, "Which of these caused the incident? Pick every cause you found; some are red herrings.");
    for (i, c) in cands.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}", i + 1, c.summary);
    }
    loop {
        let _ = write!(out, "Your diagnosis (numbers, e.g. `1 3`): ");
        let _ = out.flush();
        let mut line = String::new();
        let n = input
            .read_line(&mut line)
            .map_err(|e| Failure::new(exit::FAILED, format!("cannot read the answer: {e}")))?;
        if n == 0 {
            return Err(Failure::new(exit::USAGE, "no diagnosis given").help("or name the causes with --cause ID"));
        }
        match diagnosis::parse_picks(&line, cands.len()) {
            Ok(idx) => return Ok(idx.into_iter().map(|i| cands[i].id.clone()).collect()),
            Err(m) => {
                let _ = writeln!(out, "{m}");
            }
        }
    }
}

fn ask_note(input: &mut dyn BufRead, out: &mut dyn Write) -> String {
    let _ = write!(out, "What did you see that points there? (for the debrief; Enter to skip): ");
    let _ = out.flush();
    let mut line = String::new();
    let _ = input.read_line(&mut line);
    line.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands() -> Vec<Candidate> {
        ["x-one", "x-two", "x-three"]
            .iter()
            .zip(["The disk is full.", "DNS is down.", "A policy blocks egress."])
            .map(|(id, s)| Candidate { id: id.to_string(), summary: s.to_string() })
            .collect()
    }

    #[test]
    fn the_picker_lists_summaries_only_and_asks_again_after_a_bad_line() {
        let mut input = std::io::Cursor::new(b"7\nthree\n3 1\n".to_vec());
        let mut out = Vec::new();
        let got = pick(&mut input, &mut out, &cands()).unwrap();
        assert_eq!(got, vec!["x-three".to_string(), "x-one".to_string()]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(" 1. The disk is full.") && text.contains(" 3. A policy blocks egress."), "{text}");
        assert!(!text.contains("x-"), "no ids (they may say what they are): {text}");
        assert!(text.contains("7 is not on the list (1–3)") && text.contains("`three`"), "{text}");
        assert_eq!(text.matches("Your diagnosis").count(), 3, "{text}");
    }

    #[test]
    fn the_picker_gives_up_with_the_usage_code_when_input_ends() {
        let mut input = std::io::Cursor::new(b"9\n".to_vec());
        let err = pick(&mut input, &mut Vec::new(), &cands()).unwrap_err();
        assert_eq!(err.code, exit::USAGE);
    }

    #[test]
    fn the_note_is_one_trimmed_line_and_may_be_empty() {
        assert_eq!(
            ask_note(&mut std::io::Cursor::new(b"  alarm list said NOSPACE \n".to_vec()), &mut Vec::new()),
            "alarm list said NOSPACE"
        );
        assert_eq!(ask_note(&mut std::io::Cursor::new(b"\n".to_vec()), &mut Vec::new()), "");
    }
}
