//! Which events a command looks at: verbs, status codes (`403`, `4xx`), users (`alice`,
//! `system:serviceaccount:*`), resources, namespaces, a time window, and stages to leave out
//! (`RequestReceived` by default, so each request counts once).
//!
//! Filters test the scanner's borrowed fields and must stay allocation-free on the hot path.

use super::error::AuditError;
use super::scan::{Fields, Text};
use std::str::FromStr;

/// A status code or a class of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeMatch {
    Exact(u16),
    /// `4xx` is `Class(4)`.
    Class(u16),
}

impl CodeMatch {
    pub fn matches(self, code: u16) -> bool {
        match self {
            CodeMatch::Exact(c) => c == code,
            CodeMatch::Class(c) => code / 100 == c,
        }
    }
}

impl FromStr for CodeMatch {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self, AuditError> {
        let bad = || AuditError::BadArgument {
            what: "status code",
            value: s.to_string(),
            expected: "a code like 403 or a class like 4xx".into(),
        };
        let t = s.trim().to_ascii_lowercase();
        if let Some(d) = t.strip_suffix("xx") {
            return match d.parse::<u16>() {
                Ok(c) if (1..=5).contains(&c) => Ok(CodeMatch::Class(c)),
                _ => Err(bad()),
            };
        }
        match t.parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Ok(CodeMatch::Exact(c)),
            _ => Err(bad()),
        }
    }
}

/// An exact name, or a prefix when it ends with `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern(pub String);

impl Pattern {
    pub fn matches_text(&self, t: Text<'_>) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) if t.raw().len() >= prefix.len() && !t.raw().contains(&b'\\') => {
                t.raw().starts_with(prefix.as_bytes())
            }
            Some(prefix) => t.get().starts_with(prefix),
            None => t.is(&self.0),
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => s.starts_with(prefix),
            None => s == self.0,
        }
    }
}

/// The selection of events. Empty lists mean "any".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub verbs: Vec<String>,
    pub codes: Vec<CodeMatch>,
    pub users: Vec<Pattern>,
    /// `pods`, or `pods/log` for a subresource.
    pub resources: Vec<String>,
    pub namespaces: Vec<String>,
    /// Microseconds since the epoch, inclusive.
    pub since: Option<i64>,
    /// Microseconds since the epoch, exclusive.
    pub until: Option<i64>,
    pub exclude_stages: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            verbs: Vec::new(),
            codes: Vec::new(),
            users: Vec::new(),
            resources: Vec::new(),
            namespaces: Vec::new(),
            since: None,
            until: None,
            exclude_stages: vec!["RequestReceived".into()],
        }
    }
}

fn resource_matches(want: &str, f: &Fields<'_>) -> bool {
    match want.split_once('/') {
        Some((r, sub)) => f.resource.is(r) && (sub == "*" || f.subresource.is(sub)),
        None => f.resource.is(want),
    }
}

impl Filter {
    /// Every event, every stage.
    pub fn everything() -> Filter {
        Filter { exclude_stages: Vec::new(), ..Filter::default() }
    }

    pub fn matches(&self, f: &Fields<'_>) -> bool {
        if self.exclude_stages.iter().any(|s| f.stage.is(s)) {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.iter().any(|v| f.verb.is(v)) {
            return false;
        }
        if !self.codes.is_empty() && !f.code.is_some_and(|c| self.codes.iter().any(|m| m.matches(c))) {
            return false;
        }
        if !self.users.is_empty() && !self.users.iter().any(|u| u.matches_text(f.username)) {
            return false;
        }
        if !self.resources.is_empty() && !self.resources.iter().any(|r| resource_matches(r, f)) {
            return false;
        }
        if !self.namespaces.is_empty() && !self.namespaces.iter().any(|n| f.namespace.is(n)) {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(t) = f.received_micros() else { return false };
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_as_exact_or_class() {
        assert_eq!("403".parse::<CodeMatch>().ok(), Some(CodeMatch::Exact(403)));
        assert_eq!("4XX".parse::<CodeMatch>().ok(), Some(CodeMatch::Class(4)));
        assert!(
            "4x".parse::<CodeMatch>().is_err()
                && "99".parse::<CodeMatch>().is_err()
                && "9xx".parse::<CodeMatch>().is_err()
        );
        assert!(CodeMatch::Class(4).matches(422) && !CodeMatch::Class(4).matches(500));
    }

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        let p = Pattern("system:serviceaccount:*".into());
        assert!(p.matches("system:serviceaccount:kube-system:foo") && !p.matches("system:node:a"));
        assert!(Pattern("alice".into()).matches("alice") && !Pattern("alice".into()).matches("alice2"));
    }
}
