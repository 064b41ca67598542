//! `klab list`: the catalog at a glance.

use super::Outcome;
use super::args::{Global, ListArgs, OutputFormat};
use super::output::{self, DIM, paint};
use crate::exit;
use crate::scenario::catalog::Catalog;
use serde::Serialize;

#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    title: &'a str,
    difficulty: &'a str,
    tags: &'a [String],
    time_limit: String,
    nodes: u8,
    variants: Vec<&'a str>,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    limitations: Option<&'a str>,
}

pub fn run(g: &Global, cat: &Catalog, a: &ListArgs) -> Outcome {
    let rows: Vec<Row> = cat
        .scenarios
        .values()
        .filter(|e| a.tag.iter().all(|t| e.item.metadata.tags.contains(t)))
        .filter(|e| a.difficulty.as_deref().is_none_or(|d| e.item.metadata.difficulty.as_str() == d))
        .map(|e| {
            let m = &e.item.metadata;
            Row {
                id: &m.id.value,
                title: &m.title,
                difficulty: m.difficulty.as_str(),
                tags: &m.tags,
                time_limit: m.time_limit.to_string(),
                nodes: e.item.profile.nodes,
                variants: e.item.variants.iter().map(|v| v.id.value.as_str()).collect(),
                source: e.source.origin.display(),
                limitations: m.limitations.as_deref(),
            }
        })
        .collect();
    if g.output == OutputFormat::Json {
        output::print_json(&rows)?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.difficulty.to_string(),
                    r.time_limit.clone(),
                    short_tags(r.tags),
                    r.title.to_string(),
                ]
            })
            .collect();
        anstream::print!("{}", output::table(&["ID", "DIFFICULTY", "TIME", "TAGS", "TITLE"], &table));
        if rows.is_empty() {
            anstream::println!("{}", paint(DIM, "(no drill matches)"));
        }
    }
    for d in &cat.diagnostics {
        anstream::eprintln!(
            "{} {} does not load (run `klab lint` for details)",
            paint(output::YELLOW, "warning:"),
            d.file
        );
    }
    Ok(exit::OK)
}

/// The tags that fit a table column; `-o json` has them all.
fn short_tags(tags: &[String]) -> String {
    let mut out = String::new();
    for (i, t) in tags.iter().enumerate() {
        if out.len() + t.len() + 1 > 40 {
            out.push_str(&format!(",+{}", tags.len() - i));
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(t);
    }
    out
}
