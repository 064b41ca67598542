// tier: CLI (assert_cmd), no cluster.
//! One fixture file per class of lint error. The first line of each fixture says what must be
//! reported: `# expect: LINE:COLUMN: TEXT` (0:0 when the problem has no place in the file).
//! Adding a case is adding a file.

use assert_cmd::cargo::cargo_bin_cmd;
use std::path::Path;

// No wall-clock bounds here: how fast hostile input is refused is a benchmark (bench/catalog.sh);
// these tests prove that it is refused, and with which message.
fn lint_json(path: &Path) -> (i32, serde_json::Value) {
    let out = cargo_bin_cmd!("klab")
        .args(["lint", "-o", "json", "--color", "never"])
        .arg(path)
        .env_remove("KLAB_CATALOG")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", path.display(), String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn every_fixture_reports_its_error_at_its_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let first = String::from_utf8_lossy(bytes.split(|b| *b == b'\n').next().unwrap()).to_string();
        let (code, report) = lint_json(&path);
        let diags = report["diagnostics"].as_array().unwrap();
        if path.file_stem().unwrap() == "clean" {
            assert_eq!(code, 0, "clean fixture: {report:#}");
            assert!(diags.is_empty(), "clean fixture has diagnostics: {report:#}");
            continue;
        }
        let expect = first
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: L:C: text`", path.display()));
        let mut parts = expect.splitn(3, ':');
        let line: u64 = parts.next().unwrap().trim().parse().unwrap();
        let col: u64 = parts.next().unwrap().trim().parse().unwrap();
        let text = parts.next().unwrap().trim();
        assert_eq!(code, 1, "{}: exit code {code}, report {report:#}", path.display());
        let hit = diags.iter().find(|d| {
            d["message"].as_str().unwrap_or("").contains(text) || d["help"].as_str().unwrap_or("").contains(text)
        });
        let hit = hit.unwrap_or_else(|| panic!("{}: no diagnostic contains {text:?}: {report:#}", path.display()));
        assert!(
            hit["file"].as_str().unwrap().ends_with(path.file_name().unwrap().to_str().unwrap()),
            "{}: file is {}",
            path.display(),
            hit["file"]
        );
        if line > 0 {
            assert_eq!(
                (hit["line"].as_u64().unwrap(), hit["column"].as_u64().unwrap()),
                (line, col),
                "{}: wrong place: {hit:#}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} error fixtures");
}

#[test]
fn human_output_shows_place_caret_and_help() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/unknown-field.yaml");
    let out = cargo_bin_cmd!("klab").args(["lint", "--color", "never"]).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("unknown-field.yaml:12:1: error: unknown field `fualts`"), "{text}");
    assert!(text.contains("12 | fualts:"), "{text}");
    assert!(text.contains("   | ^"), "{text}");
    assert!(text.contains("help: did you mean `faults`?"), "{text}");
    assert!(text.contains("1 error(s)"), "{text}");
}

#[test]
fn a_folder_reports_every_broken_file_at_once() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let (code, report) = lint_json(&dir);
    assert_eq!(code, 1);
    let files: std::collections::HashSet<&str> =
        report["diagnostics"].as_array().unwrap().iter().map(|d| d["file"].as_str().unwrap()).collect();
    assert!(files.len() >= 12, "{files:?}");
}

#[test]
fn a_twenty_megabyte_file_is_refused_before_parsing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("huge.yaml");
    let mut text = String::from("apiVersion: klab.dev/v1\nkind: Scenario\nstory: |\n");
    while text.len() < 20 * 1024 * 1024 {
        text.push_str(
            "  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
        );
    }
    std::fs::write(&path, text).unwrap();
    let (code, report) = lint_json(&path);
    assert_eq!(code, 1);
    // The size message comes from the check that runs before any parsing.
    assert!(report["diagnostics"][0]["message"].as_str().unwrap().contains("MiB"), "{report:#}");
}

#[test]
#[cfg(unix)]
fn an_endless_file_is_refused_after_its_first_mebibyte() {
    // Reading all of /dev/zero would never end; klab reads one byte more than it accepts.
    let (code, report) = lint_json(Path::new("/dev/zero"));
    assert_eq!(code, 1);
    let msg = report["diagnostics"][0]["message"].as_str().unwrap();
    assert!(msg.contains("larger than 1 MiB"), "{report:#}");
}

#[test]
fn duplicate_scenario_ids_across_files_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let clean =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/clean.yaml")).unwrap();
    std::fs::write(tmp.path().join("clean.yaml"), &clean).unwrap();
    std::fs::write(tmp.path().join("copy.yaml"), &clean).unwrap();
    let (code, report) = lint_json(tmp.path());
    assert_eq!(code, 1);
    let d = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("duplicate id `clean`"))
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(d["line"], 4, "{d:#}");
}
