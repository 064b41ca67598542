//! The command-line edge: parse, dispatch, print, and map every failure to an exit code.
//! Commands build result values; the functions here and in each command's module render them.

pub mod args;
mod audit;
mod check;
mod diagnose;
mod doctor;
mod gameday;
mod labcmd;
mod lint;
mod list;
mod new;
pub mod output;
mod render;
mod report;
mod scorecard;
mod selftest;
pub(crate) mod show;
mod trainee;

use crate::exit;
use crate::scenario::catalog::{Catalog, Listing};
use args::{Cli, Command};
use clap::{CommandFactory, Parser};

/// A failure the user reads: what happened, and what to do.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    pub help: Option<String>,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure { code, message: message.into(), help: None }
    }
    pub fn help(mut self, h: impl Into<String>) -> Self {
        self.help = Some(h.into());
        self
    }
}

pub type Outcome = Result<i32, Failure>;

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { exit::OK };
        }
    };
    output::init_color(cli.global.color);
    match run(cli) {
        Ok(code) => code,
        Err(f) => {
            output::print_failure(&f);
            f.code
        }
    }
}

fn run(mut cli: Cli) -> Outcome {
    gameday::resolve_team(&mut cli.global)?;
    let g = &cli.global;
    match cli.command {
        Command::List(a) => list::run(g, &Listing::load(&g.catalog), &a),
        Command::Show(a) => show::run(g, &load(g), &a),
        Command::Lint(a) => lint::run(g, &a),
        Command::Render(a) => render::run(g, &load(g), &a),
        Command::New(a) => new::run(&load(g), &a),
        Command::Doctor => doctor::run(g, &load(g)),
        Command::Up(a) => labcmd::up(g, &a),
        Command::Down => labcmd::down(g),
        Command::Drill(a) => labcmd::drill(g, &load(g), &a),
        Command::Status => labcmd::status(g, &load(g)),
        Command::Check(a) => check::run(g, &a),
        Command::Reset => labcmd::reset(g),
        Command::Hint => trainee::hint(g, &load(g)),
        Command::Solve => trainee::solve(g, &load(g)),
        Command::Diagnose(a) => diagnose::run(g, &load(g), &a),
        Command::Report(a) => report::run(g, &load(g), &a),
        Command::Selftest(a) => selftest::run(g, &load(g), &a),
        Command::Gameday(c) => gameday::run(g, &load(g), &c),
        Command::Audit(a) => audit::run(g, a),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "klab", &mut std::io::stdout());
            Ok(exit::OK)
        }
    }
}

fn load(g: &args::Global) -> Catalog {
    Catalog::load(&g.catalog)
}

/// Looks a scenario up, with a "did you mean" when it is not there.
pub(crate) fn find_scenario<'c>(
    cat: &'c Catalog,
    id: &str,
) -> Result<&'c crate::scenario::catalog::Entry<crate::scenario::model::Scenario>, Failure> {
    cat.scenario(id).ok_or_else(|| {
        let mut f = Failure::new(exit::FAILED, format!("no drill `{id}` in the catalog"));
        f.help = Some(match cat.suggest_scenario(id) {
            Some(s) => format!("did you mean `{s}`? (`klab list` shows them all)"),
            None => "`klab list` shows the drills; add folders with --catalog DIR".into(),
        });
        if let Some(d) = cat.diagnostics.iter().find(|d| d.file.contains(id)) {
            f.help = Some(format!("a file that may be it does not load:\n{d}"));
        }
        f
    })
}

/// A tokio runtime for the commands that talk to the world.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot start the async runtime: {e}")))
}
