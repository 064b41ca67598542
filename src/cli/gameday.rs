//! `klab gameday`: a facilitator breaks one lab per team, teams race, the board keeps score.
//!
//! Each team's work runs as a klab child process on the team's own lab (`--lab klab-<team>`,
//! with the team's Docker host in its environment): the same guard, lock and journal as a
//! trainee's own commands, labs prepared side by side, and a crash of one leaves the others
//! alone. The game's state is on disk after every step; `start` resumes, `board` reads it.

use super::args::{GamedayCommand, Global, OutputFormat, ReportFormat};
use super::output::{self, BOLD, DIM, GREEN, RED, YELLOW, paint};
use super::{Failure, Outcome};
use crate::exit;
use crate::gameday::roster::{self, Roster};
use crate::gameday::{self, GameState, HostInfo, Placement, Row, TeamStatus};
use crate::scenario::catalog::Catalog;
use crate::session::journal;
use crate::session::record::Session;
use crate::session::state::{LabDir, read_json, state_root, write_json};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const LOCAL: &str = "local";

fn dir(g: &Global) -> PathBuf {
    state_root(g.state_dir.as_deref()).join("gameday")
}

fn state_path(g: &Global) -> PathBuf {
    dir(g).join("state.json")
}

fn results_path(g: &Global) -> PathBuf {
    dir(g).join("results.json")
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::new(exit::FAILED, e.to_string())
}

fn load_state(g: &Global) -> Result<GameState, Failure> {
    read_json::<GameState>(&state_path(g)).map_err(fail)?.ok_or_else(|| {
        Failure::new(exit::NOT_READY, "no game day is running").help("start one with `klab gameday start ROSTER`")
    })
}

fn save_state(g: &Global, s: &GameState) -> Result<(), Failure> {
    write_json(&state_path(g), s).map_err(fail)
}

/// The game's own lock: one facilitator command that changes the game at a time.
struct GameLock {
    _g: fd_lock::RwLockWriteGuard<'static, File>,
}

fn lock(g: &Global) -> Result<GameLock, Failure> {
    let d = dir(g);
    std::fs::create_dir_all(&d).map_err(|e| fail(format!("cannot create {}: {e}", d.display())))?;
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(d.join("lock"))
        .map_err(|e| fail(format!("cannot open the game day's lock: {e}")))?;
    let l: &'static mut fd_lock::RwLock<File> = Box::leak(Box::new(fd_lock::RwLock::new(f)));
    match l.try_write() {
        Ok(g) => Ok(GameLock { _g: g }),
        Err(_) => Err(Failure::new(exit::BUSY, "another `klab gameday` command is changing the game day")
            .help("wait for it (or stop it); `klab gameday board` works meanwhile")),
    }
}

/// Reads and lints a roster; prints its diagnostics.
fn read_roster(path: &Path, cat: &Catalog) -> Result<(Roster, Vec<crate::scenario::diag::Diagnostic>), Failure> {
    let bytes = crate::scenario::yaml::read_capped(path)
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot read {}: {e}", path.display())))?;
    let file = path.display().to_string();
    let (r, diags) = roster::load(&file, &bytes, cat);
    for d in &diags {
        anstream::eprintln!("{d}");
    }
    match r {
        Some(r) => Ok((r, diags)),
        None => Err(Failure::new(
            exit::FAILED,
            format!("{}: {} error(s) in the roster", file, diags.iter().filter(|d| d.is_error()).count()),
        )),
    }
}

/// `--team NAME`: the team's lab, and its Docker host for every docker and kind call.
pub fn resolve_team(g: &mut Global) -> Result<(), Failure> {
    let Some(team) = g.team.clone() else { return Ok(()) };
    let st = load_state(g).map_err(|f| f.help("`--team` names a team of the running game day"))?;
    let Some(t) = st.teams.iter().find(|t| t.name == team) else {
        return Err(Failure::new(exit::USAGE, format!("no team `{team}` in game day `{}`", st.roster.metadata.name))
            .help(format!("its teams: {}", st.teams.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "))));
    };
    if g.lab != "klab" && g.lab != t.lab {
        return Err(Failure::new(
            exit::USAGE,
            format!("--team {team} works on lab `{}`; --lab says `{}`", t.lab, g.lab),
        ));
    }
    g.lab = t.lab.clone();
    if let Some(d) = st.docker_of(&team) {
        crate::cluster::process::set_env_overlay(d.env());
    }
    Ok(())
}

/// `klab hint` in a game day: the roster's hint policy.
pub fn hints_left(g: &Global, taken: usize) -> Result<(), Failure> {
    let Ok(Some(st)) = read_json::<GameState>(&state_path(g)) else { return Ok(()) };
    if st.team_of_lab(&g.lab).is_none() {
        return Ok(());
    }
    if st.ended_at.is_some() {
        return Err(Failure::new(exit::FAILED, "the game day is over: no more hints"));
    }
    match st.roster.hints.max {
        Some(m) if taken >= m => Err(Failure::new(
            exit::FAILED,
            format!("game day `{}` allows {m} hint(s) per team; you have had them", st.roster.metadata.name),
        )),
        _ => Ok(()),
    }
}

/// `klab check --final`: only for `gameday end`, once the clock has stopped.
pub fn allow_final_run(g: &Global) -> Result<(), Failure> {
    let st = load_state(g)?;
    match st.team_of_lab(&g.lab) {
        Some(_) if st.ended_at.is_some() => Ok(()),
        Some(_) => Err(Failure::new(exit::USAGE, "the final check runs when `klab gameday end` stops the clock")),
        None => Err(Failure::new(exit::USAGE, format!("lab `{}` is not a team's lab in this game day", g.lab))),
    }
}

pub fn run(g: &Global, cat: &Catalog, c: &GamedayCommand) -> Outcome {
    match c {
        GamedayCommand::Lint { roster } => {
            let (_, diags) = read_roster(roster, cat)?;
            if g.output == OutputFormat::Json {
                output::print_json(&diags)?;
            }
            anstream::eprintln!(
                "{} {}: roster is valid ({} warning(s))",
                paint(GREEN, "✓"),
                roster.display(),
                diags.len()
            );
            Ok(exit::OK)
        }
        GamedayCommand::Start { roster, force } => start(g, cat, roster, *force),
        GamedayCommand::Board { once, interval } => board(g, cat, *once, interval.as_std()),
        GamedayCommand::End => end(g, cat),
        GamedayCommand::Reset => each_lab(g, "reset", false),
        GamedayCommand::Down => each_lab(g, "down", true),
        GamedayCommand::Report { format, out } => report(g, cat, *format, out.as_deref()),
    }
}

// --- child processes ------------------------------------------------------------------------

/// A klab child on one team's lab.
fn child(g: &Global, lab: &str, env: &[(String, String)], args: &[&str]) -> Result<tokio::process::Command, Failure> {
    let exe = std::env::current_exe().map_err(|e| fail(format!("cannot find klab's own binary: {e}")))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--color").arg("never").arg("--lab").arg(lab);
    cmd.arg("--state-dir").arg(state_root(g.state_dir.as_deref()));
    for c in &g.catalog {
        cmd.arg("--catalog").arg(c);
    }
    if let Some(k) = &g.kubeconfig {
        cmd.arg("--kubeconfig").arg(k);
    }
    cmd.args(args);
    cmd.env_remove("KLAB_LAB").env_remove("KLAB_TEAM").env_remove("KLAB_CATALOG").envs(env.iter().cloned());
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    Ok(cmd)
}

/// Runs a child, printing its lines as `[team] …`; returns its exit code and, when `capture`,
/// its standard output (else that is printed too).
async fn run_child(team: &str, mut cmd: tokio::process::Command, capture: bool) -> (i32, String) {
    let mut ch = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (exit::FAILED, format!("cannot start klab: {e}")),
    };
    let tag = paint(DIM, format!("[{team}]"));
    let err = ch.stderr.take().map(|e| {
        let tag = tag.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(e).lines();
            let mut last = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                anstream::eprintln!("{tag} {l}");
                last = l;
            }
            last
        })
    });
    let mut out = String::new();
    if let Some(o) = ch.stdout.take() {
        let mut lines = BufReader::new(o).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if capture {
                out.push_str(&l);
                out.push('\n');
            } else {
                anstream::eprintln!("{tag} {l}");
            }
        }
    }
    let code = ch.wait().await.ok().and_then(|s| s.code()).unwrap_or(exit::FAILED);
    let last = match err {
        Some(h) => h.await.unwrap_or_default(),
        None => String::new(),
    };
    if code != 0 && !capture {
        out = last;
    }
    (code, out)
}

/// Like [`run_child`], waiting (up to 15 min) while another klab holds the team's lab — e.g. an
/// orphan of a facilitator's klab that was killed.
async fn run_child_waiting(
    g: &Global,
    team: &str,
    lab: &str,
    env: &[(String, String)],
    args: &[&str],
    capture: bool,
) -> (i32, String) {
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        let cmd = match child(g, lab, env, args) {
            Ok(c) => c,
            Err(f) => return (f.code, f.message),
        };
        let (code, out) = run_child(team, cmd, capture).await;
        if code != exit::BUSY || started.elapsed() > Duration::from_secs(900) {
            return (code, out);
        }
        if !said {
            anstream::eprintln!("{} {team}: another klab is still working on {lab}; waiting for it…", paint(DIM, "…"));
            said = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn docker_env(st: &GameState, team: &str) -> Vec<(String, String)> {
    st.docker_of(team).map(|d| d.env()).unwrap_or_default()
}

fn host_of(st: &GameState, team: &str) -> String {
    st.docker_of(team).map(|d| d.label()).unwrap_or_else(|| LOCAL.into())
}

// --- start ----------------------------------------------------------------------------------

async fn host_info(host: &str, env: &[(String, String)]) -> HostInfo {
    let docker = std::env::var("KLAB_DOCKER").unwrap_or_else(|_| "docker".into());
    let mut cmd = tokio::process::Command::new(docker);
    cmd.args(["info", "--format", "{{.MemTotal}} {{.NCPU}}"]).envs(env.iter().cloned()).kill_on_drop(true);
    cmd.stdin(Stdio::null());
    let bad = |e: String| HostInfo { host: host.into(), mem_bytes: 0, cpus: 0, error: Some(e) };
    match tokio::time::timeout(Duration::from_secs(30), cmd.output()).await {
        Err(_) => bad("`docker info` did not answer within 30 s".into()),
        Ok(Err(e)) => bad(format!("cannot run docker: {e}")),
        Ok(Ok(o)) if !o.status.success() => bad(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Ok(Ok(o)) => {
            let text = String::from_utf8_lossy(&o.stdout);
            let mut it = text.split_whitespace();
            match (it.next().and_then(|m| m.parse().ok()), it.next().and_then(|c| c.parse().ok())) {
                (Some(mem), Some(cpus)) => HostInfo { host: host.into(), mem_bytes: mem, cpus, error: None },
                _ => bad(format!("unexpected `docker info` output: {}", text.trim())),
            }
        }
    }
}

async fn kind_clusters(env: &[(String, String)]) -> Result<Vec<String>, String> {
    let kind = std::env::var("KLAB_KIND").unwrap_or_else(|_| "kind".into());
    let mut cmd = tokio::process::Command::new(kind);
    cmd.args(["get", "clusters"]).envs(env.iter().cloned()).stdin(Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(60), cmd.output()).await {
        Err(_) => Err("`kind get clusters` did not answer within 60 s".into()),
        Ok(Err(e)) => Err(format!("cannot run kind: {e}")),
        Ok(Ok(o)) if !o.status.success() => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Ok(Ok(o)) => Ok(String::from_utf8_lossy(&o.stdout).lines().map(|l| l.trim().to_string()).collect()),
    }
}

fn start(g: &Global, cat: &Catalog, path: &Path, force: bool) -> Outcome {
    let (roster, _) = read_roster(path, cat)?;
    let _lock = lock(g)?;
    let st = match read_json::<GameState>(&state_path(g)).map_err(fail)? {
        Some(old) if old.ended_at.is_none() && old.roster.metadata.name != roster.metadata.name => {
            return Err(Failure::new(
                exit::FAILED,
                format!("game day `{}` is still running", old.roster.metadata.name),
            )
            .help("`klab gameday end`, then `klab gameday reset` (or `down`) before starting another"));
        }
        Some(old) if old.ended_at.is_none() => {
            if old.roster != roster {
                return Err(Failure::new(
                    exit::FAILED,
                    format!("game day `{}` was started from a different roster", roster.metadata.name),
                )
                .help("a running game day keeps its roster; end it first to change teams or drills"));
            }
            anstream::eprintln!("{} resuming game day `{}`", paint(BOLD, "→"), roster.metadata.name);
            old
        }
        Some(_) => {
            return Err(Failure::new(exit::FAILED, "the last game day has ended but its labs are still there")
                .help("`klab gameday reset` (labs kept) or `klab gameday down` first; its report stays available"));
        }
        None => GameState::new(&path.display().to_string(), roster, &journal::now()),
    };
    save_state(g, &st)?;
    let rt = super::runtime()?;
    let code = rt.block_on(async {
        // Which labs exist already, host by host; what the new ones need; whether it fits.
        let mut hosts: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for t in &st.teams {
            let h = host_of(&st, &t.name);
            if !hosts.iter().any(|(x, _)| x == &h) {
                hosts.push((h, docker_env(&st, &t.name)));
            }
        }
        let mut infos = Vec::new();
        let mut placements = Vec::new();
        for (h, env) in &hosts {
            let info = host_info(h, env).await;
            let existing = kind_clusters(env).await.unwrap_or_default();
            for t in st.teams.iter().filter(|t| &host_of(&st, &t.name) == h) {
                let nodes = st
                    .roster
                    .nodes
                    .or_else(|| cat.scenario(&t.drill).map(|e| e.item.profile.nodes))
                    .unwrap_or(1)
                    .max(1);
                placements.push(Placement {
                    team: t.name.clone(),
                    lab: t.lab.clone(),
                    host: h.clone(),
                    nodes,
                    create: !existing.contains(&t.lab),
                });
            }
            infos.push(info);
        }
        let plans = gameday::plan_hosts(&placements, &infos);
        anstream::eprintln!("{}", paint(BOLD, format!("Game day `{}`: where the labs go", st.roster.metadata.name)));
        for p in &plans {
            let labs: Vec<String> = placements
                .iter()
                .filter(|x| x.host == p.host)
                .map(|x| format!("{} ({} node(s){})", x.lab, x.nodes, if x.create { ", new" } else { ", exists" }))
                .collect();
            anstream::eprintln!(
                "  {} {}: {} — new nodes need ≈{:.1} GiB of {:.1} GiB; {} at a time",
                if p.problem.is_some() { paint(RED, "✗") } else { paint(GREEN, "✓") },
                p.host,
                labs.join(", "),
                gameday::gib(p.need_bytes),
                gameday::gib(p.have_bytes),
                p.parallel
            );
            if let Some(why) = &p.problem {
                anstream::eprintln!("      {}", paint(RED, why));
            }
        }
        if plans.iter().any(|p| p.problem.is_some()) && !force {
            return Err(Failure::new(exit::NOT_READY, "the Docker hosts cannot hold these labs; nothing was created")
                .help("place teams on other hosts (`docker: {host: …}` per team in the roster), fewer nodes, or --force to try anyway"));
        }
        // Prepare every team not ready yet, host by host in parallel, within each host's share.
        let state = Arc::new(tokio::sync::Mutex::new(st.clone()));
        let mut jobs = Vec::new();
        for p in &plans {
            let sem = Arc::new(tokio::sync::Semaphore::new(p.parallel.max(1)));
            for pl in placements.iter().filter(|x| x.host == p.host) {
                let t = st.teams.iter().find(|t| t.name == pl.team).cloned().expect("placement of a known team");
                if t.status == TeamStatus::Injected {
                    anstream::eprintln!("{} {}: already broken ({})", paint(GREEN, "✓"), t.name, t.drill);
                    continue;
                }
                let sem = sem.clone();
                let state = state.clone();
                let env = docker_env(&st, &t.name);
                let api_addr = st.docker_of(&t.name).and_then(|d| d.api_server_address.clone());
                let set: Vec<String> = if st.roster.drill.as_deref() == Some(t.drill.as_str()) {
                    st.roster.set.iter().map(|(k, v)| format!("{k}={v}")).collect()
                } else {
                    vec![]
                };
                let nodes = pl.nodes;
                let g2 = g.clone();
                jobs.push(async move {
                    let _permit = sem.acquire().await;
                    let result = prepare(&g2, &t.name, &t.lab, &t.drill, &set, nodes, &env, api_addr).await;
                    let mut s = state.lock().await;
                    if let Some(ts) = s.teams.iter_mut().find(|x| x.name == t.name) {
                        match &result {
                            Ok(()) => {
                                ts.status = TeamStatus::Injected;
                                ts.error = None;
                            }
                            Err(e) => {
                                ts.status = TeamStatus::Failed;
                                ts.error = Some(e.clone());
                            }
                        }
                    }
                    let _ = save_state(&g2, &s);
                    result.map_err(|e| (t.name.clone(), e))
                });
            }
        }
        let results = futures::future::join_all(jobs).await;
        let mut st = state.lock().await.clone();
        let failed: Vec<(String, String)> = results.into_iter().filter_map(Result::err).collect();
        if !failed.is_empty() {
            for (t, e) in &failed {
                anstream::eprintln!("{} {t}: {e}", paint(RED, "✗"));
            }
            return Err(Failure::new(
                exit::FAILED,
                format!("{} of {} team lab(s) could not be prepared; the clock has not started", failed.len(), st.teams.len()),
            )
            .help("fix what is said above and run `klab gameday start` again: it resumes with the teams not ready"));
        }
        if st.clock_start.is_none() {
            st.clock_start = Some(journal::now());
            save_state(g, &st)?;
        }
        anstream::eprintln!(
            "{} every lab is broken; the clock runs: {} min for all {} team(s). `klab gameday board` keeps score.",
            paint(GREEN, "✓"),
            st.roster.time_limit.as_secs() / 60,
            st.teams.len()
        );
        Ok(exit::OK)
    })?;
    Ok(code)
}

/// One team's lab: create it (with the roster's node count), then break it. A drill already
/// injected there (klab stopped after it but before recording it) counts as done; one a crash
/// left half-injected is reset first; a klab still working on the lab (an orphan of a killed
/// `gameday start`) is waited for.
#[allow(clippy::too_many_arguments)]
async fn prepare(
    g: &Global,
    team: &str,
    lab: &str,
    drill: &str,
    set: &[String],
    nodes: u8,
    env: &[(String, String)],
    api_addr: Option<String>,
) -> Result<(), String> {
    let labdir = LabDir::new(&state_root(g.state_dir.as_deref()), lab);
    let mut env = env.to_vec();
    if let Some(a) = api_addr {
        env.push(("KLAB_API_SERVER_ADDRESS".into(), a));
    }
    let n = nodes.to_string();
    let mut args = vec!["drill", drill];
    for s in set {
        args.push("--set");
        args.push(s);
    }
    let started = std::time::Instant::now();
    let mut said_busy = false;
    let mut reset_done = false;
    loop {
        match read_json::<Session>(&labdir.session_file()) {
            Ok(Some(s)) if s.scenario == drill && s.injected_at.is_some() => {
                anstream::eprintln!("{} {team}: `{drill}` is injected in {lab}", paint(GREEN, "✓"));
                return Ok(());
            }
            Ok(Some(s)) if s.scenario != drill => {
                return Err(format!(
                    "lab {lab} runs another drill (`{}`); `klab --lab {lab} reset` it, or give the team another lab",
                    s.scenario
                ));
            }
            _ => {}
        }
        let up = child(g, lab, &env, &["up", "--nodes", &n]).map_err(|f| f.message)?;
        let (mut code, mut last) = run_child(team, up, false).await;
        let mut which = "up";
        if code == 0 {
            let cmd = child(g, lab, &env, &args).map_err(|f| f.message)?;
            (code, last) = run_child(team, cmd, false).await;
            which = "drill";
            if code == 0 {
                return Ok(());
            }
        }
        if code == exit::BUSY && started.elapsed() < Duration::from_secs(900) {
            if !said_busy {
                anstream::eprintln!(
                    "{} {team}: another klab is still working on {lab}; waiting for it…",
                    paint(DIM, "…")
                );
                said_busy = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // The other klab may have finished the very injection between our look and our try.
        let now = read_json::<Session>(&labdir.session_file());
        if matches!(&now, Ok(Some(s)) if s.scenario == drill && s.injected_at.is_some()) {
            continue;
        }
        let half_done = matches!(now, Ok(Some(s)) if s.scenario == drill && s.injected_at.is_none());
        if half_done && !reset_done {
            anstream::eprintln!(
                "{} {team}: a crash left `{drill}` half-injected in {lab}; resetting it first",
                paint(YELLOW, "!")
            );
            let cmd = child(g, lab, &env, &["reset"]).map_err(|f| f.message)?;
            let (rc, why) = run_child(team, cmd, false).await;
            if rc != 0 {
                return Err(format!("`klab reset` of the half-injected drill failed (exit {rc}): {why}"));
            }
            reset_done = true;
            continue;
        }
        return Err(format!("`klab {which}` failed (exit {code}): {last}"));
    }
}

// --- board ----------------------------------------------------------------------------------

fn sessions_of<'c>(
    g: &Global,
    st: &GameState,
    cat: &'c Catalog,
) -> Vec<(Option<Session>, Option<&'c crate::scenario::model::Scenario>)> {
    let root = state_root(g.state_dir.as_deref());
    st.teams
        .iter()
        .map(|t| {
            let s = read_json::<Session>(&LabDir::new(&root, &t.lab).session_file())
                .ok()
                .flatten()
                .filter(|s| s.scenario == t.drill);
            (s, cat.scenario(&t.drill).map(|e| &e.item))
        })
        .collect()
}

fn rows(g: &Global, st: &GameState, cat: &Catalog) -> Vec<Row> {
    gameday::board(st, &sessions_of(g, st, cat), jiff::Timestamp::now())
}

fn board_json(st: &GameState, rows: &[Row]) -> Value {
    let now = jiff::Timestamp::now();
    serde_json::json!({
        "name": st.roster.metadata.name,
        "title": st.roster.metadata.title,
        "clockStart": st.clock_start,
        "endedAt": st.ended_at,
        "timeLimitSeconds": st.roster.time_limit.as_secs(),
        "elapsedSeconds": st.clock_secs(now),
        "teams": rows,
    })
}

fn print_board(st: &GameState, rows: &[Row]) {
    let now = jiff::Timestamp::now();
    let limit = st.roster.time_limit.as_secs();
    let clock = match (st.clock_secs(now), &st.ended_at) {
        (None, _) => "clock not started (labs being prepared)".to_string(),
        (Some(e), Some(_)) => format!("ended at {} of {}", gameday::clock_text(e), gameday::clock_text(limit)),
        (Some(e), None) if e > limit => {
            format!("{} — {} over the limit", gameday::clock_text(e), gameday::clock_text(e - limit))
        }
        (Some(e), None) => format!(
            "{} of {} — {} left",
            gameday::clock_text(e),
            gameday::clock_text(limit),
            gameday::clock_text(limit - e)
        ),
    };
    anstream::println!("{}  {}", paint(BOLD, format!("Game day `{}`", st.roster.metadata.name)), clock);
    anstream::println!(
        "{:<3} {:<14} {:<22} {:<10} {:>7} {:>14} {:>5} {:>6} {:>6} {:>7}",
        "#",
        "TEAM",
        "DRILL",
        "STATE",
        "CHECKS",
        "DIAGNOSIS",
        "HINTS",
        "WRONG",
        "SCORE",
        "TIME"
    );
    for r in rows {
        let checks = match (r.checks_passing, r.checks_total) {
            (Some(p), Some(t)) => format!("{p}/{t}"),
            _ => "—".into(),
        };
        let state = format!("{:<10}", r.state);
        let state = match r.state.as_str() {
            "fixed" => paint(GREEN, state),
            "failed" | "not-fixed" | "gave-up" => paint(RED, state),
            _ => paint(YELLOW, state),
        };
        let score = format!("{}{}", r.score, if r.provisional { "*" } else { "" });
        anstream::println!(
            "{:<3} {:<14} {:<22} {} {:>7} {:>14} {:>5} {:>6} {:>6} {:>7}",
            r.rank,
            r.team,
            r.drill,
            state,
            checks,
            gameday::diagnosis_text(r),
            r.hints,
            r.wrong_attempts,
            score,
            r.seconds.map(gameday::clock_text).unwrap_or_else(|| "—".into())
        );
        if let Some(e) = &r.error {
            anstream::println!("    {}", paint(RED, e));
        }
    }
    if rows.iter().any(|r| r.provisional) {
        anstream::println!("{}", paint(DIM, "* provisional: not fixed yet. CHECKS from the team's last `klab check`."));
    }
}

fn board(g: &Global, cat: &Catalog, once: bool, interval: Duration) -> Outcome {
    let watch = !once && g.output == OutputFormat::Table && std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let st = load_state(g)?;
        let rows = rows(g, &st, cat);
        if g.output == OutputFormat::Json {
            output::print_json(&board_json(&st, &rows))?;
            return Ok(exit::OK);
        }
        if watch {
            anstream::print!("\x1b[2J\x1b[H");
        }
        print_board(&st, &rows);
        if !watch || st.ended_at.is_some() {
            return Ok(exit::OK);
        }
        anstream::println!(
            "{}",
            paint(DIM, format!("refreshing every {}s; Ctrl-C leaves (the game goes on)", interval.as_secs()))
        );
        std::thread::sleep(interval);
    }
}

// --- end ------------------------------------------------------------------------------------

fn end(g: &Global, cat: &Catalog) -> Outcome {
    let _lock = lock(g)?;
    let mut st = load_state(g)?;
    if st.clock_start.is_none() {
        return Err(Failure::new(exit::FAILED, "the clock has not started: some labs are not ready")
            .help("`klab gameday start ROSTER` finishes preparing them; `klab gameday reset` gives up"));
    }
    if st.ended_at.is_none() {
        st.ended_at = Some(journal::now());
        save_state(g, &st)?;
        anstream::eprintln!("{} clock stopped; running every team's final checks…", paint(BOLD, "→"));
    } else {
        anstream::eprintln!("{} the clock had stopped; finishing the final checks…", paint(BOLD, "→"));
    }
    let rt = super::runtime()?;
    let st2 = st.clone();
    let finals: Vec<(String, Result<(), String>, Option<Value>)> = rt.block_on(async {
        let jobs = st2.teams.iter().map(|t| {
            let env = docker_env(&st2, &t.name);
            let g = g.clone();
            let t = t.clone();
            async move {
                if t.status == TeamStatus::Final {
                    let debrief = debrief_of(&g, &t.name, &t.lab, &env).await;
                    return (t.name, Ok(()), debrief);
                }
                if t.status != TeamStatus::Injected {
                    return (t.name, Err(t.error.unwrap_or_else(|| "the lab was never broken".into())), None);
                }
                let (code, out) =
                    run_child_waiting(&g, &t.name, &t.lab, &env, &["check", "--final", "-o", "json"], true).await;
                let res = match serde_json::from_str::<Value>(&out) {
                    Ok(v) => {
                        let fixed = v.get("fixed").and_then(Value::as_bool).unwrap_or(false);
                        anstream::eprintln!(
                            "{} {}: {}",
                            if fixed { paint(GREEN, "✓") } else { paint(RED, "✗") },
                            t.name,
                            if fixed { "fixed" } else { "not fixed" }
                        );
                        Ok(())
                    }
                    Err(_) => Err(format!("the final check failed (exit {code})")),
                };
                let debrief = debrief_of(&g, &t.name, &t.lab, &env).await;
                (t.name, res, debrief)
            }
        });
        futures::future::join_all(jobs).await
    });
    let mut debriefs = serde_json::Map::new();
    for (team, res, debrief) in finals {
        if let Some(ts) = st.teams.iter_mut().find(|t| t.name == team) {
            match res {
                Ok(()) => ts.status = TeamStatus::Final,
                Err(e) if ts.status == TeamStatus::Injected => {
                    anstream::eprintln!("{} {team}: {e}", paint(RED, "✗"));
                    ts.error = Some(e);
                }
                Err(_) => {}
            }
        }
        if let Some(d) = debrief {
            debriefs.insert(team, d);
        }
    }
    save_state(g, &st)?;
    let rows = rows(g, &st, cat);
    let results = results_value(g, &st, &rows, cat, Value::Object(debriefs));
    write_json(&results_path(g), &results).map_err(fail)?;
    if g.output == OutputFormat::Json {
        output::print_json(&board_json(&st, &rows))?;
    } else {
        print_board(&st, &rows);
        anstream::eprintln!(
            "{} results in {}; `klab gameday report --format html --out debrief.html` for the debrief",
            paint(GREEN, "✓"),
            results_path(g).display()
        );
    }
    let unfinished = st.teams.iter().filter(|t| t.status != TeamStatus::Final).count();
    Ok(if unfinished == 0 { exit::OK } else { exit::FAILED })
}

/// The team's debrief as `klab report --format json` builds it (audit timeline included).
async fn debrief_of(g: &Global, team: &str, lab: &str, env: &[(String, String)]) -> Option<Value> {
    let (code, out) = run_child_waiting(g, team, lab, env, &["report", "--format", "json"], true).await;
    if code != 0 {
        return None;
    }
    serde_json::from_str(&out).ok()
}

/// Everything the game-day report shows, kept on disk so the report outlives the labs.
fn results_value(g: &Global, st: &GameState, rows: &[Row], cat: &Catalog, debriefs: Value) -> Value {
    let sessions = sessions_of(g, st, cat);
    let mut marks = Vec::new();
    for (t, (s, _)) in st.teams.iter().zip(&sessions) {
        if let Some(s) = s {
            marks.extend(gameday::marks(st, &t.name, s));
        }
    }
    marks.sort_by(|a, b| a.at.cmp(&b.at).then(a.team.cmp(&b.team)));
    let mut v = board_json(st, rows);
    v["marks"] = serde_json::to_value(&marks).unwrap_or(Value::Null);
    v["debriefs"] = debriefs;
    v["rules"] = serde_json::to_value(st.roster.scoring.rules()).unwrap_or(Value::Null);
    v["hintsMax"] = serde_json::to_value(st.roster.hints.max).unwrap_or(Value::Null);
    v
}

// --- reset, down ----------------------------------------------------------------------------

fn each_lab(g: &Global, verb: &str, archive: bool) -> Outcome {
    let _lock = lock(g)?;
    let st = load_state(g)?;
    if st.ended_at.is_none() && st.clock_start.is_some() {
        anstream::eprintln!("{} the game day had not ended: its results are not recorded", paint(YELLOW, "!"));
    }
    let rt = super::runtime()?;
    let results = rt.block_on(async {
        let jobs = st.teams.iter().map(|t| {
            let env = docker_env(&st, &t.name);
            let g = g.clone();
            let t = t.clone();
            let verb = verb.to_string();
            async move {
                let res = run_child_waiting(&g, &t.name, &t.lab, &env, &[verb.as_str()], false).await;
                (t.name, res)
            }
        });
        futures::future::join_all(jobs).await
    });
    let failed: Vec<_> = results.iter().filter(|(_, (c, _))| *c != 0 && *c != exit::NOT_READY).collect();
    for (t, (c, why)) in &failed {
        anstream::eprintln!("{} {t}: `klab {verb}` failed (exit {c}): {why}", paint(RED, "✗"));
    }
    if !failed.is_empty() {
        return Err(Failure::new(exit::FAILED, format!("`klab {verb}` failed for {} team(s)", failed.len()))
            .help(format!("run `klab gameday {verb}` again, or `klab --team <team> {verb}`")));
    }
    if archive {
        // The game is over for good: keep its state and results for the report.
        let stamp = jiff::Timestamp::now().as_second();
        let to = dir(g).join("archive").join(format!("{}-{stamp}", st.roster.metadata.name));
        std::fs::create_dir_all(&to).map_err(fail)?;
        for f in ["state.json", "results.json"] {
            let from = dir(g).join(f);
            if from.exists() {
                std::fs::rename(&from, to.join(f)).map_err(fail)?;
            }
        }
        anstream::eprintln!("{} every team's lab is gone; the game day is kept in {}", paint(GREEN, "✓"), to.display());
    } else {
        anstream::eprintln!("{} every team's lab is back to how klab found it", paint(GREEN, "✓"));
    }
    Ok(exit::OK)
}

// --- report ---------------------------------------------------------------------------------

/// The results to report on: the current game day's, else the newest archived one.
fn results_for_report(g: &Global) -> Result<Value, Failure> {
    if let Some(v) = read_json::<Value>(&results_path(g)).map_err(fail)? {
        return Ok(v);
    }
    let mut archived: Vec<PathBuf> = std::fs::read_dir(dir(g).join("archive"))
        .map(|rd| rd.flatten().map(|e| e.path().join("results.json")).filter(|p| p.exists()).collect())
        .unwrap_or_default();
    archived.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    match archived.pop() {
        Some(p) => read_json::<Value>(&p).map_err(fail)?.ok_or_else(|| fail("empty results")),
        None => Err(Failure::new(exit::NOT_READY, "no game-day results yet")
            .help("`klab gameday end` runs the final checks and writes them")),
    }
}

pub fn render_report(cat: &Catalog, results: &Value, format: ReportFormat) -> Result<String, Failure> {
    let mut v = results.clone();
    let limit = v.get("timeLimitSeconds").and_then(Value::as_u64).unwrap_or(0);
    let bars: Vec<gameday::Bar> =
        v.get("teams").and_then(|t| serde_json::from_value(t.clone()).ok()).unwrap_or_default();
    let marks: Vec<gameday::Mark> =
        v.get("marks").and_then(|m| serde_json::from_value(m.clone()).ok()).unwrap_or_default();
    let names: Vec<String> = bars.iter().map(|r| r.team.clone()).collect();
    let (name, autoescape) = match format {
        ReportFormat::Json => return serde_json::to_string_pretty(&v).map_err(fail),
        ReportFormat::Markdown => ("gameday.md.tera", false),
        ReportFormat::Html => ("gameday.html.tera", true),
    };
    v["chartTimeToFix"] = Value::String(gameday::chart_time_to_fix(&bars, limit));
    v["chartTimeline"] = Value::String(gameday::chart_timeline(&names, &marks, limit));
    let tpl = cat.template(name).ok_or_else(|| fail(format!("templates/{name} is missing")))?;
    let mut ctx = tera::Context::new();
    ctx.insert("g", &v);
    tera::Tera::default().render_str(tpl, &ctx, autoescape).map_err(|e| fail(format!("templates/{name}: {e}")))
}

fn report(g: &Global, cat: &Catalog, format: ReportFormat, out: Option<&Path>) -> Outcome {
    let results = results_for_report(g)?;
    let text = render_report(cat, &results, format)?;
    match out {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| fail(format!("cannot write {}: {e}", p.display())))?;
            anstream::eprintln!("wrote {}", p.display());
        }
        None => anstream::print!("{text}"),
    }
    Ok(exit::OK)
}
