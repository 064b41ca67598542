//! `klab audit …`: summaries, timelines and policy lint over Kubernetes audit logs. This module
//! parses the arguments, calls the engine in `crate::audit`, and renders its results as tables or
//! JSON; it computes nothing itself. Everything it prints from a log has been redacted.

use super::args::{Global, OutputFormat};
use super::output::{self, CYAN, DIM, GREEN, RED, YELLOW, paint};
use super::{Failure, Outcome};
use crate::audit::filter::{CodeMatch, Filter, Pattern};
use crate::audit::generate::{GenOptions, generate};
use crate::audit::read::{ReadOptions, ReadStats, sources};
use crate::audit::summary::{Key, Summary, SummaryOptions, summarize};
use crate::audit::timeline::{ObjectSel, Timeline, TimelineOptions, timeline};
use crate::audit::{AuditError, lint, redact, time};
use crate::exit;
use crate::scenario::diag::Severity;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Count calls grouped by user, group, verb, resource, code, source IP…, with rates and
    /// latency percentiles per group.
    #[command(
        after_help = "Examples:\n  klab audit summary /var/log/kubernetes/audit/            # a rotated set\n  klab audit summary audit.log --by user,verb,resource\n  klab audit summary audit.log --code 401 --by source-ip    # expired certificates?\n  klab audit summary audit.log --code 403 --by user,resource\n  klab audit summary audit.log --code 422 --by user,verb,resource\n  zcat audit.log.gz | klab audit summary - -o json\n\nKeys: user, group, verb, resource, subresource, namespace, name, code, user-agent, source-ip,\nstage, decision, api-group, impersonated-user. Malformed lines are reported on stderr and skipped."
    )]
    Summary(SummaryArgs),

    /// The calls that changed something (and the calls that failed), in time order, one line each.
    #[command(
        after_help = "Examples:\n  klab audit timeline audit.log\n  klab audit timeline audit.log --object shop/deployment/web   # who created, patched, deleted it\n  klab audit timeline audit.log --user 'system:serviceaccount:*' --since 2024-05-01T10:00:00Z\n  klab audit timeline audit.log --limit 50 -o json"
    )]
    Timeline(TimelineArgs),

    /// Audit policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),

    /// Write a synthetic, realistic audit log (for benchmarks, tests and practice).
    #[command(
        after_help = "Examples:\n  klab audit generate --size 500M --out /tmp/audit-bench.log\n  klab audit generate --size 2M --seed 7 | klab audit summary -"
    )]
    Generate(GenerateArgs),
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Warn about the known gotchas of an audit policy, each with file:line:column.
    #[command(
        after_help = "Examples:\n  klab audit policy lint /etc/kubernetes/audit-policy.yaml\n  klab audit policy lint policy.yaml --deny-warnings -o json\n\nChecks: RequestReceived not omitted; no catch-all rule; a rule shadowed by an earlier broader one\n(first match wins); `group: \"\"` is the core group only; Secrets, ConfigMaps and TokenReviews at\nRequest/RequestResponse; high-volume read-only calls not reduced.\nExit code 0 when clean or only warnings (1 with --deny-warnings), 1 on errors."
    )]
    Lint(PolicyLintArgs),
}

/// Which events to look at.
#[derive(Args, Debug, Clone)]
pub struct Selection {
    /// Only these verbs (comma-separated or repeated): get, list, watch, create, patch, …
    #[arg(long, value_delimiter = ',')]
    pub verb: Vec<String>,
    /// Only these status codes: `403`, or a class like `4xx` (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub code: Vec<String>,
    /// Only these users; a trailing `*` matches a prefix (`system:serviceaccount:kube-system:*`).
    #[arg(long, value_delimiter = ',')]
    pub user: Vec<String>,
    /// Only these resources (`pods`, or `pods/exec` for a subresource).
    #[arg(long, value_delimiter = ',')]
    pub resource: Vec<String>,
    /// Only these namespaces.
    #[arg(long, short = 'n', value_delimiter = ',')]
    pub namespace: Vec<String>,
    /// From this time on (RFC 3339, e.g. 2024-05-01T10:00:00Z, or a date).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Before this time (RFC 3339 or a date).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Leave out events of these stages (so each request counts once).
    #[arg(long, value_delimiter = ',', default_value = "RequestReceived", value_name = "STAGE")]
    pub exclude_stage: Vec<String>,
    /// Keep every stage (overrides --exclude-stage).
    #[arg(long)]
    pub all_stages: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Audit log files (plain or gzip), folders of rotated logs, or `-` for stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Group by these keys, comma-separated.
    #[arg(long, default_value = "user,verb,resource", value_name = "KEYS")]
    pub by: String,
    /// Show the largest N groups (0: all).
    #[arg(long, default_value_t = 25, value_name = "N")]
    pub top: usize,
    #[command(flatten)]
    pub select: Selection,
}

#[derive(Args, Debug)]
pub struct TimelineArgs {
    /// Audit log files (plain or gzip), folders of rotated logs, or `-` for stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Only this object: namespace/kind/name, or kind/name when cluster-scoped.
    #[arg(long, value_name = "NS/KIND/NAME")]
    pub object: Option<String>,
    /// Show reads too (get, list, watch), not only writes and failures.
    #[arg(long)]
    pub all_verbs: bool,
    /// Show only the last N entries (0: all).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub limit: usize,
    #[command(flatten)]
    pub select: Selection,
}

#[derive(Args, Debug)]
pub struct PolicyLintArgs {
    /// Audit policy files (YAML).
    #[arg(required = true, value_name = "POLICY")]
    pub files: Vec<PathBuf>,
    /// Exit with code 1 on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// About how much to write: bytes, or with a unit (500K, 64M, 1G).
    #[arg(long, default_value = "10M")]
    pub size: String,
    /// Seed: the same seed gives the same log.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(g: &Global, c: AuditCommand) -> Outcome {
    match c {
        AuditCommand::Summary(a) => run_summary(g, &a),
        AuditCommand::Timeline(a) => run_timeline(g, &a),
        AuditCommand::Policy(PolicyCommand::Lint(a)) => run_lint(g, &a),
        AuditCommand::Generate(a) => run_generate(&a),
    }
}

fn fail(e: AuditError) -> Failure {
    let help = match &e {
        AuditError::Open { .. } => Some("give audit log files, folders of rotated logs, or `-` to read stdin"),
        AuditError::EmptyFolder { .. } => Some("klab reads *.log, *.log.N, *.log.gz and *.jsonl files in a folder"),
        AuditError::BadArgument { .. } => Some("see `klab audit summary --help` for the accepted values"),
        _ => None,
    };
    let f = Failure::new(exit::FAILED, e.to_string());
    match help {
        Some(h) => f.help(h),
        None => f,
    }
}

fn bound(what: &'static str, s: &Option<String>) -> Result<Option<i64>, Failure> {
    match s {
        None => Ok(None),
        Some(v) => time::parse_bound(v).map(Some).ok_or_else(|| {
            fail(AuditError::BadArgument {
                what,
                value: v.clone(),
                expected: "an RFC 3339 time like 2024-05-01T10:00:00Z, or a date like 2024-05-01".into(),
            })
        }),
    }
}

fn selection(s: &Selection) -> Result<(Filter, ReadOptions), Failure> {
    let codes = s.code.iter().map(|c| c.parse::<CodeMatch>()).collect::<Result<Vec<_>, _>>().map_err(fail)?;
    let filter = Filter {
        verbs: s.verb.clone(),
        codes,
        users: s.user.iter().map(|u| Pattern(u.clone())).collect(),
        resources: s.resource.clone(),
        namespaces: s.namespace.clone(),
        since: bound("--since", &s.since)?,
        until: bound("--until", &s.until)?,
        exclude_stages: if s.all_stages { Vec::new() } else { s.exclude_stage.clone() },
    };
    let mut read = ReadOptions::default();
    if let Some(t) = s.threads {
        read.threads = t.max(1);
    }
    Ok((filter, read))
}

/// Malformed lines go to stderr whatever the output format, so JSON on stdout stays clean.
fn report_malformed(r: &ReadStats) {
    for m in r.reported.iter().take(20) {
        anstream::eprintln!("{} {}:{}: {} (line skipped)", paint(YELLOW, "warning:"), m.source, m.line, m.reason);
    }
    if r.malformed > 20 {
        anstream::eprintln!("{} … {} malformed line(s) in all were skipped", paint(YELLOW, "warning:"), r.malformed);
    }
}

fn duration(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else if ms < 60_000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{:.1}m", ms / 60_000.0)
    }
}

fn span(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

fn shown(v: &str) -> String {
    if v.is_empty() { "-".into() } else { redact::text(v).into_owned() }
}

fn run_summary(g: &Global, a: &SummaryArgs) -> Outcome {
    let by = Key::parse_list(&a.by).map_err(fail)?;
    let (filter, read) = selection(&a.select)?;
    let srcs = sources(&a.files).map_err(fail)?;
    let s = summarize(&srcs, &SummaryOptions { by, filter, top: a.top, read }).map_err(fail)?;
    report_malformed(&s.read);
    if g.output == OutputFormat::Json {
        output::print_json(&summary_json(&s))?;
    } else {
        anstream::print!("{}", summary_table(&s));
    }
    Ok(exit::OK)
}

/// The JSON shape of a summary: one object per group, its keys named.
pub fn summary_json(s: &Summary) -> Value {
    let groups: Vec<Value> = s
        .rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            for (k, v) in s.by.iter().zip(&r.key) {
                m.insert(k.name().to_string(), Value::String(redact::text(v).into_owned()));
            }
            m.insert("count".into(), json!(r.count));
            m.insert("share".into(), json!((r.share * 10_000.0).round() / 10_000.0));
            m.insert("per_second".into(), json!(r.per_second.map(|x| (x * 1000.0).round() / 1000.0)));
            m.insert("latency_ms".into(), json!(r.latency));
            Value::Object(m)
        })
        .collect();
    json!({
        "by": s.by.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "groups": groups,
        "total_groups": s.groups,
        "matched": s.matched,
        "first": s.first,
        "last": s.last,
        "span_seconds": s.span_seconds,
        "read": {
            "sources": s.read.sources,
            "bytes": s.read.bytes,
            "lines": s.read.lines,
            "events": s.read.events,
            "malformed": s.read.malformed,
        },
    })
}

/// The table users read: one row per group, then a line saying what was counted.
pub fn summary_table(s: &Summary) -> String {
    let mut headers: Vec<String> = s.by.iter().map(|k| k.name().to_ascii_uppercase()).collect();
    headers.extend(["COUNT", "SHARE", "PER SEC", "P50", "P90", "P99", "MAX"].map(String::from));
    let rows: Vec<Vec<String>> = s
        .rows
        .iter()
        .map(|r| {
            let mut row: Vec<String> = r.key.iter().map(|v| shown(v)).collect();
            row.push(r.count.to_string());
            row.push(format!("{:.1}%", r.share * 100.0));
            row.push(r.per_second.map_or("-".into(), |x| format!("{x:.2}")));
            match &r.latency {
                Some(l) => row.extend([l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms].map(duration)),
                None => row.extend(["-", "-", "-", "-"].map(String::from)),
            }
            row
        })
        .collect();
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut out = output::table(&h, &rows);
    if s.rows.is_empty() {
        out.push_str(&paint(DIM, "(no event matches)\n"));
    }
    let mut foot = format!("{} event(s) matched of {} read", s.matched, s.read.events);
    if s.read.malformed > 0 {
        foot.push_str(&format!(", {} malformed line(s) skipped", s.read.malformed));
    }
    foot.push_str(&format!(" · {} group(s)", s.groups));
    if s.groups > s.rows.len() {
        foot.push_str(&format!(", top {} shown (--top 0 for all)", s.rows.len()));
    }
    if let (Some(a), Some(b)) = (&s.first, &s.last) {
        foot.push_str(&format!(" · {a} → {b} ({})", span(s.span_seconds)));
    }
    out.push_str(&paint(DIM, foot));
    out.push('\n');
    out
}

fn run_timeline(g: &Global, a: &TimelineArgs) -> Outcome {
    let (filter, read) = selection(&a.select)?;
    let object = a.object.as_deref().map(str::parse::<ObjectSel>).transpose().map_err(fail)?;
    let srcs = sources(&a.files).map_err(fail)?;
    let t = timeline(&srcs, &TimelineOptions { filter, object, all_verbs: a.all_verbs, limit: a.limit, read })
        .map_err(fail)?;
    report_malformed(&t.read);
    if g.output == OutputFormat::Json {
        output::print_json(&json!({ "entries": t.entries, "total": t.total }))?;
    } else {
        anstream::print!("{}", timeline_table(&t));
    }
    Ok(exit::OK)
}

/// One compact line per call: when, outcome, who, what, on which object, how long, and why.
pub fn timeline_table(t: &Timeline) -> String {
    let rows: Vec<Vec<String>> = t
        .entries
        .iter()
        .map(|e| {
            let code = e.code.map_or("-".to_string(), |c| c.to_string());
            let code = if e.failed() { paint(RED, code) } else { paint(GREEN, code) };
            let who = match &e.impersonated_user {
                Some(u) => format!("{} (as {u})", e.user),
                None => shown(&e.user),
            };
            let target = match (e.namespace.is_empty(), e.name.is_empty()) {
                (true, true) => e.resource.clone(),
                (true, false) => format!("{} {}", e.resource, e.name),
                (false, true) => format!("{} {}/", e.resource, e.namespace),
                (false, false) => format!("{} {}/{}", e.resource, e.namespace, e.name),
            };
            let why: String = e.why.chars().take(100).collect();
            vec![
                e.time.clone(),
                code,
                who,
                e.verb.clone(),
                target,
                e.latency_ms.map_or("-".into(), duration),
                paint(DIM, why),
            ]
        })
        .collect();
    let mut out = output::table(&["TIME", "CODE", "USER", "VERB", "OBJECT", "LATENCY", "WHY"], &rows);
    if t.entries.is_empty() {
        out.push_str(&paint(DIM, "(no write or failed call matches)\n"));
    }
    let mut foot = format!("{} call(s)", t.total);
    if t.total > t.entries.len() {
        foot.push_str(&format!(", last {} shown", t.entries.len()));
    }
    foot.push_str(&format!(" · {} event(s) read", t.read.events));
    if t.read.malformed > 0 {
        foot.push_str(&format!(", {} malformed line(s) skipped", t.read.malformed));
    }
    out.push_str(&paint(DIM, foot));
    out.push('\n');
    out
}

fn run_lint(g: &Global, a: &PolicyLintArgs) -> Outcome {
    let mut all = Vec::new();
    for f in &a.files {
        let name = f.display().to_string();
        let text = crate::scenario::yaml::read_capped(f).map_err(|e| {
            Failure::new(exit::FAILED, format!("{name}: cannot read: {e}"))
                .help("give the path of an audit policy YAML file")
        })?;
        let text = String::from_utf8_lossy(&text);
        all.extend(lint::lint(&name, &text));
    }
    let errors = all.iter().filter(|d| d.is_error()).count();
    let warnings = all.len() - errors;
    if g.output == OutputFormat::Json {
        output::print_json(
            &json!({ "files": a.files.len(), "errors": errors, "warnings": warnings, "diagnostics": all }),
        )?;
    } else {
        for d in &all {
            let text = d.to_string();
            let (label, style) = match d.severity {
                Severity::Error => ("error:", RED),
                Severity::Warning => ("warning:", YELLOW),
            };
            anstream::print!("{}", text.replacen(label, &paint(style, label), 1));
        }
        let summary = format!("{} policy file(s) checked: {errors} error(s), {warnings} warning(s)", a.files.len());
        let style = if errors > 0 {
            RED
        } else if warnings > 0 {
            YELLOW
        } else {
            GREEN
        };
        anstream::println!("{}", paint(style, summary));
    }
    Ok(if errors > 0 || (a.deny_warnings && warnings > 0) { exit::FAILED } else { exit::OK })
}

fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.strip_suffix("IB").or_else(|| t.strip_suffix('B')).unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 1u64 << 10),
        'M' => (&t[..t.len() - 1], 1 << 20),
        'G' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(mult))
}

fn run_generate(a: &GenerateArgs) -> Outcome {
    let bytes = parse_size(&a.size).ok_or_else(|| {
        Failure::new(exit::USAGE, format!("bad size `{}`", a.size))
            .help("write a number of bytes, or with a unit: 500K, 64M, 1G")
    })?;
    let opts = GenOptions { bytes, seed: a.seed, ..GenOptions::default() };
    let written = match &a.out {
        Some(p) => {
            let f = std::fs::File::create(p)
                .map_err(|e| Failure::new(exit::FAILED, format!("{}: cannot create: {e}", p.display())))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            generate(&mut w, &opts).and_then(|s| w.flush().map(|_| s))
        }
        None => {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            generate(&mut w, &opts).and_then(|s| w.flush().map(|_| s))
        }
    };
    match written {
        Ok(s) => {
            if let Some(p) = &a.out {
                anstream::eprintln!(
                    "{} {} event(s), {} bytes → {}",
                    paint(CYAN, "wrote"),
                    s.events,
                    s.bytes,
                    p.display()
                );
            }
            Ok(exit::OK)
        }
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(e) => Err(Failure::new(exit::FAILED, format!("cannot write the log: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("500M"), Some(500 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("lots"), None);
    }
}
