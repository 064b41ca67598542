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
    pub results: Vec<CheckOutcome>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutcome {
    pub id: String,
    pub role: crate::scenario::kinds::Role,
    pub passed: bool,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosisAttempt {
    pub at: String,
    pub causes: Vec<String>,
    #[serde(default)]
    pub notes: String,
}
