//! `klab lint`: prints every diagnostic, then a one-line summary.

use super::Outcome;
use super::args::{Global, LintArgs, OutputFormat};
use super::output::{self, GREEN, RED, YELLOW, paint};
use crate::exit;
use crate::scenario::catalog::{Catalog, Origin};
use crate::scenario::diag::Severity;
use crate::scenario::lint;
use std::path::PathBuf;

/// Which loaded files the user asked to lint.
type Selector = Box<dyn Fn(&crate::scenario::catalog::Source) -> bool>;

pub fn run(g: &Global, a: &LintArgs) -> Outcome {
    // The built-in checks are always there to be referenced; the linted files are added on top.
    let (cat, selected): (Catalog, Selector) = if a.paths.is_empty() {
        (Catalog::load(&g.catalog), Box::new(|_| true))
    } else {
        let mut cat = Catalog::load(&g.catalog);
        cat.diagnostics.clear();
        for p in &a.paths {
            if !p.exists() {
                return Err(super::Failure::new(exit::FAILED, format!("{}: no such file or folder", p.display())));
            }
            cat.add_path(p, true);
        }
        let roots: Vec<PathBuf> = a.paths.iter().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())).collect();
        (
            cat,
            Box::new(move |s: &crate::scenario::catalog::Source| match &s.origin {
                Origin::File(f) => {
                    let f = f.canonicalize().unwrap_or_else(|_| f.clone());
                    roots.iter().any(|r| f.starts_with(r))
                }
                Origin::Builtin(_) => false,
            }),
        )
    };
    let report = lint::lint(&cat, &*selected);
    if g.output == OutputFormat::Json {
        output::print_json(&report)?;
    } else {
        for d in &report.diagnostics {
            let text = d.to_string();
            let (label, style) = match d.severity {
                Severity::Error => ("error:", RED),
                Severity::Warning => ("warning:", YELLOW),
            };
            anstream::print!("{}", text.replacen(label, &paint(style, label), 1));
        }
        let summary =
            format!("{} file(s) checked: {} error(s), {} warning(s)", report.files, report.errors, report.warnings);
        let style = if report.errors > 0 { RED } else { GREEN };
        anstream::println!("{}", paint(style, summary));
    }
    Ok(if report.errors > 0 { exit::FAILED } else { exit::OK })
}
