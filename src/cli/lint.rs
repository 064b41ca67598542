//! `klab lint`: prints every diagnostic, then a one-line summary.

use super::Outcome;
use super::args::{Global, LintArgs, OutputFormat};
use super::output::{self, GREEN, RED, YELLOW, paint};
use crate::exit;
use crate::scenario::catalog::{Catalog, Origin};
use crate::scenario::diag::Severity;
use crate::scenario::lint;
use std::path::PathBuf;

/// The YAML files at `p` (a file, or a folder's files, recursively).
fn yaml_files(p: &std::path::Path) -> Vec<PathBuf> {
    if p.is_file() {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(yaml_files(&path));
            } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A klab game-day roster (its top-level `kind`).
fn is_roster(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Head {
        kind: Option<String>,
    }
    std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.len() <= crate::scenario::yaml::MAX_FILE_BYTES)
        .and_then(|t| serde_saphyr::from_str_with_options::<Head>(t, crate::scenario::yaml::options()).ok())
        .is_some_and(|h| h.kind.as_deref() == Some(crate::gameday::roster::KIND))
}

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
    let mut report = lint::lint(&cat, &*selected);
    // Game-day rosters among the paths are linted as rosters, against the catalog.
    for f in a.paths.iter().flat_map(|p| yaml_files(p)) {
        let Ok(bytes) = crate::scenario::yaml::read_capped(&f) else { continue };
        if !is_roster(&bytes) {
            continue;
        }
        let (_, diags) = crate::gameday::roster::load(&f.display().to_string(), &bytes, &cat);
        report.files += 1;
        report.errors += diags.iter().filter(|d| d.is_error()).count();
        report.warnings += diags.iter().filter(|d| !d.is_error()).count();
        report.diagnostics.extend(diags);
    }
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
