//! The command line, defined once: doc comments are the help, `after_help` holds examples, and
//! shell completions are generated from the same definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "klab",
    version,
    about = "Break a local Kubernetes lab for real, then check the trainee's diagnosis and fix.",
    long_about = "klab runs incident drills on a local kind cluster: a scenario injects real faults \
(etcd quota exhaustion, a half-written NetworkPolicy, IP forwarding off, an admission policy that \
blocks system pods, …), the trainee investigates with kubectl, crictl, etcdctl and the audit log, \
and klab checks the diagnosis and whether the cluster really works again.",
    after_help = "Examples:\n  klab list --tag etcd\n  klab show kluster-005\n  klab drill etcd-quota\n  klab check\n  klab lint scenarios/ checks/\n\n",
    after_long_help = concat!("Examples:\n  klab list --tag etcd\n  klab show kluster-005\n  klab drill etcd-quota\n  klab check\n  klab lint scenarios/ checks/\n\n", "Exit codes: 0 ok · 1 failed (lint errors, failing checks) · 2 usage · 3 not ready (missing tool, no lab or session) · 4 refused (not a klab lab) · 5 cluster error · 6 lab busy · 130 interrupted"),
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Extra scenario/check folders; they add to or override the built-in catalog by id.
    #[arg(long = "catalog", global = true, value_name = "DIR", env = "KLAB_CATALOG", value_delimiter = ':')]
    pub catalog: Vec<PathBuf>,

    /// Output format for commands that print results.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// When to colour the output (only on a terminal by default; NO_COLOR is honoured).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// The lab (kind cluster) to work on.
    #[arg(long, global = true, env = "KLAB_LAB", default_value = "klab")]
    pub lab: String,

    /// In a game day: work on this team's lab (`klab-<team>`, on the team's Docker host).
    #[arg(long, global = true, env = "KLAB_TEAM", value_name = "TEAM")]
    pub team: Option<String>,

    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config, as kubectl).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Where klab keeps sessions and journals (default: $XDG_STATE_HOME/klab).
    #[arg(long, global = true, env = "KLAB_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Act on this kubeconfig context although klab did not create it as a lab. Faults are
    /// real: never name a cluster anyone depends on.
    #[arg(long = "i-know-context", global = true, value_name = "CONTEXT")]
    pub override_context: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the drills in the catalog.
    #[command(
        after_help = "Examples:\n  klab list\n  klab list --tag cks:cluster-hardening --difficulty medium\n  klab list -o json | jq -r '.[].id'"
    )]
    List(ListArgs),

    /// Show a drill's briefing (no spoilers unless asked).
    #[command(after_help = "Examples:\n  klab show etcd-quota\n  klab show kluster-005 --spoilers")]
    Show(ShowArgs),

    /// Check scenario and check files: every problem, with file:line:column.
    #[command(
        after_help = "Examples:\n  klab lint                      # the whole catalog\n  klab lint scenarios/ checks/\n  klab lint my-drill.yaml -o json\n\nExit code 0 when clean (warnings allowed), 1 on any error."
    )]
    Lint(LintArgs),

    /// Print the full plan of a drill — every manifest and node command — touching nothing.
    #[command(
        after_help = "Examples:\n  klab render kluster-005\n  klab render privileged-blocked --server-version 1.20\n  klab render etcd-quota --set quota_bytes=8388608 -o json"
    )]
    Render(RenderArgs),

    /// Write a new scenario skeleton to start from.
    #[command(after_help = "Examples:\n  klab new my-drill\n  klab new my-drill --dir drills/scenarios")]
    New(NewArgs),

    /// Check the prerequisites (docker engine, kind, kubectl) and say how to install what is missing.
    #[command(
        after_help = "Examples:\n  klab doctor\n  klab doctor -o json\n\nExit code 0 when ready, 3 when something is missing."
    )]
    Doctor,

    /// Create the lab: a kind cluster with audit logging, marked as a klab training lab.
    #[command(after_help = "Examples:\n  klab up\n  klab up --nodes 2\n  klab --lab klab-team1 up")]
    Up(UpArgs),

    /// Delete the lab and everything klab kept about it.
    #[command(after_help = "Examples:\n  klab down\n  klab --lab klab-team1 down")]
    Down,

    /// Start a drill: lab up if needed, setup, inject the faults, print the briefing.
    #[command(
        after_help = "Examples:\n  klab drill etcd-quota\n  klab drill privileged-blocked --variant psp\n  klab drill kluster-005 --dry-run"
    )]
    Drill(DrillArgs),

    /// Show the current drill: scenario, clock, hints, attempts, what the journal holds.
    Status,

    /// Run the drill's checks now (any number of times); exit 0 only when all pass.
    #[command(after_help = "Examples:\n  klab check\n  klab check -o json\n  klab check --junit results.xml")]
    Check(CheckArgs),

    /// Reveal the next hint (each costs points).
    Hint,

    /// Give up: apply the reference solution (score 0) and show the debrief.
    #[command(after_help = "Examples:\n  klab solve")]
    Solve,

    /// Name the causes you found: pick from the drill's candidate causes (some are red herrings).
    #[command(
        after_help = "Examples:\n  klab diagnose                                # pick from a numbered list (on a terminal)\n  klab diagnose --cause quota-too-small --cause database-full\n  klab diagnose --cause database-full --note 'etcdctl alarm list: NOSPACE'\n  klab diagnose -o json --cause database-full\n\nWithout a terminal and without --cause it lists the candidates and exits 2.\nExit code 0 when every cause is found and no red herring blamed, 1 otherwise."
    )]
    Diagnose(DiagnoseArgs),

    /// Undo every change klab made to the lab, from the journal (safe after a crash; idempotent).
    #[command(after_help = "Examples:\n  klab reset")]
    Reset,

    /// Prove every drill: its fault breaks what the user sees, its solution fixes it, reset restores.
    #[command(
        long_about = "Prove every drill end to end on a lab: setup → baseline (checks pass) → inject → \
the user-view checks fail → the reference solution → every check passes and no anti-pattern \
fires → reset → the cluster's objects and the nodes' state equal the start. A drill the lab \
cannot carry (node count, NetworkPolicy enforcement — probed for real —, audit log, DNS, server \
version) is skipped with the reason, never passed. Without IDs: every drill of the --catalog \
folders if any are given, else every built-in drill.",
        after_help = "Examples:\n  klab selftest\n  klab selftest etcd-quota ip-forward-off --junit selftest.xml\n  klab selftest --catalog ./drills --keep-going -o json\n  klab --lab klab-ci selftest --fresh --timeout 10m\n\nExit code 0 when nothing failed (skips are listed with their reasons), 1 when a drill failed."
    )]
    Selftest(SelftestArgs),

    /// The debrief of the lab's drill (the running one, or the last one reset): Markdown, HTML or JSON.
    #[command(
        after_help = "Examples:\n  klab report\n  klab report --format html --out debrief.html\n  klab report --format json\n\nThe HTML page is one file with no external assets: it works offline and prints."
    )]
    Report(ReportArgs),

    /// Team game days: a lab per team, one clock, a live scoreboard, a debrief.
    #[command(
        subcommand,
        long_about = "A facilitator's game day: `start` creates one lab per team (`klab-<team>`, in \
parallel, within what each Docker host holds; a roster may put a team on another Docker host), \
breaks them all and starts one wall clock. Teams work with `klab --team <team> …` (hint, check, \
diagnose, report), each on its own lab only. `board` shows the score; `end` stops the clock, runs \
the final checks and grades; `report` renders the debrief; `reset` and `down` clean up. State \
is on disk: a crash of klab loses nothing, and `start` resumes.",
        after_help = "Examples:\n  klab gameday lint roster.yaml\n  klab gameday start roster.yaml\n  klab gameday board\n  klab --team blue check\n  klab gameday end\n  klab gameday report --format html --out gameday.html\n  klab gameday down"
    )]
    Gameday(GamedayCommand),

    /// Analyse Kubernetes audit logs: summaries, timelines, policy lint.
    #[command(subcommand)]
    Audit(super::audit::AuditCommand),

    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  klab completions bash > ~/.local/share/bash-completion/completions/klab\n  klab completions zsh > ~/.zfunc/_klab\n  klab completions fish > ~/.config/fish/completions/klab.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum GamedayCommand {
    /// Check a roster: teams, drills, clock, scoring, hint policy, Docker hosts (file:line:column).
    #[command(
        after_help = "Examples:\n  klab gameday lint roster.yaml\n\nA roster:\n  apiVersion: klab.dev/v1\n  kind: GameDay\n  metadata: {name: friday}\n  timeLimit: 45m\n  drill: etcd-quota            # everyone's drill, unless a team names its own\n  hints: {max: 2}\n  scoring: {failedCheck: 2}\n  teams:\n    - name: blue\n      members: [Ana, Ben]\n    - name: red\n      members: [Chen]\n      drill: ip-forward-off\n      docker: {host: 'ssh://ops@10.0.0.5', apiServerAddress: 10.0.0.5}"
    )]
    Lint { roster: PathBuf },
    /// Prepare every team's lab, break them all, start the clock (resumes after a crash).
    #[command(
        after_help = "Examples:\n  klab gameday start roster.yaml\n  klab gameday start roster.yaml --force   # even if a Docker host looks too small"
    )]
    Start {
        roster: PathBuf,
        /// Go on although a Docker host seems unable to hold its labs.
        #[arg(long)]
        force: bool,
    },
    /// The scoreboard (refreshes on a terminal until the game ends; `-o json` once).
    #[command(
        after_help = "Examples:\n  klab gameday board\n  klab gameday board --once\n  klab gameday board -o json"
    )]
    Board {
        /// Print once and exit.
        #[arg(long)]
        once: bool,
        /// Refresh interval on a terminal.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        interval: crate::scenario::duration::Duration,
    },
    /// Stop the clock, run every team's final checks, grade the diagnoses, write the results.
    End,
    /// Undo every team's drill (`klab reset` in each lab); the labs stay.
    Reset,
    /// Delete every team's lab; the game day's results are archived for `report`.
    Down,
    /// The game day's debrief: scoreboard, time to fix per team, timeline, each team's findings.
    #[command(
        after_help = "Examples:\n  klab gameday report\n  klab gameday report --format html --out gameday.html\n  klab gameday report --format json"
    )]
    Report {
        /// `md` (Markdown), `html` (one self-contained page) or `json`.
        #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
        format: ReportFormat,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only drills with this tag (repeat for all of several).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Only drills of this difficulty.
    #[arg(long, value_parser = ["easy", "medium", "hard"])]
    pub difficulty: Option<String>,
    /// Print the catalog as a Markdown page (what docs/scenarios.md is generated from).
    #[arg(long, conflicts_with_all = ["tag", "difficulty"])]
    pub markdown: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The drill's id (see `klab list`).
    pub id: String,
    /// Also show faults, causes, hints, solution and debrief (for authors and facilitators).
    #[arg(long)]
    pub spoilers: bool,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Files or folders to lint (default: the whole catalog, built-in and --catalog folders).
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct PlanArgs {
    /// Override a parameter (typed: checked against its declared type).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_val)]
    pub set: Vec<(String, String)>,
    /// Use this variant of the drill (e.g. `psp`).
    #[arg(long, conflicts_with = "server_version")]
    pub variant: Option<String>,
    /// Pick the variant for this server version (e.g. `1.20`).
    #[arg(long, value_name = "VERSION")]
    pub server_version: Option<String>,
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    pub id: String,
    #[command(flatten)]
    pub plan: PlanArgs,
}

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The new drill's id (lowercase letters, digits, dashes).
    pub id: String,
    /// Folder to write `<id>.yaml` into.
    #[arg(long, default_value = "scenarios")]
    pub dir: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Nodes in all, the control plane included.
    #[arg(long, default_value_t = 1)]
    pub nodes: u8,
}

#[derive(Args, Debug)]
pub struct DrillArgs {
    pub id: String,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Print the plan the drill would execute, touching nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start although the lab lacks what the drill's profile asks for (cluster DNS, an audit log).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SelftestArgs {
    /// Drills to prove (default: the --catalog folders' drills, else all built-in ones).
    pub ids: Vec<String>,
    /// Leave these out.
    #[arg(long, value_name = "ID")]
    pub exclude: Vec<String>,
    /// A fresh lab per drill (slower; default: one lab reused, checked clean between drills).
    #[arg(long)]
    pub fresh: bool,
    /// Go on after a failed drill (default: stop at the first failure, after its reset).
    #[arg(long)]
    pub keep_going: bool,
    /// Time limit of each phase (setup, inject, solve, …); reset runs after a timeout too.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: crate::scenario::duration::Duration,
    /// How long reset and the comparison with the start may wait for the cluster to settle
    /// (namespaces terminating, static pods restarting).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub settle: crate::scenario::duration::Duration,
    /// Write the results as JUnit XML: a testsuite per drill, a testcase per phase.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Image of the NetworkPolicy probe's pods (needs sh, httpd, wget).
    #[arg(long, default_value = "busybox:1.36")]
    pub probe_image: String,
}

fn parse_duration(s: &str) -> Result<crate::scenario::duration::Duration, String> {
    crate::scenario::duration::Duration::parse(s)
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// `md` (Markdown), `html` (one self-contained page) or `json`.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    #[value(name = "md")]
    Markdown,
    Html,
    Json,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also write the results as JUnit XML.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The final run of a game day (`klab gameday end` runs it once the clock has stopped).
    #[arg(long = "final", hide = true)]
    pub final_run: bool,
}

#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    /// A cause you blame, by id (repeat, or separate with commas). `klab diagnose` without a
    /// terminal lists the ids.
    #[arg(long = "cause", value_name = "ID", value_delimiter = ',')]
    pub causes: Vec<String>,
    /// What you saw that points there, kept for the debrief.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

fn parse_key_val(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}
