//! Scenario format v1 (`apiVersion: klab.dev/v1`, `kind: Scenario`) and the reusable check
//! format (`kind: Check`), as typed models. Unknown fields are rejected everywhere.
//!
//! The model is pure data: loading and linting live in `load.rs`/`lint.rs`, cluster behaviour
//! in `fault/` and `check/`. Identifiers that other parts of a file point at are `Spanned`, so
//! the linter can say where a bad reference stands.

use super::duration::Duration;
use super::kinds::{CheckEntry, CheckSpec, Step};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub const API_VERSION: &str = "klab.dev/v1";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub metadata: Metadata,
    /// What the trainee is told: the call from the user, in the user's words.
    pub story: String,
    /// What the trainee can see for themselves.
    #[serde(default)]
    pub symptoms: Vec<String>,
    #[serde(default)]
    pub profile: Profile,
    #[serde(default)]
    pub params: IndexMap<String, ParamSpec>,
    /// Versions of the drill for different servers (e.g. PodSecurityPolicy before 1.25).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub setup: Vec<Step>,
    pub faults: Vec<Step>,
    pub checks: Vec<CheckEntry>,
    pub diagnosis: Diagnosis,
    #[serde(default)]
    pub hints: Vec<Hint>,
    pub solution: Vec<Step>,
    pub debrief: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub id: Spanned<String>,
    pub title: String,
    pub difficulty: Difficulty,
    #[serde(default)]
    pub tags: Vec<String>,
    pub time_limit: Duration,
    /// Anything a drill cannot do on kind, said plainly (shown by `show` and `list --output json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitations: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

impl Difficulty {
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }
}

/// What the drill needs of its lab cluster.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// All nodes, the control plane included.
    #[serde(default = "one")]
    pub nodes: u8,
    /// A CNI that enforces NetworkPolicy.
    #[serde(default)]
    pub network_policy: bool,
    /// The apiserver writes an audit log.
    #[serde(default)]
    pub audit_log: bool,
    /// Cluster DNS (CoreDNS) is running.
    #[serde(default)]
    pub dns: bool,
}

impl Default for Profile {
    fn default() -> Self {
        Profile { nodes: 1, network_policy: false, audit_log: false, dns: false }
    }
}

fn one() -> u8 {
    1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ParamType {
    String,
    Int,
    Bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub param_type: ParamType,
    pub default: Spanned<serde_json::Value>,
    #[serde(default)]
    pub description: String,
}

/// A variant applies when the server version satisfies its constraint, e.g. `<1.25`, `>=1.25`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Variant {
    pub id: Spanned<String>,
    pub server_version: Spanned<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Diagnosis {
    pub causes: Vec<Cause>,
    #[serde(default)]
    pub red_herrings: Vec<RedHerring>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cause {
    pub id: Spanned<String>,
    /// How the cause is offered in the picker (neutral wording: it must not give itself away).
    pub summary: String,
    /// The faults that realise this cause.
    pub faults: Vec<Spanned<String>>,
    /// Explained in the debrief.
    #[serde(default)]
    pub explanation: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedHerring {
    pub id: Spanned<String>,
    pub summary: String,
    #[serde(default)]
    pub explanation: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hint {
    pub cost: u32,
    pub text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reference {
    pub title: String,
    pub url: String,
}

/// A reusable, parameterised check (`checks/*.yaml`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckFile {
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub metadata: CheckMetadata,
    #[serde(default)]
    pub params: IndexMap<String, ParamSpec>,
    pub check: CheckSpec,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckMetadata {
    pub id: Spanned<String>,
    pub description: String,
}

/// Just enough of any klab file to know what it claims to be.
#[derive(Debug, Deserialize)]
pub struct Header {
    #[serde(default, rename = "apiVersion")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}
