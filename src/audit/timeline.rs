//! `timeline`: the calls that changed something (create, update, patch, delete) and the calls
//! that failed, in the order they happened, optionally for one object — who created it, who
//! patched it, who deleted it, and who tried and was refused.
//!
//! Selection runs on the fast scanner; only the selected lines are parsed into full events. Every
//! string an entry carries is redacted before it leaves this module.

use super::error::AuditError;
use super::event::Event;
use super::filter::Filter;
use super::read::{Pos, ReadOptions, ReadStats, Source, fold};
use super::redact;
use super::scan::Fields;
use serde::Serialize;

/// The verbs that change state.
pub const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// One object: `namespace/kind/name`, or `kind/name` for cluster-scoped ones. The kind may be the
/// resource (`deployments`), the kind (`Deployment`) or a short name (`deploy`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSel {
    pub namespace: Option<String>,
    pub kind: String,
    pub name: String,
}

impl std::str::FromStr for ObjectSel {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self, AuditError> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            AuditError::BadArgument { what: "object", value: s.into(), expected: "namespace/kind/name, or kind/name for a cluster-scoped object (e.g. default/deployment/web, node/worker-1)".into() }
        };
        match parts.as_slice() {
            [ns, kind, name] if !kind.is_empty() && !name.is_empty() => {
                Ok(ObjectSel { namespace: Some((*ns).into()), kind: (*kind).into(), name: (*name).into() })
            }
            [kind, name] if !kind.is_empty() && !name.is_empty() => {
                Ok(ObjectSel { namespace: None, kind: (*kind).into(), name: (*name).into() })
            }
            _ => Err(bad()),
        }
    }
}

const SHORT_NAMES: &[(&str, &str)] = &[
    ("po", "pods"),
    ("svc", "services"),
    ("deploy", "deployments"),
    ("ds", "daemonsets"),
    ("sts", "statefulsets"),
    ("rs", "replicasets"),
    ("cm", "configmaps"),
    ("ns", "namespaces"),
    ("no", "nodes"),
    ("sa", "serviceaccounts"),
    ("pvc", "persistentvolumeclaims"),
    ("pv", "persistentvolumes"),
    ("netpol", "networkpolicies"),
    ("ing", "ingresses"),
    ("cj", "cronjobs"),
    ("ep", "endpoints"),
    ("crd", "customresourcedefinitions"),
];

/// Does the event's `resource` name this kind?
pub fn kind_matches(resource: &str, kind: &str) -> bool {
    let k = kind.to_ascii_lowercase();
    if resource == k || SHORT_NAMES.iter().any(|(s, r)| *s == k && *r == resource) {
        return true;
    }
    resource == format!("{k}s")
        || resource == format!("{k}es")
        || k.strip_suffix('y').is_some_and(|stem| resource == format!("{stem}ies"))
}

impl ObjectSel {
    fn matches(&self, f: &Fields<'_>) -> bool {
        f.name.is(&self.name)
            && self.namespace.as_deref().is_none_or(|ns| f.namespace.is(ns))
            && kind_matches(&f.resource.get(), &self.kind)
    }
}

/// One line of the timeline (already redacted).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub time: String,
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<String>,
    pub verb: String,
    /// `pods`, or `pods/exec` with its subresource.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub code: Option<u16>,
    pub latency_ms: Option<f64>,
    pub source_ip: String,
    pub user_agent: String,
    pub request_uri: String,
    /// Why it failed (the status message) or why it was allowed (the authorizer's reason).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
    pub source: String,
    pub line: u64,
}

impl Entry {
    pub fn failed(&self) -> bool {
        self.code.is_some_and(|c| c >= 400)
    }

    fn of(e: &Event, source: String, line: u64) -> Entry {
        let o = e.object_ref.clone().unwrap_or_default();
        let resource =
            if o.subresource.is_empty() { o.resource.clone() } else { format!("{}/{}", o.resource, o.subresource) };
        let code = e.code();
        let why = match (&e.response_status, code) {
            (Some(s), Some(c)) if c >= 400 => {
                if s.message.is_empty() {
                    s.reason.clone()
                } else {
                    s.message.clone()
                }
            }
            _ => e.reason().unwrap_or_default().to_string(),
        };
        Entry {
            time: e.received().map(|t| format!("{t:.3}")).unwrap_or_default(),
            user: e.user.username.clone(),
            impersonated_user: e.impersonated_user.as_ref().map(|u| u.username.clone()),
            verb: e.verb.clone(),
            resource,
            namespace: o.namespace,
            name: o.name,
            code,
            latency_ms: e.latency().map(|d| d.as_micros() as f64 / 1000.0),
            source_ip: e.source_ips.first().cloned().unwrap_or_default(),
            user_agent: redact::text(&e.user_agent).into_owned(),
            request_uri: redact::uri(&e.request_uri).into_owned(),
            why: redact::text(&why).into_owned(),
            source,
            line,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TimelineOptions {
    pub filter: Filter,
    pub object: Option<ObjectSel>,
    /// Include reads too (get, list, watch), not only writes and failures.
    pub all_verbs: bool,
    /// Keep the last `limit` entries (0: all).
    pub limit: usize,
    pub read: ReadOptions,
}

#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    pub entries: Vec<Entry>,
    /// Entries before `limit` cut the list.
    pub total: usize,
    pub read: ReadStats,
}

/// Reads `sources` and returns the selected calls in time order.
pub fn timeline(sources: &[Source], opts: &TimelineOptions) -> Result<Timeline, AuditError> {
    let (accs, read, index) = fold(sources, &opts.read, Vec::<(i64, Pos, Event)>::new, |acc, f, line, pos| {
        if !opts.filter.matches(f) || opts.object.as_ref().is_some_and(|o| !o.matches(f)) {
            return;
        }
        let write = WRITE_VERBS.iter().any(|v| f.verb.is(v));
        let failed = f.code.is_some_and(|c| c >= 400);
        if !(opts.all_verbs || write || failed) {
            return;
        }
        if let Ok(mut e) = Event::from_json(line) {
            e.request_object = None;
            e.response_object = None;
            let t = e.received().map_or(i64::MIN, |t| t.as_microsecond());
            acc.push((t, pos, e));
        }
    })?;
    let mut all: Vec<(i64, Pos, Event)> = accs.into_iter().flatten().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let total = all.len();
    let skip = if opts.limit > 0 { total.saturating_sub(opts.limit) } else { 0 };
    let entries = all
        .into_iter()
        .skip(skip)
        .map(|(_, pos, e)| {
            Entry::of(&e, read.sources.get(pos.source as usize).cloned().unwrap_or_default(), index.line(pos))
        })
        .collect();
    Ok(Timeline { entries, total, read })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_resources_kinds_and_short_names() {
        assert!(
            kind_matches("deployments", "Deployment")
                && kind_matches("deployments", "deploy")
                && kind_matches("networkpolicies", "NetworkPolicy")
        );
        assert!(kind_matches("ingresses", "ingress") && !kind_matches("pods", "deployment"));
    }

    #[test]
    fn objects_parse_namespaced_or_cluster_scoped() {
        assert_eq!("default/deploy/web".parse::<ObjectSel>().ok().and_then(|o| o.namespace), Some("default".into()));
        assert_eq!("node/worker-1".parse::<ObjectSel>().ok().map(|o| o.namespace), Some(None));
        assert!("web".parse::<ObjectSel>().is_err() && "a/b/c/d".parse::<ObjectSel>().is_err());
    }
}
