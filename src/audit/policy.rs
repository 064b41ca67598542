//! Audit policies (`audit.k8s.io/v1` `Policy`): the model with each value's place in the file,
//! and the evaluator the apiserver uses — the first rule that matches a request decides its
//! level. The linter in [`crate::audit::lint`] asks this evaluator about typical requests.
//!
//! Parsing goes through klab's YAML budgets ([`crate::scenario::yaml`]); a file that does not
//! parse is a [`Diagnostic`], never a panic.

use super::event::Level;
use crate::scenario::diag::Diagnostic;
use crate::scenario::yaml;
use serde::Deserialize;
use serde_saphyr::Spanned;

type Strings = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyDoc {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    metadata: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    omit_stages: Strings,
    #[serde(default)]
    omit_managed_fields: Option<bool>,
    #[serde(default)]
    rules: Option<Spanned<Vec<Spanned<RuleDoc>>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleDoc {
    level: Spanned<String>,
    #[serde(default)]
    users: Strings,
    #[serde(default)]
    user_groups: Strings,
    #[serde(default)]
    verbs: Strings,
    #[serde(default)]
    resources: Option<Spanned<Vec<Spanned<GroupResourcesDoc>>>>,
    #[serde(default)]
    namespaces: Strings,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Strings,
    #[serde(default)]
    omit_stages: Strings,
    #[serde(default)]
    omit_managed_fields: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupResourcesDoc {
    #[serde(default)]
    group: Option<Spanned<String>>,
    #[serde(default)]
    resources: Strings,
    #[serde(default)]
    resource_names: Strings,
}

/// A place in the policy file, 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub line: u64,
    pub column: u64,
}

fn place<T>(s: &Spanned<T>) -> Place {
    Place { line: s.referenced.line(), column: s.referenced.column() }
}

fn strings(s: &Strings) -> Vec<String> {
    s.as_ref().map(|v| v.value.iter().map(|x| x.value.clone()).collect()).unwrap_or_default()
}

/// Resources of one API group. An absent `group` is `""`: the core group only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupResources {
    pub group: String,
    /// `group:` was written (even as `""`); false when the key is missing.
    pub group_written: bool,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub place: Place,
    pub resource_places: Vec<Place>,
}

/// One rule, as the apiserver reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub level: Level,
    pub users: Vec<String>,
    pub user_groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<GroupResources>,
    pub namespaces: Vec<String>,
    pub non_resource_urls: Vec<String>,
    pub omit_stages: Vec<String>,
    /// Where the rule starts, and where its `level` value stands.
    pub place: Place,
    pub level_place: Place,
}

impl Rule {
    /// Matches every request: no condition at all.
    pub fn is_catch_all(&self) -> bool {
        self.users.is_empty()
            && self.user_groups.is_empty()
            && self.verbs.is_empty()
            && self.resources.is_empty()
            && self.namespaces.is_empty()
            && self.non_resource_urls.is_empty()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub omit_stages: Vec<String>,
    pub omit_stages_place: Option<Place>,
    pub rules: Vec<Rule>,
    pub rules_place: Option<Place>,
    pub kind_place: Option<Place>,
}

/// A request as the policy sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub user: String,
    pub groups: Vec<String>,
    pub verb: String,
    /// `Some` for a resource request; `None` for a non-resource one (`path`).
    pub resource: Option<ResourceAttrs>,
    pub path: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceAttrs {
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*" || spec == path || spec.strip_suffix('*').is_some_and(|p| path.starts_with(p))
}

impl Rule {
    /// The apiserver's matching (k8s.io/apiserver/pkg/audit/policy/checker.go).
    pub fn matches(&self, r: &Request) -> bool {
        if !self.users.is_empty() && !self.users.contains(&r.user) {
            return false;
        }
        if !self.user_groups.is_empty() && !r.groups.iter().any(|g| self.user_groups.contains(g)) {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&r.verb) {
            return false;
        }
        if self.resources.is_empty() && self.namespaces.is_empty() {
            return match &r.resource {
                _ if self.non_resource_urls.is_empty() => true,
                Some(_) => false,
                None => self.non_resource_urls.iter().any(|s| path_matches(&r.path, s)),
            };
        }
        let Some(a) = &r.resource else { return false };
        if !self.namespaces.is_empty() && !self.namespaces.contains(&a.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined =
            if a.subresource.is_empty() { a.resource.clone() } else { format!("{}/{}", a.resource, a.subresource) };
        self.resources.iter().filter(|gr| gr.group == a.group).any(|gr| {
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !gr.resource_names.contains(&a.name) {
                return false;
            }
            gr.resources.iter().any(|res| {
                res == &combined
                    || res == "*"
                    || (!a.subresource.is_empty() && res.strip_prefix("*/") == Some(a.subresource.as_str()))
                    || res.strip_suffix("/*") == Some(a.resource.as_str())
            })
        })
    }
}

impl Policy {
    /// The level the apiserver would log `r` at, and the index of the deciding rule.
    pub fn level_for(&self, r: &Request) -> (Level, Option<usize>) {
        match self.rules.iter().position(|rule| rule.matches(r)) {
            Some(i) => (self.rules[i].level, Some(i)),
            None => (Level::None, None),
        }
    }
}

fn level(s: &str) -> Option<Level> {
    Some(match s {
        "None" => Level::None,
        "Metadata" => Level::Metadata,
        "Request" => Level::Request,
        "RequestResponse" => Level::RequestResponse,
        _ => return None,
    })
}

/// Parses a policy file; `file` names it in diagnostics. Problems that stop the parse are errors.
pub fn parse(file: &str, text: &str) -> Result<Policy, Vec<Diagnostic>> {
    let doc: PolicyDoc = yaml::parse(file, text).map_err(|d| vec![d])?;
    let mut errors = Vec::new();
    if let Some(k) = &doc.kind
        && k.value != "Policy"
    {
        errors.push(
            Diagnostic::error(file, format!("kind is `{}`, not `Policy`", k.value))
                .at(text, k.referenced.line(), k.referenced.column())
                .help("an audit policy starts with `apiVersion: audit.k8s.io/v1` and `kind: Policy`"),
        );
    }
    let _ = (&doc.api_version, doc.omit_managed_fields, &doc.metadata);
    let mut rules = Vec::new();
    for r in doc.rules.as_ref().map(|r| r.value.as_slice()).unwrap_or_default() {
        let rd = &r.value;
        let _ = rd.omit_managed_fields;
        let Some(lv) = level(&rd.level.value) else {
            let p = place(&rd.level);
            errors.push(
                Diagnostic::error(file, format!("unknown level `{}`", rd.level.value))
                    .at(text, p.line, p.column)
                    .help("a level is one of None, Metadata, Request, RequestResponse"),
            );
            continue;
        };
        let resources = rd
            .resources
            .as_ref()
            .map(|v| {
                v.value
                    .iter()
                    .map(|g| GroupResources {
                        group: g.value.group.as_ref().map(|s| s.value.clone()).unwrap_or_default(),
                        group_written: g.value.group.is_some(),
                        resources: strings(&g.value.resources),
                        resource_names: strings(&g.value.resource_names),
                        place: place(g),
                        resource_places: g
                            .value
                            .resources
                            .as_ref()
                            .map(|v| v.value.iter().map(place).collect())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        rules.push(Rule {
            level: lv,
            users: strings(&rd.users),
            user_groups: strings(&rd.user_groups),
            verbs: strings(&rd.verbs),
            resources,
            namespaces: strings(&rd.namespaces),
            non_resource_urls: strings(&rd.non_resource_urls),
            omit_stages: strings(&rd.omit_stages),
            place: place(r),
            level_place: place(&rd.level),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Policy {
        omit_stages: strings(&doc.omit_stages),
        omit_stages_place: doc.omit_stages.as_ref().map(place),
        rules,
        rules_place: doc.rules.as_ref().map(place),
        kind_place: doc.kind.as_ref().map(place),
    })
}
