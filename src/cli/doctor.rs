//! `klab doctor`: what is installed, what is missing, and how to get it.

use super::Outcome;
use super::args::{Global, OutputFormat};
use super::output::{self, GREEN, RED, paint};
use crate::cluster::doctor;
use crate::exit;

pub fn run(g: &Global) -> Outcome {
    let rt = super::runtime()?;
    let report = rt.block_on(doctor::check());
    if g.output == OutputFormat::Json {
        output::print_json(&report)?;
    } else {
        for t in &report.tools {
            let mark = if t.ok { paint(GREEN, "ok  ") } else { paint(RED, "MISSING") };
            anstream::println!("{mark} {:<14} {}", t.name, t.detail);
            if let Some(f) = &t.fix {
                anstream::println!("        fix: {f}");
            }
        }
        if report.ready {
            anstream::println!("{}", paint(GREEN, "ready: `klab drill <id>` can create a lab"));
        } else {
            anstream::println!("{}", paint(RED, "not ready: fix the lines above, then run `klab doctor` again"));
        }
    }
    Ok(if report.ready { exit::OK } else { exit::NOT_READY })
}
