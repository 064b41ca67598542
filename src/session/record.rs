//! The drill session: which drill runs in a lab, with what parameters, since when, and what the
//! trainee did (hints, check attempts, diagnoses). Saved after every change.

use crate::scenario::template::Params;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub scenario: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_reason: Option<String>,
    pub set: Vec<(String, String)>,
    pub params: Params,
    pub lab: String,
    pub context: String,
    pub cluster_uid: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected_at: Option<String>,
    #[serde(default)]
    pub hints_taken: Vec<HintTaken>,
    #[serde(default)]
    pub check_attempts: Vec<CheckAttempt>,
    #[serde(default)]
    pub diagnoses: Vec<DiagnosisAttempt>,
    #[serde(default)]
    pub gave_up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_at: Option<String>,
}

impl Session {
    /// When each check first passed: `{check id: time of that check run}`, as recorded on the
    /// run (`firstPass`).
    pub fn first_pass(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        for a in &self.check_attempts {
            for r in a.results.iter().filter(|r| r.first_pass) {
                out.entry(r.id.clone()).or_insert_with(|| a.at.clone());
            }
        }
        out
    }

    /// Whether `id` passed in an earlier check run.
    pub fn ever_passed(&self, id: &str) -> bool {
        self.check_attempts.iter().any(|a| a.results.iter().any(|r| r.id == id && r.passed))
    }

    /// The stored attribution of every cause check that has passed, in first-pass order.
    pub fn attributions(&self) -> Vec<(&str, &str, &crate::check::attribution::Attribution)> {
        let mut out = Vec::new();
        for a in &self.check_attempts {
            for r in &a.results {
                if let Some(at) = &r.attribution {
                    out.push((r.id.as_str(), a.at.as_str(), at));
                }
            }
        }
        out
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HintTaken {
    pub index: usize,
    pub cost: u32,
    pub at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckAttempt {
    pub at: String,
    pub passed: bool,
    /// The run `klab gameday end` made when the clock stopped: it decides whether the lab is
    /// fixed and counts for anti-patterns, but is not a failed attempt of the team's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub final_run: bool,
    pub results: Vec<CheckOutcome>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutcome {
    pub id: String,
    pub role: crate::scenario::kinds::Role,
    pub passed: bool,
    pub reason: String,
    /// The check passed here for the first time in this session ([`Session::first_pass`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_pass: bool,
    /// For a cause check's first pass: who fixed it, as far as klab can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<crate::check::attribution::Attribution>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosisAttempt {
    pub at: String,
    pub causes: Vec<String>,
    #[serde(default)]
    pub notes: String,
}
