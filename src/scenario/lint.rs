//! `klab lint`: every problem of every file, each with its place and a way out.
//!
//! Parse errors come from loading (one per file: the parser stops there); everything a parsed
//! file can still get wrong is found here, all of it, plus the problems only a rendered plan
//! shows (templates, manifests) by building the plan of every variant.

use super::catalog::{Catalog, Entry, Source};
use super::diag::{Diagnostic, Severity};
use super::kinds::{Action, CheckBody, Step};
use super::model::{API_VERSION, CheckFile, Scenario};
use super::plan::{self, PlanOptions, VariantChoice};
use super::template;
use super::version::VersionReq;
use super::yaml::{self, Locations};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Serialize)]
pub struct LintReport {
    pub files: usize,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<Diagnostic>,
}

/// Lints the scenarios and checks of `cat` whose origin passes `selected`.
pub fn lint(cat: &Catalog, selected: &dyn Fn(&Source) -> bool) -> LintReport {
    let mut out: Vec<Diagnostic> = cat.diagnostics.clone();
    let mut files: HashSet<String> = cat.diagnostics.iter().map(|d| d.file.clone()).collect();
    for (id, src) in &cat.duplicates {
        files.insert(src.origin.display());
        let locs = Locations::of(&src.text);
        let (l, c) = locs.find("metadata.id");
        let first = cat
            .scenarios
            .get(id)
            .map(|e| e.source.origin.display())
            .or_else(|| cat.checks.get(id).map(|e| e.source.origin.display()))
            .unwrap_or_default();
        out.push(
            Diagnostic::error(src.origin.display(), format!("duplicate id `{id}`: already used by {first}"))
                .at(&src.text, l, c)
                .help("ids must be unique within a catalog; rename one of them"),
        );
    }
    for e in cat.checks.values().filter(|e| selected(&e.source)) {
        files.insert(e.source.origin.display());
        out.extend(lint_check(e));
    }
    for e in cat.scenarios.values().filter(|e| selected(&e.source)) {
        files.insert(e.source.origin.display());
        out.extend(lint_scenario(cat, e));
    }
    out.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    out.dedup();
    let errors = out.iter().filter(|d| d.severity == Severity::Error).count();
    LintReport { files: files.len(), errors, warnings: out.len() - errors, diagnostics: out }
}

struct Ctx<'a> {
    source: &'a Source,
    locs: Locations,
    out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn push(&mut self, sev: Severity, path: &str, key: bool, message: String, help: Option<String>) {
        let (l, c) = if key { self.locs.find_key(path) } else { self.locs.find(path) };
        let mut d = Diagnostic::error(self.source.origin.display(), message).at(&self.source.text, l, c);
        d.severity = sev;
        if let Some(h) = help {
            d = d.help(h);
        }
        self.out.push(d);
    }
    fn error(&mut self, path: &str, message: String, help: Option<String>) {
        self.push(Severity::Error, path, false, message, help)
    }
    fn warn(&mut self, path: &str, message: String, help: Option<String>) {
        self.push(Severity::Warning, path, false, message, help)
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn header(c: &mut Ctx, api_version: &str, kind: &str, want_kind: &str) {
    if api_version != API_VERSION {
        c.error(
            "apiVersion",
            format!("unsupported apiVersion `{api_version}`"),
            Some(format!("write `apiVersion: {API_VERSION}`")),
        );
    }
    if kind != want_kind {
        c.error("kind", format!("kind `{kind}` in a {want_kind} file"), Some(format!("write `kind: {want_kind}`")));
    }
}

fn lint_params(c: &mut Ctx, params: &indexmap::IndexMap<String, super::model::ParamSpec>) {
    for (name, spec) in params {
        if !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            || name.starts_with(|ch: char| ch.is_ascii_digit())
        {
            c.push(
                Severity::Error,
                &format!("params.{name}"),
                true,
                format!("parameter name `{name}` cannot be used in a template"),
                Some("use letters, digits and `_` (e.g. `quota_bytes` or `quotaBytes`)".into()),
            );
        }
        if name == "lab" || name == "saved" {
            c.push(Severity::Error, &format!("params.{name}"), true, "`lab` and `saved` are reserved: templates see the lab as `lab.name`, `lab.controlPlane`, `lab.nodes`, …".into(), Some("choose another parameter name".into()));
        }
        if let Some(e) = template::type_error(spec, &spec.default.value) {
            c.error(&format!("params.{name}.default"), format!("default of `{name}`: {e}"), None);
        }
    }
}

pub fn lint_check(e: &Entry<CheckFile>) -> Vec<Diagnostic> {
    let f = &e.item;
    let mut c = Ctx { source: &e.source, locs: Locations::of(&e.source.text), out: vec![] };
    header(&mut c, &f.api_version.value, &f.kind.value, "Check");
    if !is_slug(&f.metadata.id.value) {
        c.error(
            "metadata.id",
            format!("check id `{}` must be lowercase letters, digits and dashes", f.metadata.id.value),
            None,
        );
    }
    lint_params(&mut c, &f.params);
    // Render with the defaults: undefined variables show here.
    let r = template::Renderer::new(&template::resolve(&f.params, &Default::default()));
    if let Ok(mut v) = serde_json::to_value(&f.check) {
        let mut errs = Vec::new();
        r.render_value("check", &mut v, &mut errs);
        for t in errs {
            c.error(
                &t.path,
                format!("template error: {}", t.message),
                Some("declare the variable under `params:` or fix its name".into()),
            );
        }
    }
    c.out
}

pub fn lint_scenario(cat: &Catalog, e: &Entry<Scenario>) -> Vec<Diagnostic> {
    let s = &e.item;
    let mut c = Ctx { source: &e.source, locs: Locations::of(&e.source.text), out: vec![] };
    header(&mut c, &s.api_version.value, &s.kind.value, "Scenario");
    let id = &s.metadata.id.value;
    if !is_slug(id) {
        c.error(
            "metadata.id",
            format!("scenario id `{id}` must be lowercase letters, digits and dashes (at most 63)"),
            None,
        );
    }
    let stem = std::path::Path::new(&e.source.origin.display()).file_stem().map(|s| s.to_string_lossy().into_owned());
    if let Some(stem) = stem
        && &stem != id
    {
        c.warn(
            "metadata.id",
            format!("id `{id}` differs from the file name `{stem}`"),
            Some("name the file after the id, so authors find it".into()),
        );
    }
    if s.metadata.time_limit.0 == 0 {
        c.error("metadata.timeLimit", "time limit must be more than zero".into(), None);
    }
    if s.story.trim().is_empty() {
        c.error("story", "the story is empty: tell the trainee what the user reported".into(), None);
    }
    if s.profile.nodes == 0 || s.profile.nodes > 8 {
        c.error("profile.nodes", format!("profile.nodes is {}; a lab has 1 to 8 nodes", s.profile.nodes), None);
    }
    lint_params(&mut c, &s.params);

    // Variants.
    let variant_ids: HashSet<&str> = s.variants.iter().map(|v| v.id.value.as_str()).collect();
    for (i, v) in s.variants.iter().enumerate() {
        if let Err(m) = VersionReq::parse(&v.server_version.value) {
            c.error(&format!("variants[{i}].serverVersion"), m, None);
        }
    }
    let check_variant = |c: &mut Ctx, path: &str, v: &Option<serde_saphyr::Spanned<String>>| {
        if let Some(v) = v
            && !variant_ids.contains(v.value.as_str())
        {
            let ids: Vec<&str> = variant_ids.iter().copied().collect();
            c.error(
                &format!("{path}.variant"),
                format!("unknown variant `{}`", v.value),
                Some(if ids.is_empty() {
                    "declare it under `variants:`".into()
                } else {
                    format!("expected one of {}", ids.join(", "))
                }),
            );
        }
    };

    // Steps: unique ids, per-kind rules.
    let mut step_ids: HashMap<String, String> = HashMap::new();
    for (field, steps) in [("setup", &s.setup), ("faults", &s.faults), ("solution", &s.solution)] {
        for (i, st) in steps.iter().enumerate() {
            let path = format!("{field}[{i}]");
            check_variant(&mut c, &path, &st.variant);
            if !is_slug(&st.id.value) {
                c.error(
                    &format!("{path}.id"),
                    format!("step id `{}` must be lowercase letters, digits and dashes", st.id.value),
                    None,
                );
            }
            if let Some(prev) = step_ids.insert(st.id.value.clone(), path.clone()) {
                c.error(&format!("{path}.id"), format!("duplicate step id `{}` (also at {prev})", st.id.value), None);
            }
            lint_step(&mut c, &path, st);
        }
    }
    if s.faults.is_empty() {
        c.error("faults", "a scenario needs at least one fault".into(), None);
    }
    if s.solution.is_empty() {
        c.error(
            "solution",
            "a scenario without a solution: `selftest` and `solve` need the reference fix".into(),
            Some("add the steps that fix the cluster under `solution:`".into()),
        );
    }

    // Checks.
    let mut check_ids = HashSet::new();
    let mut roles = HashSet::new();
    for (i, ch) in s.checks.iter().enumerate() {
        let path = format!("checks[{i}]");
        check_variant(&mut c, &path, &ch.variant);
        roles.insert(ch.role);
        if !check_ids.insert(ch.id.value.clone()) {
            c.error(&format!("{path}.id"), format!("duplicate check id `{}`", ch.id.value), None);
        }
        if let Some(h) = &ch.self_heals {
            lint_self_heals(&mut c, &path, ch.role, h);
        }
        if let CheckBody::Use(u) = &ch.body {
            if cat.check(&u.value).is_none() {
                let help = yaml::suggest(&u.value, cat.checks.keys().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"));
                c.error(
                    &format!("{path}.use"),
                    format!("unknown check `{}`: no such id in checks/", u.value),
                    help.or(Some("`klab lint` lists the checks it knows with --output json".into())),
                );
            }
        } else if !ch.with.is_empty() {
            c.error(
                &format!("{path}.with"),
                "`with:` gives parameters to a reusable check; an inline check has none".into(),
                None,
            );
        }
    }
    if s.checks.is_empty() {
        c.error("checks", "a scenario needs checks: how else would klab know it is fixed?".into(), None);
    } else if !roles.contains(&super::kinds::Role::User) {
        c.warn(
            "checks",
            "no check has `role: user`: nothing verifies the cluster from the user's point of view".into(),
            None,
        );
    }

    // Diagnosis key.
    let fault_ids: HashSet<&str> = s.faults.iter().map(|f| f.id.value.as_str()).collect();
    let mut realised = HashSet::new();
    let mut cause_ids = HashSet::new();
    for (i, cause) in s.diagnosis.causes.iter().enumerate() {
        if !cause_ids.insert(cause.id.value.clone()) {
            c.error(&format!("diagnosis.causes[{i}].id"), format!("duplicate cause id `{}`", cause.id.value), None);
        }
        if cause.faults.is_empty() {
            c.error(
                &format!("diagnosis.causes[{i}].faults"),
                format!("cause `{}` names no fault", cause.id.value),
                Some("list the ids of the faults that realise this cause".into()),
            );
        }
        for (j, f) in cause.faults.iter().enumerate() {
            if fault_ids.contains(f.value.as_str()) {
                realised.insert(f.value.clone());
            } else {
                let help = yaml::suggest(&f.value, fault_ids.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                c.error(
                    &format!("diagnosis.causes[{i}].faults[{j}]"),
                    format!("cause `{}` names fault `{}`, which is not among the faults", cause.id.value, f.value),
                    help,
                );
            }
        }
    }
    for (i, rh) in s.diagnosis.red_herrings.iter().enumerate() {
        if !cause_ids.insert(rh.id.value.clone()) {
            c.error(
                &format!("diagnosis.redHerrings[{i}].id"),
                format!("id `{}` is used twice in the diagnosis key", rh.id.value),
                None,
            );
        }
    }
    if s.diagnosis.causes.is_empty() {
        c.error("diagnosis.causes", "the diagnosis key needs at least one cause".into(), None);
    }
    if s.diagnosis.red_herrings.is_empty() {
        c.warn("diagnosis", "no red herring: a plausible wrong cause makes the diagnosis worth doing".into(), None);
    }
    for (i, f) in s.faults.iter().enumerate() {
        if !realised.contains(&f.id.value) && !matches!(f.action, Action::Wait(_)) {
            c.warn(
                &format!("faults[{i}].id"),
                format!("fault `{}` is not named by any cause of the diagnosis key", f.id.value),
                None,
            );
        }
    }
    for (i, h) in s.hints.iter().enumerate() {
        if h.cost == 0 {
            c.warn(&format!("hints[{i}].cost"), "a hint that costs nothing: give it a cost".into(), None);
        }
    }

    // Render every variant (or the only plan): templates, manifests, check references.
    let choices: Vec<VariantChoice> = if s.variants.is_empty() {
        vec![VariantChoice::Default]
    } else {
        s.variants.iter().map(|v| VariantChoice::Named(v.id.value.clone())).collect()
    };
    let mut out = c.out;
    for choice in choices {
        if let Err(errs) = plan::build(cat, e, &PlanOptions { set: vec![], variant: choice, lab: None }) {
            out.extend(errs);
        }
    }
    out
}

fn lint_step(c: &mut Ctx, path: &str, st: &Step) {
    let kp = format!("{path}.{}", st.action.kind());
    match &st.action {
        Action::NodeExec(a) => {
            if a.command.is_empty() {
                c.error(&format!("{kp}.command"), "empty command".into(), None);
            }
            if let Some(first) = a.command.first()
                && a.command.len() >= 2
                && ["sh", "bash", "/bin/sh", "/bin/bash"].contains(&first.as_str())
                && a.command[1] == "-c"
            {
                c.warn(
                    &format!("{kp}.command"),
                    "a shell command line: klab passes argument vectors; prefer the command itself".into(),
                    Some("write `command: [sysctl, -w, net.ipv4.ip_forward=0]`".into()),
                );
            }
            if a.save.is_some() && a.undo.is_none() {
                c.error(
                    &format!("{kp}.save"),
                    "`save` without `undo`: the saved output is only used by `undo`".into(),
                    None,
                );
            }
        }
        Action::Sysctl(a) => {
            for k in a.settings.keys() {
                if !k.chars().all(|ch| ch.is_ascii_alphanumeric() || "._-/".contains(ch)) || k.is_empty() {
                    c.error(
                        &format!("{kp}.settings.{k}"),
                        format!("`{k}` is not a sysctl key like net.ipv4.ip_forward"),
                        None,
                    );
                }
            }
            if a.settings.is_empty() {
                c.error(&format!("{kp}.settings"), "no settings".into(), None);
            }
        }
        Action::StaticPodFlag(a) => {
            if !a.flag.starts_with("--") {
                c.error(
                    &format!("{kp}.flag"),
                    format!(
                        "flag `{}` should be written with its dashes, e.g. `--{}`",
                        a.flag,
                        a.flag.trim_start_matches('-')
                    ),
                    None,
                );
            }
            if a.remove == a.value.is_some() {
                c.error(&kp, "staticPodFlag needs either `value:` or `remove: true`".into(), None);
            }
            if !is_slug(&a.manifest) && !a.manifest.contains("{{") {
                c.error(
                    &format!("{kp}.manifest"),
                    format!("`{}` is not a static pod manifest name (e.g. etcd, kube-apiserver)", a.manifest),
                    None,
                );
            }
        }
        Action::EtcdFill(a) if (a.value_bytes == 0 || a.value_bytes > 1024 * 1024) => {
            c.error(
                &format!("{kp}.valueBytes"),
                "valueBytes must be between 1 and 1048576 (etcd refuses requests over 1.5 MiB)".into(),
                None,
            );
        }
        Action::Etcdctl(a) if a.args.is_empty() => {
            c.error(&format!("{kp}.args"), "empty etcdctl arguments".into(), None);
        }
        Action::NodeFile(a) => {
            if !a.path.starts_with('/') && !a.path.contains("{{") {
                c.error(&format!("{kp}.path"), format!("`{}` must be an absolute path", a.path), None);
            }
            if a.remove == a.content.is_some() {
                c.error(&kp, "nodeFile needs either `content:` or `remove: true`".into(), None);
            }
            if let Some(m) = &a.mode
                && u32::from_str_radix(m, 8).is_err()
            {
                c.error(&format!("{kp}.mode"), format!("mode `{m}` is not octal like 0644"), None);
            }
        }
        Action::Label(a) if a.labels.is_empty() => {
            c.error(&format!("{kp}.labels"), "no labels to set or remove".into(), None);
        }
        _ => {}
    }
}

/// `selfHeals` on a check: only cause checks are attributed; the trigger must be an API call as
/// the audit log names it.
fn lint_self_heals(c: &mut Ctx, path: &str, role: super::kinds::Role, h: &super::kinds::SelfHeals) {
    let kp = format!("{path}.selfHeals");
    if role != super::kinds::Role::Cause {
        c.error(
            &kp,
            "`selfHeals` is read for `role: cause` checks only (it says who fixed a cause)".into(),
            Some("move it to the cause check that watches this fault, or remove it".into()),
        );
    }
    if h.how.trim().is_empty() {
        c.error(
            &kp,
            "`selfHeals` says nothing: describe how the cause heals itself".into(),
            Some("e.g. `selfHeals: a new pod on the node turns forwarding back on (CNI bridge plugin)`".into()),
        );
    }
    if let Some(t) = &h.trigger {
        let verbs = crate::audit::timeline::WRITE_VERBS;
        if !verbs.contains(&t.verb.as_str()) {
            c.error(
                &format!("{kp}.trigger.verb"),
                format!("`{}` is not a verb that changes anything", t.verb),
                Some(format!("expected one of {}", verbs.join(", "))),
            );
        }
        let ok = |p: &str| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        };
        let parts: Vec<&str> = t.resource.split('/').collect();
        if parts.len() > 2 || !parts.iter().all(|p| ok(p)) {
            c.error(
                &format!("{kp}.trigger.resource"),
                format!("`{}` is not a resource as the audit log names it", t.resource),
                Some("write the plural, lowercase resource, e.g. `pods`, or `pods/eviction` for a subresource".into()),
            );
        }
    }
}
