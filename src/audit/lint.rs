//! `policy lint`: the known gotchas of audit policies, each reported at its file:line:column.
//!
//! - `RequestReceived` not omitted: every request is logged twice.
//! - No catch-all rule: what no rule matches is not logged at all.
//! - A rule shadowed by an earlier, broader one: the first matching rule wins, so it never applies.
//! - `group: ""` (or no `group`) is the core API group only, not "any group".
//! - Secrets, ConfigMaps and TokenReviews at `Request`/`RequestResponse`: credentials in the log.
//! - High-volume read-only calls (health probes, kube-proxy watches, kubelet reads, lists) not
//!   reduced.
//!
//! The checks are conservative: a warning is given only when the evaluator in
//! [`crate::audit::policy`] shows the problem for a concrete request (or a rule is provably
//! covered), so a clean policy gives no warning at all.

use super::event::Level;
use super::policy::{self, GroupResources, Place, Request, ResourceAttrs, Rule};
use crate::scenario::diag::Diagnostic;
use crate::scenario::yaml;

/// Lints the policy at `file` (its `text` already read): parse errors, then every gotcha.
pub fn lint(file: &str, text: &str) -> Vec<Diagnostic> {
    let text = match yaml::as_text(file, text.as_bytes()) {
        Ok(t) => t,
        Err(d) => return vec![d],
    };
    let p = match policy::parse(file, text) {
        Ok(p) => p,
        Err(ds) => return ds,
    };
    let mut out = Vec::new();
    let warn =
        |msg: String, at: Place, help: &str| Diagnostic::warning(file, msg).at(text, at.line, at.column).help(help);
    let top = p.kind_place.unwrap_or(Place { line: 1, column: 1 });

    if !p.omit_stages.iter().any(|s| s == "RequestReceived")
        && p.rules
            .iter()
            .filter(|r| r.level != Level::None)
            .any(|r| !r.omit_stages.iter().any(|s| s == "RequestReceived"))
    {
        out.push(warn(
            "`RequestReceived` is not omitted: each request is logged twice, on arrival and on completion".into(),
            p.omit_stages_place.unwrap_or(top),
            "add `omitStages: [\"RequestReceived\"]` at the top level of the policy",
        ));
    }

    if p.rules.is_empty() {
        out.push(warn(
            "the policy has no rules: nothing is logged".into(),
            p.rules_place.unwrap_or(top),
            "add rules, ending with a catch-all such as `- level: Metadata`",
        ));
    } else if !p.rules.iter().any(Rule::is_catch_all) {
        let last = p.rules.last().map_or(top, |r| r.place);
        out.push(warn(
            "no catch-all rule: requests that match no rule are not logged at all".into(),
            last,
            "end the rules with `- level: Metadata` so everything else is still recorded",
        ));
    }

    for (j, rj) in p.rules.iter().enumerate() {
        if let Some(i) = p.rules[..j].iter().position(|ri| covers(ri, rj)) {
            out.push(warn(
                format!("rule {} never applies: rule {} (line {}) matches every request it would match, and the first matching rule wins", j + 1, i + 1, p.rules[i].place.line),
                rj.place,
                "move the narrower rule above the broader one, or remove it",
            ));
        }
    }

    for r in &p.rules {
        for gr in &r.resources {
            if gr.group.is_empty() {
                for (res, at) in gr.resources.iter().zip(&gr.resource_places) {
                    let base = res.split('/').next().unwrap_or(res);
                    if let Some(g) = non_core_group(base) {
                        let how = if gr.group_written { "`group: \"\"`" } else { "a missing `group`" };
                        out.push(warn(
                            format!("{how} means the core API group only, and `{base}` is in group `{g}`: this entry never matches"),
                            *at,
                            &format!("add an entry `- group: \"{g}\"` with `resources: [\"{base}\"]`"),
                        ));
                    }
                }
            }
        }
    }

    let sensitive = [
        ("", "secrets", "Secrets"),
        ("", "configmaps", "ConfigMaps"),
        ("authentication.k8s.io", "tokenreviews", "TokenReviews"),
        ("", "serviceaccounts/token", "TokenRequests"),
    ];
    let mut seen: Vec<(usize, &str)> = Vec::new();
    for (group, resource, label) in sensitive {
        let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
        for verb in ["create", "update", "get", "list"] {
            for user in
                [("alice", "system:authenticated"), ("system:serviceaccount:default:app", "system:serviceaccounts")]
            {
                let req = Request {
                    user: user.0.into(),
                    groups: vec![user.1.into(), "system:authenticated".into()],
                    verb: verb.into(),
                    resource: Some(ResourceAttrs {
                        group: group.into(),
                        resource: res.into(),
                        subresource: sub.into(),
                        namespace: "default".into(),
                        name: "x".into(),
                    }),
                    path: String::new(),
                };
                if let (lv @ (Level::Request | Level::RequestResponse), Some(i)) = p.level_for(&req)
                    && !seen.contains(&(i, label))
                {
                    seen.push((i, label));
                    out.push(warn(
                        format!("{label} are recorded at level {lv:?} by this rule (e.g. `{verb} {resource}`): their contents, credentials included, end up in the audit log"),
                        p.rules[i].level_place,
                        "log secrets, configmaps and tokenreviews at `level: Metadata` in a rule above this one",
                    ));
                }
            }
        }
    }

    let mut reads_seen: Vec<(usize, &str)> = Vec::new();
    for (label, req, worst_ok) in high_volume_reads() {
        let (lv, rule) = p.level_for(&req);
        if let Some(i) = rule
            && lv > worst_ok
            && !reads_seen.contains(&(i, label))
        {
            reads_seen.push((i, label));
            let want = if worst_ok == Level::None { "level None" } else { "at most level Metadata" };
            out.push(warn(
                format!("high-volume read-only calls ({label}) are recorded at level {lv:?} by this rule: they make most of the log and say little"),
                p.rules[i].level_place,
                &format!("add a rule above it that logs them at {want}"),
            ));
        }
    }
    out.sort_by_key(|d| (d.line, d.column));
    out
}

/// Typical read-only traffic and the highest level it deserves.
fn high_volume_reads() -> Vec<(&'static str, Request, Level)> {
    let non_resource = |path: &str| Request {
        user: "system:anonymous".into(),
        groups: vec!["system:unauthenticated".into()],
        verb: "get".into(),
        resource: None,
        path: path.into(),
    };
    let res = |user: &str, groups: &[&str], verb: &str, group: &str, resource: &str, ns: &str| Request {
        user: user.into(),
        groups: groups.iter().map(|g| (*g).to_string()).chain(["system:authenticated".to_string()]).collect(),
        verb: verb.into(),
        resource: Some(ResourceAttrs {
            group: group.into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: ns.into(),
            name: String::new(),
        }),
        path: String::new(),
    };
    vec![
        ("health and version probes: /healthz, /livez, /readyz, /version", non_resource("/healthz"), Level::None),
        ("health and version probes: /healthz, /livez, /readyz, /version", non_resource("/readyz"), Level::None),
        ("health and version probes: /healthz, /livez, /readyz, /version", non_resource("/livez"), Level::None),
        ("health and version probes: /healthz, /livez, /readyz, /version", non_resource("/version"), Level::None),
        (
            "kube-proxy watching endpoints and services",
            res("system:kube-proxy", &[], "watch", "", "endpoints", ""),
            Level::Metadata,
        ),
        (
            "kube-proxy watching endpoints and services",
            res("system:kube-proxy", &[], "watch", "discovery.k8s.io", "endpointslices", ""),
            Level::Metadata,
        ),
        (
            "kubelets reading nodes and pods",
            res("system:node:worker-1", &["system:nodes"], "get", "", "nodes", ""),
            Level::Metadata,
        ),
        (
            "kubelets reading nodes and pods",
            res("system:node:worker-1", &["system:nodes"], "list", "", "pods", ""),
            Level::Metadata,
        ),
        (
            "get, list and watch by controllers",
            res("system:kube-controller-manager", &[], "list", "", "pods", "default"),
            Level::Metadata,
        ),
        (
            "get, list and watch by controllers",
            res(
                "system:serviceaccount:kube-system:replicaset-controller",
                &["system:serviceaccounts"],
                "watch",
                "apps",
                "replicasets",
                "default",
            ),
            Level::Metadata,
        ),
        (
            "get, list and watch by controllers",
            res("system:serviceaccount:kube-system:coredns", &["system:serviceaccounts"], "watch", "", "services", ""),
            Level::Metadata,
        ),
    ]
}

/// Is `b` covered by `a`: does every request that matches `b` match `a`? (Conservative: `false`
/// when unsure.)
pub fn covers(a: &Rule, b: &Rule) -> bool {
    let subset = |x: &[String], y: &[String]| x.is_empty() || (!y.is_empty() && y.iter().all(|v| x.contains(v)));
    if !subset(&a.users, &b.users) || !subset(&a.user_groups, &b.user_groups) || !subset(&a.verbs, &b.verbs) {
        return false;
    }
    let a_res = !a.resources.is_empty() || !a.namespaces.is_empty();
    let b_res = !b.resources.is_empty() || !b.namespaces.is_empty();
    match (a_res, a.non_resource_urls.is_empty(), b_res, b.non_resource_urls.is_empty()) {
        (false, true, _, _) => true,
        (false, false, false, false) => {
            b.non_resource_urls.iter().all(|spec| a.non_resource_urls.iter().any(|s| url_covers(s, spec)))
        }
        (true, _, true, _) => {
            subset(&a.namespaces, &b.namespaces)
                && (a.resources.is_empty()
                    || (!b.resources.is_empty()
                        && b.resources.iter().all(|gb| a.resources.iter().any(|ga| gr_covers(ga, gb)))))
        }
        _ => false,
    }
}

fn url_covers(a: &str, b: &str) -> bool {
    a == "*" || a == b || a.strip_suffix('*').is_some_and(|p| b.trim_end_matches('*').starts_with(p))
}

fn gr_covers(a: &GroupResources, b: &GroupResources) -> bool {
    if a.group != b.group {
        return false;
    }
    if !a.resource_names.is_empty()
        && (b.resource_names.is_empty() || !b.resource_names.iter().all(|n| a.resource_names.contains(n)))
    {
        return false;
    }
    if a.resources.is_empty() {
        return true;
    }
    !b.resources.is_empty() && b.resources.iter().all(|rb| a.resources.iter().any(|ra| res_covers(ra, rb)))
}

fn res_covers(a: &str, b: &str) -> bool {
    if a == "*" || a == b {
        return true;
    }
    let (b_res, b_sub) = b.split_once('/').unwrap_or((b, ""));
    if let Some(r) = a.strip_suffix("/*") {
        return r == b_res && b_res != "*";
    }
    if let Some(s) = a.strip_prefix("*/") {
        return !b_sub.is_empty() && b_sub == s;
    }
    false
}

/// The API group of a well-known resource that is not in the core group.
fn non_core_group(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "deployments" | "replicasets" | "daemonsets" | "statefulsets" | "controllerrevisions" => "apps",
        "jobs" | "cronjobs" => "batch",
        "ingresses" | "networkpolicies" | "ingressclasses" => "networking.k8s.io",
        "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings" => "rbac.authorization.k8s.io",
        "tokenreviews" => "authentication.k8s.io",
        "subjectaccessreviews"
        | "selfsubjectaccessreviews"
        | "localsubjectaccessreviews"
        | "selfsubjectrulesreviews" => "authorization.k8s.io",
        "leases" => "coordination.k8s.io",
        "horizontalpodautoscalers" => "autoscaling",
        "poddisruptionbudgets" => "policy",
        "customresourcedefinitions" => "apiextensions.k8s.io",
        "certificatesigningrequests" => "certificates.k8s.io",
        "storageclasses" | "volumeattachments" | "csidrivers" | "csinodes" => "storage.k8s.io",
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" | "validatingadmissionpolicies" => {
            "admissionregistration.k8s.io"
        }
        "priorityclasses" => "scheduling.k8s.io",
        "endpointslices" => "discovery.k8s.io",
        "runtimeclasses" => "node.k8s.io",
        "flowschemas" | "prioritylevelconfigurations" => "flowcontrol.apiserver.k8s.io",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(users: &[&str], verbs: &[&str], group: &str, resources: &[&str]) -> Rule {
        let gr = GroupResources {
            group: group.into(),
            resources: resources.iter().map(|s| (*s).into()).collect(),
            ..GroupResources::default()
        };
        Rule {
            users: users.iter().map(|s| (*s).into()).collect(),
            verbs: verbs.iter().map(|s| (*s).into()).collect(),
            resources: if resources.is_empty() && group == "-" { vec![] } else { vec![gr] },
            ..Rule::default()
        }
    }

    #[test]
    fn broader_rules_cover_narrower_ones_only() {
        let broad = rule(&[], &[], "", &["pods", "secrets"]);
        let narrow = rule(&["alice"], &["get"], "", &["pods"]);
        assert!(covers(&broad, &narrow));
        assert!(!covers(&narrow, &broad));
        assert!(covers(&rule(&[], &[], "", &["pods/*"]), &rule(&[], &[], "", &["pods/log"])));
        assert!(!covers(&rule(&[], &[], "apps", &["*"]), &rule(&[], &[], "", &["pods"])));
        assert!(covers(&Rule::default(), &narrow));
    }
}
