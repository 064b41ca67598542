//! Team game days: several labs broken at once, one wall clock, a scoreboard, and a debrief.
//!
//! The facilitator's state lives on disk (`<state>/gameday/state.json`, written atomically after
//! every change), and the clock is wall-clock time: a crash of klab mid-game loses nothing, and
//! `klab gameday board` picks up where it was. Each team's drill is an ordinary klab session in
//! the team's own lab (`klab-<team>`), so everything per team (hints, checks, diagnoses, reset)
//! is guarded and journalled as usual. This module is pure: state, scoreboard rows, the capacity
//! plan and the charts; the command line is `cli::gameday`.

pub mod roster;

use crate::check::score::{self, Score};
use crate::scenario::model::Scenario;
use crate::session::record::Session;
use roster::{DockerHost, Roster};
use serde::{Deserialize, Serialize};

/// Memory a lab's node takes on its Docker host (a kind node idles at 0.6–0.9 GiB).
pub const NODE_MEMORY: u64 = 1 << 30;
/// Left to the host itself.
pub const HOST_RESERVE: u64 = 1 << 30;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameState {
    pub roster_file: String,
    pub roster: Roster,
    pub created_at: String,
    /// When every lab was broken and the clock started; `None` while labs are being prepared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub teams: Vec<TeamState>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeamStatus {
    /// Not prepared yet (or preparing when klab stopped).
    Planned,
    /// The drill is injected in the team's lab.
    Injected,
    /// Preparing failed; `error` says why. `gameday start` again retries.
    Failed,
    /// `gameday end` ran the final checks.
    Final,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamState {
    pub name: String,
    pub lab: String,
    pub drill: String,
    pub status: TeamStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl GameState {
    pub fn new(roster_file: &str, roster: Roster, now: &str) -> GameState {
        let teams = roster
            .teams
            .iter()
            .map(|t| TeamState {
                name: t.name.clone(),
                lab: t.lab(),
                drill: roster.drill_of(t).unwrap_or_default().to_string(),
                status: TeamStatus::Planned,
                error: None,
            })
            .collect();
        GameState {
            roster_file: roster_file.to_string(),
            roster,
            created_at: now.to_string(),
            clock_start: None,
            ended_at: None,
            teams,
        }
    }

    pub fn docker_of(&self, team: &str) -> Option<&DockerHost> {
        self.roster.team(team).and_then(|t| t.docker.as_ref())
    }

    pub fn team_of_lab(&self, lab: &str) -> Option<&TeamState> {
        self.teams.iter().find(|t| t.lab == lab)
    }

    /// Seconds on the clock at `now` (stops at the end).
    pub fn clock_secs(&self, now: jiff::Timestamp) -> Option<u64> {
        let start = ts(self.clock_start.as_deref())?;
        let end = ts(self.ended_at.as_deref()).unwrap_or(now);
        Some(end.as_second().saturating_sub(start.as_second()).max(0) as u64)
    }
}

fn ts(t: Option<&str>) -> Option<jiff::Timestamp> {
    t.and_then(|t| t.parse().ok())
}

/// One line of the scoreboard.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub rank: usize,
    pub team: String,
    pub members: Vec<String>,
    pub drill: String,
    pub lab: String,
    /// `local`, or the Docker host the lab runs on.
    pub host: String,
    /// `preparing`, `failed`, `working`, `fixed`, `gave-up`, `not-fixed` (after the end).
    pub state: String,
    /// Checks passing / checks, from the team's last check run (the final one after the end).
    pub checks_passing: Option<usize>,
    pub checks_total: Option<usize>,
    /// Causes named correctly in the last diagnosis / causes.
    pub causes_found: Option<usize>,
    pub causes_total: usize,
    pub red_herrings_blamed: usize,
    pub diagnosed: bool,
    pub hints: usize,
    /// Check runs that did not find the lab fixed, and diagnosis attempts that missed a cause or
    /// blamed a red herring.
    pub wrong_attempts: usize,
    pub score: u32,
    pub provisional: bool,
    /// Seconds from the clock's start to the fix (or to now / the end while not fixed).
    pub seconds: Option<u64>,
    pub fixed: bool,
    pub score_items: Vec<score::Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The scoreboard: one row per team, ranked by score, then by time to fix.
pub fn board(g: &GameState, sessions: &[(Option<Session>, Option<&Scenario>)], now: jiff::Timestamp) -> Vec<Row> {
    let rules = g.roster.scoring.rules();
    let mut rows: Vec<Row> =
        g.teams.iter().zip(sessions).map(|(t, (s, sc))| row(g, t, s.as_ref(), *sc, now, &rules)).collect();
    rows.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.fixed.cmp(&a.fixed))
            .then(a.seconds.unwrap_or(u64::MAX).cmp(&b.seconds.unwrap_or(u64::MAX)).then(a.team.cmp(&b.team)))
    });
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    rows
}

fn row(
    g: &GameState,
    t: &TeamState,
    s: Option<&Session>,
    sc: Option<&Scenario>,
    now: jiff::Timestamp,
    rules: &score::Rules,
) -> Row {
    let team = g.roster.team(&t.name);
    let mut r = Row {
        rank: 0,
        team: t.name.clone(),
        members: team.map(|t| t.members.clone()).unwrap_or_default(),
        drill: t.drill.clone(),
        lab: t.lab.clone(),
        host: g.docker_of(&t.name).map(DockerHost::label).unwrap_or_else(|| "local".into()),
        state: match t.status {
            TeamStatus::Planned => "preparing".into(),
            TeamStatus::Failed => "failed".into(),
            _ => "working".into(),
        },
        checks_passing: None,
        checks_total: None,
        causes_found: None,
        causes_total: sc.map(|s| s.diagnosis.causes.len()).unwrap_or(0),
        red_herrings_blamed: 0,
        diagnosed: false,
        hints: 0,
        wrong_attempts: 0,
        score: 0,
        provisional: true,
        seconds: None,
        fixed: false,
        score_items: vec![],
        error: t.error.clone(),
    };
    let (Some(s), Some(sc)) = (s, sc) else { return r };
    if !matches!(t.status, TeamStatus::Injected | TeamStatus::Final) {
        return r;
    }
    let ended = ts(g.ended_at.as_deref());
    let start = ts(g.clock_start.as_deref());
    // What the team did before the clock stopped (a check run after the end does not count,
    // except the final one).
    let in_time = |at: &str| match (ended, ts(Some(at))) {
        (Some(e), Some(a)) => a <= e,
        _ => true,
    };
    let mut s = s.clone();
    s.check_attempts.retain(|a| a.final_run || in_time(&a.at));
    s.diagnoses.retain(|d| in_time(&d.at));
    s.hints_taken.retain(|h| in_time(&h.at));
    if s.fixed_at.as_deref().is_some_and(|f| !in_time(f)) {
        // Fixed by the time the final run looked: that is the end of the clock.
        s.fixed_at = if s.check_attempts.iter().any(|a| a.final_run && a.passed) { g.ended_at.clone() } else { None };
    }
    let mut input = score::input_of(&s, sc, ended.unwrap_or(now));
    input.time_limit_secs = g.roster.time_limit.as_secs();
    if let Some(start) = start {
        let stop = ts(s.fixed_at.as_deref()).or(ended).unwrap_or(now);
        input.elapsed_secs = Some(stop.as_second().saturating_sub(start.as_second()).max(0) as u64);
    }
    let sc_score: Score = score::score_with(&input, rules);
    r.fixed = s.fixed_at.is_some() && !s.gave_up;
    r.state = if s.gave_up {
        "gave-up".into()
    } else if r.fixed {
        "fixed".into()
    } else if ended.is_some() {
        "not-fixed".into()
    } else {
        "working".into()
    };
    if let Some(last) = s.check_attempts.last() {
        r.checks_total = Some(last.results.len());
        r.checks_passing = Some(last.results.iter().filter(|o| o.passed).count());
    }
    if let Some(grade) = input.diagnoses.last() {
        r.diagnosed = true;
        r.causes_found = Some(grade.found.len());
        r.red_herrings_blamed = grade.wrongly_blamed.len();
    }
    r.hints = s.hints_taken.len();
    r.wrong_attempts = s.check_attempts.iter().filter(|a| !a.passed && !a.final_run).count()
        + input.diagnoses.iter().filter(|g| !g.complete()).count();
    r.score = sc_score.points;
    r.provisional = sc_score.provisional && ended.is_none();
    r.seconds = input.elapsed_secs;
    r.score_items = sc_score.items;
    r
}

/// A lab's place: which Docker host, and whether klab must create it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub team: String,
    pub lab: String,
    pub host: String,
    pub nodes: u8,
    pub create: bool,
}

/// What a Docker host said about itself (`docker info`), or why it did not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInfo {
    pub host: String,
    pub mem_bytes: u64,
    pub cpus: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Per host: the labs placed there, the memory the new ones need, and whether it holds them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPlan {
    pub host: String,
    pub labs: Vec<String>,
    pub new_nodes: u32,
    pub need_bytes: u64,
    pub have_bytes: u64,
    /// How many labs this host creates at once (half its CPUs, at least one).
    pub parallel: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

pub fn plan_hosts(placements: &[Placement], hosts: &[HostInfo]) -> Vec<HostPlan> {
    hosts
        .iter()
        .map(|h| {
            let mine: Vec<&Placement> = placements.iter().filter(|p| p.host == h.host).collect();
            let new_nodes: u32 = mine.iter().filter(|p| p.create).map(|p| u32::from(p.nodes)).sum();
            let need = u64::from(new_nodes) * NODE_MEMORY;
            let problem = if let Some(e) = &h.error {
                Some(format!("cannot ask the Docker engine: {e}"))
            } else if need > 0 && need + HOST_RESERVE > h.mem_bytes {
                Some(format!(
                    "{new_nodes} new node(s) need about {:.1} GiB (+{:.0} GiB for the host); it has {:.1} GiB",
                    gib(need),
                    gib(HOST_RESERVE),
                    gib(h.mem_bytes)
                ))
            } else {
                None
            };
            HostPlan {
                host: h.host.clone(),
                labs: mine.iter().map(|p| p.lab.clone()).collect(),
                new_nodes,
                need_bytes: need,
                have_bytes: h.mem_bytes,
                parallel: ((h.cpus / 2).max(1) as usize).min(mine.len().max(1)),
                problem,
            }
        })
        .collect()
}

pub fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

/// `mm:ss` (or `h:mm:ss`).
pub fn clock_text(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{:02}:{:02}", secs / 60, secs % 60)
    }
}

/// What a team's diagnosis looks like on the board.
pub fn diagnosis_text(r: &Row) -> String {
    match r.causes_found {
        None => "—".into(),
        Some(f) if r.red_herrings_blamed > 0 => format!("{f}/{} +{} wrong", r.causes_total, r.red_herrings_blamed),
        Some(f) => format!("{f}/{}", r.causes_total),
    }
}

/// What the time-to-fix chart draws of a team: read from a [`Row`], or back from the results.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bar {
    pub team: String,
    pub state: String,
    pub seconds: Option<u64>,
    pub fixed: bool,
}

impl From<&Row> for Bar {
    fn from(r: &Row) -> Bar {
        Bar { team: r.team.clone(), state: r.state.clone(), seconds: r.seconds, fixed: r.fixed }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Inline SVG: minutes to fix per team (unfixed teams drawn pale to the end of the clock).
pub fn chart_time_to_fix(rows: &[Bar], limit_secs: u64) -> String {
    let h = 28 * rows.len() as u32 + 40;
    let max = rows.iter().filter_map(|r| r.seconds).max().unwrap_or(0).max(limit_secs).max(60);
    let w = 560.0;
    let left = 120.0;
    let scale = (w - left - 60.0) / max as f64;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="Time to fix per team">"##
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 10 + 28 * i as u32;
        let secs = r.seconds.unwrap_or(0);
        let bw = secs as f64 * scale;
        // Not fixed: a pale bar with a dashed edge, to the end of the clock.
        let fill = if r.fixed { "#2e7d32\"" } else { "#d7d7d7\" stroke=\"#777\" stroke-dasharray=\"4 2\"" };
        let label = if r.fixed {
            format!("{:.1} min", secs as f64 / 60.0)
        } else {
            format!("{} ({:.1} min)", r.state, secs as f64 / 60.0)
        };
        s.push_str(&format!(
            r##"<text x="{}" y="{}" text-anchor="end" font-size="13">{}</text><rect x="{left}" y="{y}" width="{bw:.1}" height="18" fill="{fill}><title>{}: {}</title></rect><text x="{:.1}" y="{}" font-size="12">{}</text>"##,
            left - 8.0,
            y + 14,
            esc(&r.team),
            esc(&r.team),
            esc(&label),
            left + bw + 6.0,
            y + 14,
            esc(&label)
        ));
    }
    let lx = left + limit_secs as f64 * scale;
    s.push_str(&format!(
        r##"<line x1="{lx:.1}" y1="4" x2="{lx:.1}" y2="{}" stroke="#c62828" stroke-dasharray="4 3"/><text x="{lx:.1}" y="{}" font-size="11" fill="#c62828" text-anchor="middle">limit {} min</text></svg>"##,
        h - 22,
        h - 8,
        limit_secs / 60
    ));
    s
}

/// One mark on the game's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    pub team: String,
    /// Seconds since the clock started.
    pub at: u64,
    /// `check-pass`, `check-fail`, `hint`, `diagnosis`, `fixed`.
    pub kind: String,
    pub detail: String,
}

pub fn marks(g: &GameState, team: &str, s: &Session) -> Vec<Mark> {
    let Some(start) = ts(g.clock_start.as_deref()) else { return vec![] };
    let at = |t: &str| ts(Some(t)).map(|t| t.as_second().saturating_sub(start.as_second()).max(0) as u64);
    let mut out = Vec::new();
    for a in &s.check_attempts {
        if let Some(x) = at(&a.at) {
            let passing = a.results.iter().filter(|r| r.passed).count();
            out.push(Mark {
                team: team.into(),
                at: x,
                kind: if a.passed { "check-pass" } else { "check-fail" }.into(),
                detail: format!(
                    "{}check run: {passing}/{} passing",
                    if a.final_run { "final " } else { "" },
                    a.results.len()
                ),
            });
        }
    }
    for h in &s.hints_taken {
        if let Some(x) = at(&h.at) {
            out.push(Mark {
                team: team.into(),
                at: x,
                kind: "hint".into(),
                detail: format!("hint {} (−{})", h.index + 1, h.cost),
            });
        }
    }
    for d in &s.diagnoses {
        if let Some(x) = at(&d.at) {
            out.push(Mark {
                team: team.into(),
                at: x,
                kind: "diagnosis".into(),
                detail: format!("diagnosis: {}", d.causes.join(", ")),
            });
        }
    }
    if let Some(x) = s.fixed_at.as_deref().and_then(at) {
        out.push(Mark { team: team.into(), at: x, kind: "fixed".into(), detail: "fixed".into() });
    }
    out.sort_by_key(|m| m.at);
    out
}

/// Inline SVG: one lane per team, its check runs, hints, diagnoses and fix on the game clock.
pub fn chart_timeline(teams: &[String], marks: &[Mark], limit_secs: u64) -> String {
    let lane = 30u32;
    let h = lane * teams.len() as u32 + 40;
    let w = 560.0;
    let left = 120.0;
    let max = marks.iter().map(|m| m.at).max().unwrap_or(0).max(limit_secs).max(60);
    let scale = (w - left - 20.0) / max as f64;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="Timeline of the game day">"##
    );
    for (i, t) in teams.iter().enumerate() {
        let y = 16 + lane * i as u32;
        s.push_str(&format!(
            r##"<text x="{}" y="{}" text-anchor="end" font-size="13">{}</text><line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#bbb"/>"##,
            left - 8.0,
            y + 4,
            esc(t),
            w - 20.0
        ));
        for m in marks.iter().filter(|m| &m.team == t) {
            let x = left + m.at as f64 * scale;
            let title = format!("{} +{}: {}", esc(t), clock_text(m.at), esc(&m.detail));
            let shape = match m.kind.as_str() {
                "check-pass" => {
                    format!(r##"<circle cx="{x:.1}" cy="{y}" r="5" fill="#2e7d32"><title>{title}</title></circle>"##)
                }
                "check-fail" => {
                    format!(r##"<circle cx="{x:.1}" cy="{y}" r="5" fill="#c62828"><title>{title}</title></circle>"##)
                }
                "hint" => format!(
                    r##"<rect x="{:.1}" y="{}" width="8" height="8" fill="#f9a825"><title>{title}</title></rect>"##,
                    x - 4.0,
                    y - 4
                ),
                "diagnosis" => format!(
                    r##"<path d="M{x:.1} {} l5 6 l-5 6 l-5 -6 z" fill="#1565c0"><title>{title}</title></path>"##,
                    y - 6
                ),
                _ => format!(
                    r##"<path d="M{x:.1} {} v16" stroke="#2e7d32" stroke-width="3"><title>{title}</title></path>"##,
                    y - 8
                ),
            };
            s.push_str(&shape);
        }
    }
    let lx = left + limit_secs as f64 * scale;
    s.push_str(&format!(
        r##"<line x1="{lx:.1}" y1="4" x2="{lx:.1}" y2="{}" stroke="#c62828" stroke-dasharray="4 3"/><text x="{left}" y="{}" font-size="11">0</text><text x="{lx:.1}" y="{}" font-size="11" text-anchor="middle" fill="#c62828">{} min</text></svg>"##,
        h - 22,
        h - 8,
        h - 8,
        limit_secs / 60
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::catalog::Catalog;
    use crate::session::record::{CheckAttempt, CheckOutcome, DiagnosisAttempt, HintTaken};

    fn game() -> (GameState, Catalog) {
        let cat = Catalog::load(&[]);
        let text = "apiVersion: klab.dev/v1\nkind: GameDay\nmetadata: {name: t}\ntimeLimit: 10m\ndrill: etcd-quota\nteams:\n  - {name: blue, members: [a]}\n  - {name: red, members: [b]}\n  - {name: green, members: [c]}\n";
        let (r, d) = roster::load("r.yaml", text.as_bytes(), &cat);
        assert!(d.is_empty(), "{d:?}");
        let mut g = GameState::new("r.yaml", r.unwrap(), "2026-01-01T10:00:00Z");
        g.clock_start = Some("2026-01-01T10:01:00Z".into());
        for t in &mut g.teams {
            t.status = TeamStatus::Injected;
        }
        (g, cat)
    }

    fn session(g: &GameState) -> Session {
        Session {
            scenario: "etcd-quota".into(),
            variant: None,
            variant_reason: None,
            set: vec![],
            params: Default::default(),
            lab: "x".into(),
            context: "x".into(),
            cluster_uid: "u".into(),
            started_at: g.created_at.clone(),
            injected_at: Some("2026-01-01T10:00:30Z".into()),
            hints_taken: vec![],
            check_attempts: vec![],
            diagnoses: vec![],
            gave_up: false,
            fixed_at: None,
        }
    }

    fn attempt(at: &str, passed: bool, final_run: bool) -> CheckAttempt {
        CheckAttempt {
            at: at.into(),
            passed,
            final_run,
            results: vec![CheckOutcome {
                id: "api".into(),
                role: crate::scenario::kinds::Role::User,
                passed,
                reason: String::new(),
                first_pass: false,
                attribution: None,
            }],
        }
    }

    #[test]
    fn the_board_ranks_fixed_and_diagnosed_teams_first_and_uses_the_one_clock() {
        let (mut g, cat) = game();
        let sc = &cat.scenario("etcd-quota").unwrap().item;
        let causes: Vec<String> = sc.diagnosis.causes.iter().map(|c| c.id.value.clone()).collect();
        // blue: fixed at +6 min, diagnosed right, one failed run before.
        let mut blue = session(&g);
        blue.check_attempts =
            vec![attempt("2026-01-01T10:04:00Z", false, false), attempt("2026-01-01T10:07:00Z", true, false)];
        blue.fixed_at = Some("2026-01-01T10:07:00Z".into());
        blue.diagnoses =
            vec![DiagnosisAttempt { at: "2026-01-01T10:06:00Z".into(), causes: causes.clone(), notes: String::new() }];
        // red: a hint, no fix, no diagnosis.
        let mut red = session(&g);
        red.hints_taken = vec![HintTaken { index: 0, cost: 5, at: "2026-01-01T10:03:00Z".into() }];
        red.check_attempts = vec![attempt("2026-01-01T10:05:00Z", false, false)];
        // green: fixed after the end: does not count.
        let mut green = session(&g);
        green.check_attempts = vec![attempt("2026-01-01T10:20:00Z", true, false)];
        green.fixed_at = Some("2026-01-01T10:20:00Z".into());
        g.ended_at = Some("2026-01-01T10:11:00Z".into());
        let sessions = vec![(Some(blue), Some(sc)), (Some(red), Some(sc)), (Some(green), Some(sc))];
        let rows = board(&g, &sessions, "2026-01-01T10:30:00Z".parse().unwrap());
        assert_eq!(rows.iter().map(|r| r.team.as_str()).collect::<Vec<_>>(), ["blue", "green", "red"]);
        let blue = &rows[0];
        assert!(blue.fixed && blue.diagnosed);
        assert_eq!(blue.seconds, Some(360));
        assert_eq!(blue.wrong_attempts, 1);
        assert_eq!(blue.score, 99, "{:?}", blue.score_items);
        assert_eq!(rows[0].state, "fixed");
        let red = &rows[2];
        assert_eq!((red.hints, red.state.as_str(), red.seconds), (1, "not-fixed", Some(600)));
        assert_eq!(red.score, 100 - 5 - 20 - 1);
        let green = &rows[1];
        assert!(!green.fixed, "a fix after the end does not count");
        assert_eq!((green.score, green.rank), (80, 2));
        assert_eq!(green.checks_passing, None);
        assert_eq!(diagnosis_text(blue), format!("{}/{}", causes.len(), causes.len()));
    }

    #[test]
    fn a_final_run_decides_fixed_without_costing_a_point() {
        let (mut g, cat) = game();
        let sc = &cat.scenario("etcd-quota").unwrap().item;
        g.ended_at = Some("2026-01-01T10:09:00Z".into());
        let mut s = session(&g);
        s.check_attempts = vec![attempt("2026-01-01T10:09:02Z", true, true)];
        s.fixed_at = Some("2026-01-01T10:09:02Z".into());
        let sessions = vec![(Some(s.clone()), Some(sc)), (None, Some(sc)), (None, None)];
        let rows = board(&g, &sessions, "2026-01-01T10:30:00Z".parse().unwrap());
        let r = rows.iter().find(|r| r.team == "blue").unwrap();
        assert!(r.fixed);
        assert_eq!(r.seconds, Some(480));
        assert_eq!(r.wrong_attempts, 0);
        s.check_attempts = vec![attempt("2026-01-01T10:09:02Z", false, true)];
        s.fixed_at = None;
        let sessions = vec![(Some(s), Some(sc)), (None, Some(sc)), (None, None)];
        let rows = board(&g, &sessions, "2026-01-01T10:30:00Z".parse().unwrap());
        let r = rows.iter().find(|r| r.team == "blue").unwrap();
        assert!(!r.fixed);
        assert_eq!(r.wrong_attempts, 0);
        assert_eq!(r.score_items.iter().find(|i| i.rule == "failed checks").map(|i| i.minus), Some(0));
    }

    #[test]
    fn hosts_that_cannot_hold_their_labs_are_named() {
        let p = |team: &str, host: &str, create: bool| Placement {
            team: team.into(),
            lab: format!("klab-{team}"),
            host: host.into(),
            nodes: 2,
            create,
        };
        let placements =
            [p("a", "local", true), p("b", "local", true), p("c", "local", false), p("d", "ssh://x", true)];
        let hosts = [
            HostInfo { host: "local".into(), mem_bytes: 4 << 30, cpus: 2, error: None },
            HostInfo { host: "ssh://x".into(), mem_bytes: 0, cpus: 0, error: Some("connection refused".into()) },
        ];
        let plans = plan_hosts(&placements, &hosts);
        assert_eq!(plans[0].labs, ["klab-a", "klab-b", "klab-c"]);
        assert_eq!(plans[0].new_nodes, 4);
        assert!(plans[0].problem.as_deref().unwrap().contains("4 new node(s) need about 4.0 GiB"), "{:?}", plans[0]);
        assert_eq!(plans[0].parallel, 1);
        assert!(plans[1].problem.as_deref().unwrap().contains("connection refused"));
        let hosts = [HostInfo { host: "local".into(), mem_bytes: 16 << 30, cpus: 8, error: None }];
        let plans = plan_hosts(&placements[..3], &hosts);
        assert_eq!((plans[0].problem.as_deref(), plans[0].parallel), (None, 3));
    }

    #[test]
    fn charts_draw_every_team() {
        let (g, cat) = game();
        let sc = &cat.scenario("etcd-quota").unwrap().item;
        let mut s = session(&g);
        s.check_attempts = vec![attempt("2026-01-01T10:04:00Z", true, false)];
        s.fixed_at = Some("2026-01-01T10:04:00Z".into());
        let rows =
            board(&g, &[(Some(s.clone()), Some(sc)), (None, Some(sc)), (None, Some(sc))], jiff::Timestamp::now());
        let svg = chart_time_to_fix(&rows.iter().map(Bar::from).collect::<Vec<_>>(), 600);
        assert_eq!(svg.matches("<rect x=").count(), 3, "{svg}");
        assert!(svg.contains("3.0 min"), "{svg}");
        let m = marks(&g, "blue", &s);
        assert_eq!(
            m.iter().map(|m| (m.at, m.kind.as_str())).collect::<Vec<_>>(),
            [(180, "check-pass"), (180, "fixed")]
        );
        let svg = chart_timeline(&["blue".into(), "red".into()], &m, 600);
        assert!(svg.contains("blue +03:00: check run: 1/1 passing"), "{svg}");
    }
}
