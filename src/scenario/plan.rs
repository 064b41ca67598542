//! The plan: a scenario with its parameters and variant applied, every template rendered, every
//! manifest parsed back and checked, every `use:` resolved — the exact list of what `drill` will
//! do, in order. `klab render` prints it; the injector and the checker execute it.
//!
//! Building a plan touches no cluster. A plan that builds is safe to execute as far as the file
//! can tell: all manifests have apiVersion, kind and metadata.name.

use super::catalog::{Catalog, Entry, Source};
use super::diag::Diagnostic;
use super::duration::Duration;
use super::kinds::{Action, CheckBody, CheckEntry, CheckSpec, Expect, Role, Step};
use super::model::{Profile, Scenario};
use super::template::{self, Params, Renderer};
use super::version::{MinorVersion, VersionReq};
use super::yaml::{self, Locations};
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Setup,
    Fault,
    Solution,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlannedStep {
    pub phase: Phase,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub action: ActionView,
    /// For `apply`: the parsed objects of the rendered manifest, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<Value>,
    /// For `patch`: the parsed patch body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
}

/// Serializes an action as `{kind: payload}`.
#[derive(Clone, Debug)]
pub struct ActionView(pub Action);

impl Serialize for ActionView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        self.0.write_entry(&mut m)?;
        m.end()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PlannedCheck {
    pub id: String,
    pub role: Role,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// `inline`, or `checks/<id>` for a reusable check.
    pub from: String,
    /// How the cause this check watches heals itself (cause checks), for the debrief.
    #[serde(rename = "selfHeals", skip_serializing_if = "Option::is_none")]
    pub self_heals: Option<super::kinds::SelfHeals>,
    pub spec: CheckSpec,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub scenario: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_reason: Option<String>,
    pub params: Params,
    pub profile: Profile,
    pub setup: Vec<PlannedStep>,
    pub faults: Vec<PlannedStep>,
    pub checks: Vec<PlannedCheck>,
    pub solution: Vec<PlannedStep>,
}

impl Plan {
    pub fn steps(&self) -> impl Iterator<Item = &PlannedStep> {
        self.setup.iter().chain(&self.faults).chain(&self.solution)
    }
}

/// How to pick a variant.
#[derive(Clone, Debug, Default)]
pub enum VariantChoice {
    /// The last declared variant (the newest servers), said so in `variant_reason`.
    #[default]
    Default,
    Named(String),
    ForServer(MinorVersion),
}

#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// `--set key=value`, as typed by the user.
    pub set: Vec<(String, String)>,
    pub variant: VariantChoice,
    /// What is known of the lab; a default kind lab named `klab` when not given.
    pub lab: Option<LabVars>,
}

/// What templates know of the lab as `lab.*`: its name and its nodes, named as kind names them
/// (`<lab>-control-plane`, `<lab>-worker`, `<lab>-worker2`, …).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabVars {
    pub name: String,
    pub control_plane: String,
    pub workers: Vec<String>,
    pub nodes: Vec<String>,
    /// Whether the lab runs cluster DNS (CoreDNS); kind labs do.
    pub dns: bool,
    /// How a pod reaches the apiserver: `https://kubernetes.default.svc/api` with cluster DNS,
    /// else through the `kubernetes` Service's ClusterIP.
    pub api_url: String,
}

impl LabVars {
    pub fn new(name: &str, node_count: u8) -> Self {
        let control_plane = format!("{name}-control-plane");
        let workers: Vec<String> = (1..node_count.max(1))
            .map(|i| if i == 1 { format!("{name}-worker") } else { format!("{name}-worker{i}") })
            .collect();
        let mut nodes = vec![control_plane.clone()];
        nodes.extend(workers.iter().cloned());
        LabVars {
            name: name.to_string(),
            control_plane,
            workers,
            nodes,
            dns: true,
            api_url: "https://kubernetes.default.svc/api".into(),
        }
    }

    /// A lab without cluster DNS: pods reach the apiserver by the Service's ClusterIP.
    pub fn without_dns(mut self, kubernetes_service_ip: &str) -> Self {
        self.dns = false;
        self.api_url = format!("https://{kubernetes_service_ip}/api");
        self
    }
}

/// Builds the plan, or every problem found on the way.
/// The variant a server version picks, with the reason (`server 1.20 matches \`<1.25\``).
pub fn variant_for(s: &Scenario, v: MinorVersion) -> Result<(String, String), String> {
    for var in &s.variants {
        if let Ok(req) = VersionReq::parse(&var.server_version.value)
            && req.matches(v)
        {
            return Ok((var.id.value.clone(), format!("server {v} matches `{}`", var.server_version.value)));
        }
    }
    Err(format!("no variant of `{}` supports server version {v}", s.metadata.id.value))
}

/// Whether building `s`'s plan reads the `lab` variable (node names, DNS, the API URL): only
/// then must the caller learn them from the live lab. Looks at everything `build` renders.
pub fn reads_lab_vars(s: &Scenario) -> bool {
    let steps = s.setup.iter().chain(&s.faults).chain(&s.solution);
    steps.map(serde_json::to_value).chain(s.checks.iter().map(serde_json::to_value)).any(|v| match v {
        Ok(v) => template::may_read_var(&v, "lab"),
        Err(_) => true,
    })
}

pub fn build(cat: &Catalog, entry: &Entry<Scenario>, opts: &PlanOptions) -> Result<Plan, Vec<Diagnostic>> {
    let mut b = Builder::new(&entry.source);
    let s = &entry.item;
    let params = b.params(s, &opts.set);
    let (variant, variant_reason) = b.variant(s, &opts.variant);
    let lab = opts.lab.clone().unwrap_or_else(|| LabVars::new("klab", s.profile.nodes));
    let mut context = params.clone();
    context.insert("lab".into(), serde_json::to_value(&lab).unwrap_or_default());
    // `nodeExec.undo` may use the output of its `save` command, known only when injecting.
    context.insert("saved".into(), Value::from("{{ saved }}"));
    let renderer = Renderer::new(&context);
    let keep = |v: &Option<serde_saphyr::Spanned<String>>| match (v, &variant) {
        (None, _) => true,
        (Some(v), Some(chosen)) => &v.value == chosen,
        (Some(_), None) => false,
    };
    let mut plan = Plan {
        scenario: s.metadata.id.value.clone(),
        title: s.metadata.title.clone(),
        variant: variant.clone(),
        variant_reason,
        params: params.clone(),
        profile: s.profile.clone(),
        setup: vec![],
        faults: vec![],
        checks: vec![],
        solution: vec![],
    };
    for (field, phase, steps) in [
        ("setup", Phase::Setup, &s.setup),
        ("faults", Phase::Fault, &s.faults),
        ("solution", Phase::Solution, &s.solution),
    ] {
        for (i, step) in steps.iter().enumerate() {
            if !keep(&step.variant) {
                continue;
            }
            if let Some(p) = b.step(&renderer, &format!("{field}[{i}]"), phase, step) {
                match phase {
                    Phase::Setup => plan.setup.push(p),
                    Phase::Fault => plan.faults.push(p),
                    Phase::Solution => plan.solution.push(p),
                }
            }
        }
    }
    for (i, c) in s.checks.iter().enumerate() {
        if !keep(&c.variant) {
            continue;
        }
        if let Some(p) = b.check(cat, &renderer, &format!("checks[{i}]"), c) {
            plan.checks.push(p);
        }
    }
    if b.errors.is_empty() { Ok(plan) } else { Err(b.errors) }
}

struct Builder<'a> {
    source: &'a Source,
    locations: Option<Locations>,
    errors: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    fn new(source: &'a Source) -> Self {
        Builder { source, locations: None, errors: vec![] }
    }

    fn error_at(&mut self, path: &str, message: String, help: Option<String>) {
        let text = &self.source.text;
        let (l, c) = self.locations.get_or_insert_with(|| Locations::of(text)).find(path);
        let mut d = Diagnostic::error(self.source.origin.display(), message).at(text, l, c);
        if let Some(h) = help {
            d = d.help(h);
        }
        self.errors.push(d);
    }

    fn params(&mut self, s: &Scenario, set: &[(String, String)]) -> Params {
        let mut overrides = Params::new();
        for (k, v) in set {
            match s.params.get(k) {
                None => {
                    let names: Vec<&str> = s.params.keys().map(String::as_str).collect();
                    let mut d = Diagnostic::error(
                        "--set",
                        format!(
                            "scenario `{}` has no parameter `{k}`{}",
                            s.metadata.id.value,
                            if names.is_empty() {
                                String::new()
                            } else {
                                format!(", expected one of {}", names.join(", "))
                            }
                        ),
                    );
                    if let Some(sug) = yaml::suggest(k, names.into_iter()) {
                        d = d.help(format!("did you mean `{sug}`?"));
                    }
                    self.errors.push(d);
                }
                Some(spec) => match template::parse_override(spec, v) {
                    Ok(val) => {
                        overrides.insert(k.clone(), val);
                    }
                    Err(e) => self.errors.push(Diagnostic::error("--set", format!("{k}: {e}"))),
                },
            }
        }
        template::resolve(&s.params, &overrides)
    }

    fn variant(&mut self, s: &Scenario, choice: &VariantChoice) -> (Option<String>, Option<String>) {
        if s.variants.is_empty() {
            if let VariantChoice::Named(n) = choice {
                self.errors.push(Diagnostic::error(
                    "--variant",
                    format!("scenario `{}` has no variants (asked for `{n}`)", s.metadata.id.value),
                ));
            }
            return (None, None);
        }
        match choice {
            VariantChoice::Default => {
                let last = s.variants.last().map(|v| v.id.value.clone());
                let reason = last
                    .as_ref()
                    .map(|l| format!("no server version known: showing `{l}`, the variant for the newest servers"));
                (last, reason)
            }
            VariantChoice::Named(n) => {
                if s.variants.iter().any(|v| &v.id.value == n) {
                    (Some(n.clone()), Some(format!("chosen with --variant {n}")))
                } else {
                    let ids: Vec<&str> = s.variants.iter().map(|v| v.id.value.as_str()).collect();
                    self.errors.push(Diagnostic::error(
                        "--variant",
                        format!("no variant `{n}`, expected one of {}", ids.join(", ")),
                    ));
                    (None, None)
                }
            }
            VariantChoice::ForServer(v) => match variant_for(s, *v) {
                Ok((id, why)) => (Some(id), Some(why)),
                Err(msg) => {
                    self.errors.push(Diagnostic::error(self.source.origin.display(), msg));
                    (None, None)
                }
            },
        }
    }

    fn step(&mut self, r: &Renderer, path: &str, phase: Phase, step: &Step) -> Option<PlannedStep> {
        let mut value = serde_json::to_value(step).ok()?;
        let mut terrs = Vec::new();
        r.render_value(path, &mut value, &mut terrs);
        for e in terrs {
            self.error_at(
                &e.path,
                format!("template error: {}", e.message),
                Some("declare the variable under `params:` or fix its name".into()),
            );
        }
        let rendered: Step = match serde_json::from_value(value) {
            Ok(s) => s,
            Err(e) => {
                self.error_at(path, format!("after rendering: {e}"), None);
                return None;
            }
        };
        let mut planned = PlannedStep {
            phase,
            id: rendered.id.value.clone(),
            description: rendered.description.clone(),
            action: ActionView(rendered.action.clone()),
            objects: vec![],
            patch: None,
        };
        match &rendered.action {
            Action::Apply(a) => {
                let p = format!("{path}.apply.manifest");
                match parse_manifest(&a.manifest) {
                    Ok(objs) => planned.objects = objs,
                    Err(m) => {
                        self.error_at(&p, m, Some("every document needs apiVersion, kind and metadata.name".into()))
                    }
                }
            }
            Action::Patch(pa) => {
                let p = format!("{path}.patch.patch");
                match parse_patch(&pa.patch, pa.patch_type) {
                    Ok(v) => planned.patch = Some(v),
                    Err(m) => self.error_at(&p, m, None),
                }
            }
            Action::Wait(w) => self.validate_check(&format!("{path}.wait.until"), &w.until),
            _ => {}
        }
        Some(planned)
    }

    fn check(&mut self, cat: &Catalog, r: &Renderer, path: &str, c: &CheckEntry) -> Option<PlannedCheck> {
        let mut value = serde_json::to_value(c).ok()?;
        let mut terrs = Vec::new();
        r.render_value(path, &mut value, &mut terrs);
        for e in terrs {
            self.error_at(
                &e.path,
                format!("template error: {}", e.message),
                Some("declare the variable under `params:` or fix its name".into()),
            );
        }
        let rendered: CheckEntry = match serde_json::from_value(value) {
            Ok(s) => s,
            Err(e) => {
                self.error_at(path, format!("after rendering: {e}"), None);
                return None;
            }
        };
        let (spec, from) = match &rendered.body {
            CheckBody::Inline(spec) => (spec.clone(), "inline".to_string()),
            CheckBody::Use(id) => {
                let Some(def) = cat.check(&id.value) else {
                    let help = yaml::suggest(&id.value, cat.checks.keys().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"));
                    self.error_at(
                        &format!("{path}.use"),
                        format!("unknown check `{}`: no such file in checks/", id.value),
                        help,
                    );
                    return None;
                };
                let mut overrides = Params::new();
                for (k, v) in &rendered.with {
                    match def.item.params.get(k) {
                        None => {
                            let names: Vec<&str> = def.item.params.keys().map(String::as_str).collect();
                            self.error_at(
                                &format!("{path}.with.{k}"),
                                format!(
                                    "check `{}` has no parameter `{k}`, expected one of {}",
                                    id.value,
                                    names.join(", ")
                                ),
                                yaml::suggest(k, names.into_iter()).map(|s| format!("did you mean `{s}`?")),
                            );
                        }
                        Some(spec) => match template::type_error(spec, v) {
                            Some(e) => self.error_at(
                                &format!("{path}.with.{k}"),
                                format!("parameter `{k}` of check `{}`: {e}", id.value),
                                None,
                            ),
                            None => {
                                overrides.insert(k.clone(), v.clone());
                            }
                        },
                    }
                }
                let cparams = template::resolve(&def.item.params, &overrides);
                let cr = Renderer::new(&cparams);
                let mut cv = serde_json::to_value(&def.item.check).ok()?;
                let mut cerrs = Vec::new();
                cr.render_value("check", &mut cv, &mut cerrs);
                let ctext = &def.source.text;
                let clocs = if cerrs.is_empty() { None } else { Some(Locations::of(ctext)) };
                for e in cerrs {
                    let (l, col) = clocs.as_ref().map(|x| x.find(&e.path)).unwrap_or((1, 1));
                    self.errors.push(
                        Diagnostic::error(
                            def.source.origin.display(),
                            format!("template error (used by {path}): {}", e.message),
                        )
                        .at(ctext, l, col),
                    );
                }
                match serde_json::from_value::<CheckSpec>(cv) {
                    Ok(spec) => (spec, format!("checks/{}", id.value)),
                    Err(e) => {
                        self.error_at(path, format!("check `{}` after rendering: {e}", id.value), None);
                        return None;
                    }
                }
            }
        };
        let inner = match &rendered.body {
            CheckBody::Inline(s) => format!("{path}.{}", s.kind()),
            CheckBody::Use(_) => format!("{path}.use"),
        };
        self.validate_check(&inner, &spec);
        Some(PlannedCheck {
            id: rendered.id.value.clone(),
            role: rendered.role,
            description: rendered.description.clone(),
            within: rendered.within,
            timeout: rendered.timeout,
            from,
            self_heals: rendered.self_heals.clone(),
            spec,
        })
    }

    /// Problems a check can only show once rendered: bad regexes, empty commands.
    fn validate_check(&mut self, path: &str, spec: &CheckSpec) {
        let expect = |p: &str, e: &Expect, this: &mut Self| {
            if let Some(re) = &e.stdout_matches
                && let Err(err) = regex::Regex::new(re)
            {
                this.error_at(&format!("{p}.expect.stdoutMatches"), format!("invalid regular expression: {err}"), None);
            }
        };
        match spec {
            CheckSpec::ProbePod(c) => {
                expect(path, &c.expect, self);
                if c.command.is_empty() {
                    self.error_at(&format!("{path}.command"), "empty command".into(), None);
                }
            }
            CheckSpec::PodExec(c) => {
                expect(path, &c.expect, self);
                if c.pod.is_none() == c.label_selector.is_none() {
                    self.error_at(path, "podExec needs exactly one of `pod` or `labelSelector`".into(), None);
                }
            }
            CheckSpec::NodeExec(c) => {
                expect(path, &c.expect, self);
                if c.command.is_empty() {
                    self.error_at(&format!("{path}.command"), "empty command".into(), None);
                }
            }
            CheckSpec::All(v) | CheckSpec::Any(v) => {
                let kind = spec.kind();
                for (i, s) in v.iter().enumerate() {
                    self.validate_check(&format!("{path}[{i}].{}", s.kind()), s);
                }
                if v.is_empty() {
                    self.error_at(path, format!("`{kind}` needs at least one check"), None);
                }
            }
            CheckSpec::Not(s) => self.validate_check(&format!("{path}.{}", s.kind()), s),
            _ => {}
        }
    }
}

/// Parses a rendered manifest into its documents and checks each names its object.
pub fn parse_manifest(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(text, yaml::options_multi()).map_err(|e| {
        let loc = e
            .location()
            .map(|l| format!(" (rendered manifest line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        format!("manifest is not valid YAML{loc}: {}", first_line(&e.without_snippet().to_string()))
    })?;
    if docs.is_empty() {
        return Err("manifest is empty".into());
    }
    for (i, d) in docs.iter().enumerate() {
        let n = i + 1;
        let field = |path: &[&str]| -> Option<&str> {
            let mut cur = d;
            for p in path {
                cur = cur.get(p)?;
            }
            cur.as_str().filter(|s| !s.is_empty())
        };
        if !d.is_object() {
            return Err(format!("document {n} of the manifest is not a mapping"));
        }
        if field(&["apiVersion"]).is_none() {
            return Err(format!("document {n} of the manifest has no apiVersion"));
        }
        if field(&["kind"]).is_none() {
            return Err(format!("document {n} of the manifest has no kind"));
        }
        if field(&["metadata", "name"]).is_none() {
            return Err(format!(
                "document {n} of the manifest ({}) has no metadata.name",
                field(&["kind"]).unwrap_or("?")
            ));
        }
    }
    Ok(docs)
}

fn parse_patch(text: &str, t: super::kinds::PatchType) -> Result<Value, String> {
    let v: Value = serde_saphyr::from_str_with_options(text, yaml::options())
        .map_err(|e| format!("patch is not valid YAML/JSON: {}", first_line(&e.without_snippet().to_string())))?;
    match (t, &v) {
        (super::kinds::PatchType::Json, Value::Array(_)) => Ok(v),
        (super::kinds::PatchType::Json, _) => Err("a JSON patch is a list of operations (`- op: replace …`)".into()),
        (_, Value::Object(_)) => Ok(v),
        _ => Err("a merge or strategic patch is a mapping".into()),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim_start_matches("error:").trim().to_string()
}
