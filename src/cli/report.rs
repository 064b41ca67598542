//! `klab report`: the debrief of the lab's current (or last) drill as Markdown, a single-file
//! HTML page, or JSON.

use super::args::{Global, ReportArgs, ReportFormat};
use super::labcmd::{lab_dir, state_failure};
use super::{Failure, Outcome, find_scenario};
use crate::audit::read::ReadOptions;
use crate::audit::timeline::{self, TimelineOptions};
use crate::exit;
use crate::report::debrief::{self, Debrief};
use crate::scenario::catalog::Catalog;
use crate::session::journal::Journal;
use crate::session::record::Session;
use crate::session::state::{LabDir, read_json};
use std::path::{Path, PathBuf};

/// The newest `<prefix>-<stamp><suffix>` in the lab's folder (archived by `reset`).
fn newest(dir: &LabDir, prefix: &str, suffix: &str) -> Option<PathBuf> {
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(&dir.root)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stamp = name.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()?;
            Some((stamp, e.path()))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// The drill to report on: the running one, else the last one `reset` archived.
fn drill_files(dir: &LabDir) -> Result<(Session, PathBuf, bool), Failure> {
    if let Some(s) = read_json::<Session>(&dir.session_file()).map_err(state_failure)? {
        return Ok((s, dir.journal_file(), false));
    }
    let none = || {
        Failure::new(exit::NOT_READY, "no drill to report on in this lab")
            .help("`klab drill <id>` starts one; `klab report` works during it and after `klab reset`")
    };
    let session = newest(dir, "session-", ".json.done").ok_or_else(none)?;
    let stamp = session
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("session-"))
        .and_then(|n| n.strip_suffix(".json.done"))
        .unwrap_or_default()
        .to_string();
    let s = read_json::<Session>(&session).map_err(state_failure)?.ok_or_else(none)?;
    Ok((s, dir.path(&format!("journal-{stamp}.jsonl.done")), true))
}

/// The trainee's own calls during the drill: writes and failures, without the cluster's
/// components (`system:*`) and without klab's own calls (user agent `klab/…`).
pub fn trainee_timeline(log: &Path, from: Option<&str>, to: &str) -> (Vec<crate::audit::timeline::Entry>, String) {
    if !log.exists() {
        return (vec![], format!("No audit log at {} (the lab writes one there when klab created it).", log.display()));
    }
    let micros = |t: &str| t.parse::<jiff::Timestamp>().ok().map(|t| t.as_microsecond());
    let mut opts = TimelineOptions { read: ReadOptions::default(), ..Default::default() };
    opts.filter.since = from.and_then(micros);
    opts.filter.until = micros(to).map(|u| u + 1);
    match crate::audit::read::sources(&[log.to_path_buf()]).and_then(|s| timeline::timeline(&s, &opts)) {
        Ok(t) => {
            let mut entries: Vec<_> = t
                .entries
                .into_iter()
                .filter(|e| !e.user.starts_with("system:") && !e.user_agent.starts_with("klab/"))
                .collect();
            const MAX: usize = 300;
            let note = if entries.len() > MAX {
                let cut = entries.len() - MAX;
                entries.drain(..cut);
                format!("The first {cut} calls are left out; `klab audit timeline` shows them all.")
            } else if entries.is_empty() {
                "No write call or error by a user during the drill.".to_string()
            } else {
                String::new()
            };
            (entries, note)
        }
        Err(e) => (vec![], format!("The audit log could not be read: {e}")),
    }
}

pub fn build(g: &Global, cat: &Catalog) -> Result<Debrief, Failure> {
    let dir = lab_dir(g);
    let (session, journal_path, archived) = drill_files(&dir)?;
    let e = find_scenario(cat, &session.scenario)?;
    let journal = Journal::open(&journal_path).map_err(state_failure)?;
    let now = crate::session::journal::now();
    let end = session.fixed_at.clone().unwrap_or_else(|| now.clone());
    let log = dir.path("audit-log").join("kube-apiserver-audit.log");
    let (timeline, note) = trainee_timeline(&log, session.injected_at.as_deref(), &end);
    let over = archived || session.gave_up || session.fixed_at.is_some();
    Ok(debrief::build(&e.item, &session, &journal.records, timeline, note, over, &now))
}

pub fn render(cat: &Catalog, d: &Debrief, format: ReportFormat) -> Result<String, Failure> {
    let (name, autoescape) = match format {
        ReportFormat::Json => {
            return serde_json::to_string_pretty(d).map_err(|e| Failure::new(exit::FAILED, e.to_string()));
        }
        ReportFormat::Markdown => ("report.md.tera", false),
        ReportFormat::Html => ("report.html.tera", true),
    };
    let tpl = cat.template(name).ok_or_else(|| Failure::new(exit::FAILED, format!("templates/{name} is missing")))?;
    let mut ctx = tera::Context::new();
    ctx.insert("d", d);
    tera::Tera::default()
        .render_str(tpl, &ctx, autoescape)
        .map_err(|e| Failure::new(exit::FAILED, format!("templates/{name}: {e}")))
}

pub fn run(g: &Global, cat: &Catalog, a: &ReportArgs) -> Outcome {
    let d = build(g, cat)?;
    let text = render(cat, &d, a.format)?;
    match &a.out {
        Some(p) => {
            std::fs::write(p, text)
                .map_err(|e| Failure::new(exit::FAILED, format!("cannot write {}: {e}", p.display())))?;
            anstream::eprintln!("wrote {}", p.display());
        }
        None => anstream::print!("{text}"),
    }
    Ok(exit::OK)
}
