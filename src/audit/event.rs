//! The typed model of one audit `Event` (`audit.k8s.io/v1`, and the older `v1beta1` shape):
//! what happened, who did it (and as whom), why it was allowed, when, and from where.
//!
//! This is the owned, complete model for library users (the debrief timeline, `audit` checks).
//! The summary path does not build it: it uses the borrowing scanner in [`crate::audit::scan`].
//! Bodies (`requestObject`, `responseObject`) may hold Secret data: print them only through
//! [`Event::redacted`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The annotation the authorizer sets to `allow` or `forbid`.
pub const DECISION_ANNOTATION: &str = "authorization.k8s.io/decision";
/// The annotation that says why (e.g. which RoleBinding allowed it).
pub const REASON_ANNOTATION: &str = "authorization.k8s.io/reason";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    #[default]
    ResponseComplete,
    Panic,
    #[serde(other)]
    Unknown,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
            Stage::Unknown => "Unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum Level {
    None,
    #[default]
    Metadata,
    Request,
    RequestResponse,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    pub code: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// One audit event. Unknown fields are ignored, so newer apiservers still parse.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub level: Level,
    #[serde(default, rename = "auditID")]
    pub audit_id: String,
    #[serde(default)]
    pub stage: Stage,
    #[serde(default, rename = "requestURI")]
    pub request_uri: String,
    #[serde(default)]
    pub verb: String,
    #[serde(default)]
    pub user: UserInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<UserInfo>,
    #[serde(default, rename = "sourceIPs")]
    pub source_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<ResponseStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_object: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_object: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_received_timestamp: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_timestamp: Option<Timestamp>,
    /// `v1beta1` only: when the event was emitted (second precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Event {
    /// When the request arrived (`requestReceivedTimestamp`, else the `v1beta1` `timestamp`).
    pub fn received(&self) -> Option<Timestamp> {
        self.request_received_timestamp.or(self.timestamp).or(self.stage_timestamp)
    }

    /// How long the apiserver took to reach this stage.
    pub fn latency(&self) -> Option<jiff::SignedDuration> {
        let (a, b) = (self.request_received_timestamp?, self.stage_timestamp?);
        let d = b.duration_since(a);
        (!d.is_negative()).then_some(d)
    }

    pub fn code(&self) -> Option<u16> {
        self.response_status.as_ref().map(|s| s.code).filter(|c| *c != 0)
    }

    pub fn resource(&self) -> &str {
        self.object_ref.as_ref().map_or("", |o| o.resource.as_str())
    }

    pub fn namespace(&self) -> &str {
        self.object_ref.as_ref().map_or("", |o| o.namespace.as_str())
    }

    pub fn name(&self) -> &str {
        self.object_ref.as_ref().map_or("", |o| o.name.as_str())
    }

    /// `allow` or `forbid`, when the authorizer recorded it.
    pub fn decision(&self) -> Option<&str> {
        self.annotations.get(DECISION_ANNOTATION).map(String::as_str)
    }

    /// Why the request was authorised (e.g. the RBAC binding), when recorded.
    pub fn reason(&self) -> Option<&str> {
        self.annotations.get(REASON_ANNOTATION).map(String::as_str)
    }

    /// A copy fit to print: Secret data, tokens and credentials replaced by `<redacted>`.
    pub fn redacted(&self) -> Event {
        let mut e = self.clone();
        let resource = e.resource().to_string();
        e.request_uri = crate::audit::redact::uri(&e.request_uri).into_owned();
        e.user_agent = crate::audit::redact::text(&e.user_agent).into_owned();
        for v in [&mut e.request_object, &mut e.response_object].into_iter().flatten() {
            crate::audit::redact::object(&resource, v);
        }
        if let Some(s) = e.response_status.as_mut() {
            s.message = crate::audit::redact::text(&s.message).into_owned();
        }
        for v in e.annotations.values_mut() {
            *v = crate::audit::redact::text(v).into_owned();
        }
        e
    }

    /// Parses one JSON line.
    pub fn from_json(line: &[u8]) -> Result<Event, String> {
        let e: Event = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        if e.verb.is_empty() && e.audit_id.is_empty() {
            return Err("not an audit event (no verb, no auditID)".into());
        }
        Ok(e)
    }
}
