//! The debrief of one drill, as data: what was injected and when, every check attempt, hints,
//! the diagnosis graded, fix quality, time to diagnose and to fix, and the trainee's own calls
//! from the apiserver's audit log. `klab report` renders it with tera (Markdown, HTML) or as
//! JSON; the charts are inline SVG built here, so the HTML needs nothing from the network.

use crate::audit::timeline::Entry as AuditEntry;
use crate::check::diagnosis;
use crate::scenario::kinds::Role;
use crate::scenario::model::Scenario;
use crate::session::journal::Record;
use crate::session::record::Session;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Debrief {
    pub scenario: ScenarioInfo,
    pub lab: String,
    pub started_at: String,
    pub injected_at: Option<String>,
    /// When the report's view of the drill ends: the fix, the give-up, or now.
    pub ended_at: String,
    /// `fixed`, `gave-up`, `not-fixed`.
    pub outcome: String,
    pub minutes_to_fix: Option<f64>,
    pub minutes_to_diagnose: Option<f64>,
    pub injections: Vec<Injection>,
    pub attempts: Vec<Attempt>,
    /// Per check: when it first passed after the fault (minutes after injection).
    pub first_pass: BTreeMap<String, f64>,
    pub hints: Vec<HintUsed>,
    pub hint_points: u32,
    pub diagnosis: Option<Grade>,
    pub anti_patterns: Vec<String>,
    pub timeline: Vec<AuditEntry>,
    /// Why the timeline is empty or cut, when it is.
    pub timeline_note: String,
    pub debrief: String,
    pub references: Vec<Link>,
    /// Inline SVG (HTML report).
    pub chart_checks: String,
    pub chart_time: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioInfo {
    pub id: String,
    pub title: String,
    pub difficulty: String,
    pub time_limit_minutes: f64,
    pub variant: Option<String>,
    pub story: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Injection {
    pub at: String,
    pub phase: String,
    pub step: String,
    pub kind: String,
    pub description: String,
    /// `done`, `failed: …`, or `interrupted`.
    pub result: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: String,
    pub minute: f64,
    pub passed: bool,
    pub failing: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HintUsed {
    pub at: String,
    pub cost: u32,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grade {
    pub at: String,
    pub found: Vec<String>,
    /// Causes not named; only listed once the drill is over.
    pub missed: Vec<String>,
    pub missed_count: usize,
    pub wrongly_blamed: Vec<String>,
    pub notes: String,
}

fn minutes_between(a: &str, b: &str) -> Option<f64> {
    let a: jiff::Timestamp = a.parse().ok()?;
    let b: jiff::Timestamp = b.parse().ok()?;
    Some(((b.as_millisecond() - a.as_millisecond()) as f64 / 60000.0 * 10.0).round() / 10.0)
}

/// Builds the debrief. `over`: the drill has ended (fixed, given up or reset), so missed
/// causes may be named. `timeline`: the trainee's audit entries, already selected.
pub fn build(
    s: &Scenario,
    session: &Session,
    journal: &[Record],
    timeline: Vec<AuditEntry>,
    timeline_note: String,
    over: bool,
    now: &str,
) -> Debrief {
    let injected = session.injected_at.clone();
    let ended_at = session.fixed_at.clone().unwrap_or_else(|| now.to_string());
    let outcome = if session.gave_up {
        "gave-up"
    } else if session.fixed_at.is_some() {
        "fixed"
    } else {
        "not-fixed"
    };
    let since = |t: &str| injected.as_deref().and_then(|i| minutes_between(i, t)).unwrap_or(0.0);
    let describe = |id: &str| {
        s.setup
            .iter()
            .chain(&s.faults)
            .chain(&s.solution)
            .find(|st| st.id.value == id)
            .and_then(|st| st.description.clone())
            .unwrap_or_default()
    };
    let mut injections = Vec::new();
    for r in journal {
        if let Record::Intent { seq, phase, step, kind, at, .. } = r {
            let result = journal
                .iter()
                .find_map(|x| match x {
                    Record::Done { seq: q, .. } if q == seq => Some("done".to_string()),
                    Record::Failed { seq: q, error, .. } if q == seq => Some(format!("failed: {error}")),
                    _ => None,
                })
                .unwrap_or_else(|| "interrupted".into());
            injections.push(Injection {
                at: at.clone(),
                phase: phase.clone(),
                step: step.clone(),
                kind: kind.clone(),
                description: describe(step).split_whitespace().collect::<Vec<_>>().join(" "),
                result,
            });
        }
    }
    let mut first_pass = BTreeMap::new();
    let attempts: Vec<Attempt> = session
        .check_attempts
        .iter()
        .map(|a| {
            for r in &a.results {
                if r.passed && r.role != Role::AntiPattern {
                    first_pass.entry(r.id.clone()).or_insert_with(|| since(&a.at));
                }
            }
            Attempt {
                at: a.at.clone(),
                minute: since(&a.at),
                passed: a.passed,
                failing: a.results.iter().filter(|r| !r.passed).map(|r| format!("{}: {}", r.id, r.reason)).collect(),
            }
        })
        .collect();
    let anti_patterns = session
        .check_attempts
        .last()
        .map(|a| a.results.iter().filter(|r| r.role == Role::AntiPattern && !r.passed).map(|r| r.id.clone()).collect())
        .unwrap_or_default();
    let hints: Vec<HintUsed> = session
        .hints_taken
        .iter()
        .map(|h| HintUsed {
            at: h.at.clone(),
            cost: h.cost,
            text: s.hints.get(h.index).map(|x| x.text.trim().to_string()).unwrap_or_default(),
        })
        .collect();
    let summary = |id: &String| {
        s.diagnosis
            .causes
            .iter()
            .map(|c| (&c.id.value, &c.summary))
            .chain(s.diagnosis.red_herrings.iter().map(|r| (&r.id.value, &r.summary)))
            .find(|(i, _)| *i == id)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| id.clone())
    };
    // `klab diagnose` refuses unknown ids, so grading cannot fail on a recorded attempt.
    let graded = |d: &crate::session::record::DiagnosisAttempt| diagnosis::grade(&s.diagnosis, &d.causes).ok();
    let diagnosis = session.diagnoses.last().and_then(|d| {
        let g = graded(d)?;
        Some(Grade {
            at: d.at.clone(),
            found: g.found.iter().map(summary).collect(),
            missed_count: g.missed.len(),
            missed: if over { g.missed.iter().map(summary).collect() } else { vec![] },
            wrongly_blamed: g.wrongly_blamed.iter().map(summary).collect(),
            notes: d.notes.clone(),
        })
    });
    let minutes_to_diagnose =
        session.diagnoses.iter().find(|d| graded(d).is_some_and(|g| g.missed.is_empty())).map(|d| since(&d.at));
    let minutes_to_fix = if session.gave_up { None } else { session.fixed_at.as_deref().map(since) };
    let time_limit_minutes = s.metadata.time_limit.as_secs() as f64 / 60.0;
    let mut d = Debrief {
        scenario: ScenarioInfo {
            id: s.metadata.id.value.clone(),
            title: s.metadata.title.clone(),
            difficulty: s.metadata.difficulty.as_str().to_string(),
            time_limit_minutes,
            variant: session.variant.clone(),
            story: s.story.trim().to_string(),
        },
        lab: session.lab.clone(),
        started_at: session.started_at.clone(),
        injected_at: injected.clone(),
        ended_at,
        outcome: outcome.into(),
        minutes_to_fix,
        minutes_to_diagnose,
        injections,
        attempts,
        first_pass,
        hint_points: hints.iter().map(|h| h.cost).sum(),
        hints,
        diagnosis,
        anti_patterns,
        timeline,
        timeline_note,
        debrief: s.debrief.trim().to_string(),
        references: s.references.iter().map(|r| Link { title: r.title.clone(), url: r.url.clone() }).collect(),
        chart_checks: String::new(),
        chart_time: String::new(),
    };
    d.chart_checks = chart_checks(&d);
    d.chart_time = chart_time(&d);
    d
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Every check attempt on a time axis: a row per check, green where it passed, red where not.
fn chart_checks(d: &Debrief) -> String {
    let mut checks: Vec<String> = Vec::new();
    for a in &d.attempts {
        for f in &a.failing {
            let id = f.split(':').next().unwrap_or_default().to_string();
            if !checks.contains(&id) {
                checks.push(id);
            }
        }
    }
    for id in d.first_pass.keys() {
        if !checks.contains(id) {
            checks.push(id.clone());
        }
    }
    if d.attempts.is_empty() || checks.is_empty() {
        return String::new();
    }
    let span = d.attempts.iter().map(|a| a.minute).fold(d.scenario.time_limit_minutes.max(1.0), f64::max);
    let (left, width, row) = (210.0, 520.0, 22.0);
    let height = 40.0 + row * checks.len() as f64;
    let x = |m: f64| left + (m / span) * width;
    let mut o = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="check results over time" viewBox="0 0 {w} {h}" width="100%" class="chart" data-chart="checks">"#,
        w = left + width + 20.0,
        h = height
    );
    o.push_str(&format!(
        r#"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="currentColor" stroke-width="1"/><text x="{l}" y="{t}" font-size="11">0 min</text><text x="{r}" y="{t}" font-size="11" text-anchor="end">{span:.0} min</text>"#,
        l = left,
        r = left + width,
        b = height - 25.0,
        t = height - 10.0
    ));
    for (i, id) in checks.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        o.push_str(&format!(
            r#"<text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + 4.0,
            esc(id)
        ));
        for a in &d.attempts {
            let failed = a.failing.iter().any(|f| f.split(':').next() == Some(id.as_str()));
            let (fill, word) = if failed { ("#c62828", "failing") } else { ("#2e7d32", "passing") };
            o.push_str(&format!(
                r#"<circle cx="{:.1}" cy="{y}" r="6" fill="{fill}"><title>{} at {:.1} min: {word}</title></circle>"#,
                x(a.minute),
                esc(id),
                a.minute
            ));
        }
    }
    o.push_str("</svg>");
    o
}

/// Time to fix against the time limit, as one bar (and the time to diagnose, if any).
fn chart_time(d: &Debrief) -> String {
    let limit = d.scenario.time_limit_minutes.max(1.0);
    let bars: Vec<(&str, Option<f64>)> = vec![("to diagnose", d.minutes_to_diagnose), ("to fix", d.minutes_to_fix)];
    let (left, width) = (110.0, 520.0);
    let span = bars.iter().filter_map(|b| b.1).fold(limit, f64::max);
    let mut o = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="time to diagnose and to fix" viewBox="0 0 {} 90" width="100%" class="chart" data-chart="time">"#,
        left + width + 60.0
    );
    for (i, (label, m)) in bars.iter().enumerate() {
        let y = 10.0 + 30.0 * i as f64;
        o.push_str(&format!(
            r#"<text x="{}" y="{}" font-size="12" text-anchor="end">{label}</text>"#,
            left - 8.0,
            y + 14.0
        ));
        match m {
            Some(m) => o.push_str(&format!(
                r##"<rect x="{left}" y="{y}" width="{:.1}" height="18" fill="{}"/><text x="{:.1}" y="{}" font-size="12">{m:.1} min</text>"##,
                (m / span * width).max(1.0),
                if *m <= limit { "#2e7d32" } else { "#ef6c00" },
                left + (m / span * width).max(1.0) + 6.0,
                y + 14.0
            )),
            None => o.push_str(&format!(r#"<text x="{left}" y="{}" font-size="12">—</text>"#, y + 14.0)),
        }
    }
    let lx = left + limit / span * width;
    o.push_str(&format!(
        r##"<line x1="{lx:.1}" y1="4" x2="{lx:.1}" y2="70" stroke="#555" stroke-dasharray="4 3"/><text x="{lx:.1}" y="84" font-size="11" text-anchor="middle">limit {limit:.0} min</text></svg>"##
    ));
    o
}
