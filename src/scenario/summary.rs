//! What `klab list` shows of a scenario, and a fast way to read it from the built-in catalog.
//!
//! Parsing a whole scenario is what `klab list` used to spend its time on (≈ 340 KB of YAML for
//! the built-in catalog, almost all of it setup, faults, checks and solution). The listing needs
//! only the top of a file: `metadata`, `symptoms`, `profile` and `variants`. [`Summary::from_header`]
//! parses just those top-level sections, cut out of the text line by line; anything it cannot
//! cut safely (documents, flow style at the top level, anchors from elsewhere…) makes it answer
//! `None` and the caller parses the whole file. A test checks that for every built-in scenario
//! the fast summary equals the one taken from a full parse.

use super::duration::Duration;
use super::model::{Difficulty, Metadata, Profile, Scenario, Variant};
use super::yaml;
use serde::Deserialize;

/// A scenario as listed: `klab list` (table, `-o json`) and `klab list --markdown`.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub id: String,
    pub title: String,
    pub difficulty: Difficulty,
    pub tags: Vec<String>,
    pub time_limit: Duration,
    pub limitations: Option<String>,
    pub symptoms: Vec<String>,
    pub profile: Profile,
    /// Variant ids with their server version constraints.
    pub variants: Vec<(String, String)>,
}

impl Summary {
    fn of(metadata: Metadata, symptoms: Vec<String>, profile: Profile, variants: Vec<Variant>) -> Summary {
        Summary {
            id: metadata.id.value,
            title: metadata.title,
            difficulty: metadata.difficulty,
            tags: metadata.tags,
            time_limit: metadata.time_limit,
            limitations: metadata.limitations,
            symptoms,
            profile,
            variants: variants.into_iter().map(|v| (v.id.value, v.server_version.value)).collect(),
        }
    }

    /// The summary of a fully parsed scenario.
    pub fn from_scenario(s: &Scenario) -> Summary {
        Summary::of(s.metadata.clone(), s.symptoms.clone(), s.profile.clone(), s.variants.clone())
    }

    /// The summary read from the listed sections of `text` only, or `None` when the text is not
    /// laid out plainly enough to cut them out (or they do not parse): then parse the whole file.
    /// It does not check the rest of the file; use it for files known to load (the built-ins,
    /// which the tests lint).
    pub fn from_header(text: &str) -> Option<Summary> {
        let head = listed_sections(text)?;
        let h: Head = yaml::parse("", &head).ok()?;
        Some(Summary::of(h.metadata, h.symptoms, h.profile, h.variants))
    }
}

/// The part of a scenario the listing reads (other top-level fields are passed over).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    metadata: Metadata,
    #[serde(default)]
    symptoms: Vec<String>,
    #[serde(default)]
    profile: Profile,
    #[serde(default)]
    variants: Vec<Variant>,
}

const LISTED: [&str; 4] = ["metadata", "symptoms", "profile", "variants"];

/// The lines of the top-level sections in [`LISTED`], each other line left empty (so that line
/// numbers stay those of the file). `None` when a line at the top level is not a plain
/// `key:` or a comment (document markers, directives, flow or complex keys, tabs).
fn listed_sections(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() / 8);
    let mut keep = false;
    let mut seen = [false; LISTED.len()];
    for line in text.lines() {
        match line.as_bytes().first() {
            None | Some(b' ' | b'#') => {}
            Some(_) => {
                let key = line.split_once(':').map(|(k, _)| k)?;
                if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return None;
                }
                let i = LISTED.iter().position(|k| *k == key);
                keep = i.is_some();
                if let Some(i) = i {
                    // A key written twice is the full parser's to report.
                    if std::mem::replace(&mut seen[i], true) {
                        return None;
                    }
                }
            }
        }
        if keep {
            out.push_str(line);
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "apiVersion: klab.dev/v1\nkind: Scenario\nmetadata:\n  id: a\n  title: A\n  difficulty: easy\n  timeLimit: 90s\nstory: |\n  x\nsymptoms:\n  - one\nparams: {}\nvariants:\n  - id: old\n    serverVersion: \"<1.25\"\nsetup: []\n";

    #[test]
    fn reads_only_the_listed_sections() {
        let s = Summary::from_header(TEXT).unwrap();
        assert_eq!(s.id, "a");
        assert_eq!(s.time_limit.to_string(), "1m30s");
        assert_eq!(s.symptoms, ["one"]);
        assert_eq!(s.profile, Profile::default());
        assert_eq!(s.variants, [("old".to_string(), "<1.25".to_string())]);
        // Line numbers are kept: the cut text has as many lines as the file.
        assert_eq!(listed_sections(TEXT).unwrap().lines().count(), TEXT.lines().count());
    }

    #[test]
    fn leaves_what_it_cannot_cut_to_the_full_parser() {
        assert!(Summary::from_header(&format!("---\n{TEXT}")).is_none());
        assert!(Summary::from_header(&format!("{{ a: 1 }}\n{TEXT}")).is_none());
        assert!(Summary::from_header(&format!("{TEXT}metadata:\n  id: b\n")).is_none());
        assert!(Summary::from_header("metadata:\n  id: *x\n").is_none());
        assert!(Summary::from_header("story: x\n").is_none());
    }
}
