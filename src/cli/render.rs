//! `klab render`: the whole plan of a drill, exactly as `drill` would execute it.

use super::args::{Global, OutputFormat, PlanArgs, RenderArgs};
use super::output::{self, BOLD, CYAN, DIM, paint};
use super::{Failure, Outcome, find_scenario};
use crate::exit;
use crate::scenario::catalog::Catalog;
use crate::scenario::plan::{self, Plan, PlanOptions, PlannedStep, VariantChoice};
use crate::scenario::version::MinorVersion;

pub(crate) fn plan_options(a: &PlanArgs) -> Result<PlanOptions, Failure> {
    let variant = match (&a.variant, &a.server_version) {
        (Some(v), _) => VariantChoice::Named(v.clone()),
        (None, Some(sv)) => VariantChoice::ForServer(
            MinorVersion::parse(sv).map_err(|e| Failure::new(exit::USAGE, format!("--server-version: {e}")))?,
        ),
        (None, None) => VariantChoice::Default,
    };
    Ok(PlanOptions { set: a.set.clone(), variant, lab: None })
}

/// Builds the plan or turns its diagnostics into one failure message.
pub(crate) fn build_plan(cat: &Catalog, id: &str, opts: &PlanOptions) -> Result<Plan, Failure> {
    let e = find_scenario(cat, id)?;
    plan::build(cat, e, opts).map_err(|errs| {
        let text: String = errs.iter().map(|d| d.to_string()).collect();
        Failure::new(exit::FAILED, format!("drill `{id}` cannot be planned:\n{}", text.trim_end()))
            .help("fix the file (`klab lint` shows every problem) or the --set values")
    })
}

pub fn run(g: &Global, cat: &Catalog, a: &RenderArgs) -> Outcome {
    let plan = build_plan(cat, &a.id, &plan_options(&a.plan)?)?;
    if g.output == OutputFormat::Json {
        output::print_json(&plan)?;
    } else {
        anstream::print!("{}", render_text(&plan));
    }
    Ok(exit::OK)
}

fn yaml<T: serde::Serialize>(v: &T) -> String {
    serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# cannot show: {e}\n"))
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("{pad}{l}\n") }).collect()
}

/// The human form of a plan; held by snapshot tests, so keep it stable.
pub fn render_text(p: &Plan) -> String {
    let mut o = String::new();
    o.push_str(&format!(
        "{} {}\n",
        paint(BOLD, format!("Plan for {}", p.scenario)),
        paint(DIM, format!("— {}", p.title))
    ));
    if let Some(v) = &p.variant {
        o.push_str(&format!(
            "variant: {v}{}\n",
            p.variant_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    let params: Vec<String> = p
        .params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    o.push_str(&format!("params: {}\n", if params.is_empty() { "(none)".into() } else { params.join(", ") }));
    let pr = &p.profile;
    o.push_str(&format!(
        "lab: {} node(s){}{}{}\n",
        pr.nodes,
        if pr.network_policy { ", NetworkPolicy enforced" } else { "" },
        if pr.audit_log { ", audit log" } else { "" },
        if pr.dns { ", cluster DNS" } else { "" }
    ));
    for (title, steps) in [("SETUP", &p.setup), ("FAULTS", &p.faults)] {
        section(&mut o, title, steps);
    }
    o.push_str(&format!("\n{}\n", paint(BOLD, "CHECKS")));
    for (i, c) in p.checks.iter().enumerate() {
        let role = match c.role {
            crate::scenario::kinds::Role::User => "user",
            crate::scenario::kinds::Role::Cause => "cause",
            crate::scenario::kinds::Role::AntiPattern => "anti-pattern",
        };
        let timing = match (c.within, c.timeout) {
            (Some(w), _) => format!(", within {w}"),
            (None, Some(t)) => format!(", timeout {t}"),
            _ => String::new(),
        };
        o.push_str(&format!("{:>3}. {} [{role}, {}{timing}] {}\n", i + 1, paint(CYAN, &c.id), c.from, c.description));
        o.push_str(&indent(&yaml(&c.spec), 7));
    }
    section(&mut o, "SOLUTION", &p.solution);
    o
}

fn section(o: &mut String, title: &str, steps: &[PlannedStep]) {
    o.push_str(&format!("\n{}\n", paint(BOLD, title)));
    if steps.is_empty() {
        o.push_str("  (none)\n");
    }
    for (i, s) in steps.iter().enumerate() {
        let kind = s.action.0.kind();
        o.push_str(&format!(
            "{:>3}. {} [{kind}]{}\n",
            i + 1,
            paint(CYAN, &s.id),
            s.description.as_deref().map(|d| format!(" {d}")).unwrap_or_default()
        ));
        if s.objects.is_empty() {
            o.push_str(&indent(&yaml(&s.action), 7));
        } else {
            for obj in &s.objects {
                o.push_str(&indent("---", 7));
                o.push_str(&indent(&yaml(obj), 7));
            }
        }
    }
}
