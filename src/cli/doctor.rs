//! `klab doctor`: what is installed, what is missing, and how to get it — and, when the lab
//! exists, which variant each version-dependent drill would run there, and why.

use super::Outcome;
use super::args::{Global, OutputFormat};
use super::labcmd::{lab_dir, target};
use super::output::{self, DIM, GREEN, RED, YELLOW, paint};
use crate::cluster::doctor;
use crate::cluster::lab::Lab;
use crate::exit;
use crate::scenario::catalog::Catalog;
use crate::scenario::plan::variant_for;
use crate::scenario::version::MinorVersion;
use serde::Serialize;
use std::time::Duration;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LabReport {
    name: String,
    /// Why the lab was not looked at (absent, unreachable); then the fields below are empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<String>,
    variants: Vec<VariantReport>,
}

#[derive(Serialize)]
struct VariantReport {
    drill: String,
    /// The variant chosen, or `None` when no variant supports this server.
    variant: Option<String>,
    reason: String,
}

async fn lab_report(g: &Global, cat: &Catalog) -> LabReport {
    let mut r = LabReport { name: g.lab.clone(), unavailable: None, server_version: None, variants: vec![] };
    let dir = lab_dir(g);
    if !dir.lab_file().exists() && g.override_context.is_none() {
        r.unavailable = Some("no lab yet (`klab up` creates it)".into());
        return r;
    }
    let lab = match tokio::time::timeout(Duration::from_secs(20), Lab::open(&target(g), &dir, true)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            r.unavailable = Some(e.to_string());
            return r;
        }
        Err(_) => {
            r.unavailable = Some("the lab did not answer within 20s".into());
            return r;
        }
    };
    let version = match lab.kube() {
        Ok(k) => k.server_version().await.map(|(v, _)| v).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let v = match version.and_then(|v| MinorVersion::parse(&v).map(|m| (v, m))) {
        Ok((text, m)) => {
            r.server_version = Some(text);
            m
        }
        Err(e) => {
            r.unavailable = Some(format!("cannot read the server version: {e}"));
            return r;
        }
    };
    for (id, e) in &cat.scenarios {
        if e.item.variants.is_empty() {
            continue;
        }
        r.variants.push(match variant_for(&e.item, v) {
            Ok((variant, reason)) => VariantReport { drill: id.clone(), variant: Some(variant), reason },
            Err(reason) => VariantReport { drill: id.clone(), variant: None, reason },
        });
    }
    r
}

pub fn run(g: &Global, cat: &Catalog) -> Outcome {
    let rt = super::runtime()?;
    let (report, lab) = rt.block_on(async { tokio::join!(doctor::check(), lab_report(g, cat)) });
    if g.output == OutputFormat::Json {
        output::print_json(&serde_json::json!({"ready": report.ready, "tools": report.tools, "lab": lab}))?;
    } else {
        for t in &report.tools {
            let mark = if t.ok { paint(GREEN, "ok  ") } else { paint(RED, "MISSING") };
            anstream::println!("{mark} {:<14} {}", t.name, t.detail);
            if let Some(f) = &t.fix {
                anstream::println!("        fix: {f}");
            }
        }
        match (&lab.unavailable, &lab.server_version) {
            (Some(why), _) => anstream::println!("{}", paint(DIM, format!("lab {}: {why}", lab.name))),
            (None, Some(v)) => {
                anstream::println!("lab {}: server {v}", lab.name);
                for d in &lab.variants {
                    match &d.variant {
                        Some(var) => anstream::println!("  {:<22} variant {var} ({})", d.drill, d.reason),
                        None => anstream::println!("  {:<22} {}", d.drill, paint(YELLOW, &d.reason)),
                    }
                }
            }
            _ => {}
        }
        if report.ready {
            anstream::println!("{}", paint(GREEN, "ready: `klab drill <id>` can create a lab"));
        } else {
            anstream::println!("{}", paint(RED, "not ready: fix the lines above, then run `klab doctor` again"));
        }
    }
    Ok(if report.ready { exit::OK } else { exit::NOT_READY })
}
