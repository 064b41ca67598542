//! tier: unit, no cluster.
//!
//! The plan of every built-in drill, in every variant, exactly as `klab render` prints it. These
//! snapshots are what a user reads before a drill touches their cluster: a change to a scenario,
//! a reusable check or the renderer shows up here for review (`cargo insta review`). Adding a
//! drill to `scenarios/` adds its snapshots; nothing here names a drill.
//!
//! Also: the whole built-in catalog lints clean, without errors or warnings.

use klab::scenario::catalog::Catalog;

/// `klab` as users run it, blind to the developer's own catalog folders and terminal.
fn klab() -> assert_cmd::Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("klab");
    cmd.env_remove("KLAB_CATALOG").env("NO_COLOR", "1").arg("--color").arg("never");
    cmd
}

/// Every (drill, variant) pair of the built-in catalog; `None` for a drill without variants.
fn builtin_plans() -> Vec<(String, Option<String>)> {
    let cat = Catalog::builtin();
    let mut out = Vec::new();
    for (id, entry) in &cat.scenarios {
        if entry.item.variants.is_empty() {
            out.push((id.clone(), None));
        }
        for v in &entry.item.variants {
            out.push((id.clone(), Some(v.id.value.clone())));
        }
    }
    out
}

#[test]
fn every_builtin_drill_and_variant_renders_its_plan() {
    let plans = builtin_plans();
    assert!(!plans.is_empty(), "the built-in catalog has no scenarios");
    for (id, variant) in plans {
        let mut cmd = klab();
        cmd.arg("render").arg(&id);
        if let Some(v) = &variant {
            cmd.arg("--variant").arg(v);
        }
        let out = cmd.output().expect("klab runs");
        let stdout = String::from_utf8(out.stdout).expect("render prints UTF-8");
        assert!(
            out.status.success(),
            "`klab render {id}{}` failed:\n{}",
            variant.as_deref().map(|v| format!(" --variant {v}")).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        );
        let name = match &variant {
            Some(v) => format!("{id}__{v}"),
            None => id.clone(),
        };
        insta::assert_snapshot!(name, stdout);
    }
}

#[test]
fn the_builtin_catalog_lints_without_errors_or_warnings() {
    let out = klab().args(["lint", "--output", "json"]).output().expect("klab runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("lint -o json prints JSON");
    assert_eq!(report["errors"], 0, "lint errors:\n{report:#}");
    assert_eq!(report["warnings"], 0, "lint warnings:\n{report:#}");
    assert!(out.status.success(), "lint exited with {:?}", out.status.code());
}

/// docs/scenarios.md is `klab list --markdown`: it cannot drift from the catalog.
#[test]
fn docs_scenarios_md_is_generated_from_the_catalog() {
    let out = klab().args(["list", "--markdown"]).output().unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    assert!(generated.contains("| [`kluster-005`](#kluster-005) |"), "{generated}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenarios.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/scenarios.md differs from the catalog; regenerate it with\n  cargo run -q -- list --markdown > docs/scenarios.md"
    );
}
