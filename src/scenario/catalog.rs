//! The catalog: built-in scenarios, checks and templates (embedded in the binary at build time)
//! plus the user's folders (`--catalog DIR`, `KLAB_CATALOG`), which add to or override them by id.
//!
//! Loading never stops at a bad file: its diagnostic is kept and the rest still loads, so `list`
//! works while one scenario is broken and `lint` reports every file at once.

use super::diag::Diagnostic;
use super::model::{CheckFile, Header, Scenario};
use super::yaml;
use include_dir::{Dir, include_dir};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

static BUILTIN_SCENARIOS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/scenarios");
static BUILTIN_CHECKS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/checks");
static BUILTIN_TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Where a file came from, as it is named in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Embedded; named by its path in the klab repository.
    Builtin(String),
    File(PathBuf),
}

impl Origin {
    pub fn display(&self) -> String {
        match self {
            Origin::Builtin(p) => p.clone(),
            Origin::File(p) => p.display().to_string(),
        }
    }
    pub fn is_builtin(&self) -> bool {
        matches!(self, Origin::Builtin(_))
    }
}

#[derive(Clone, Debug)]
pub struct Source {
    pub origin: Origin,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Entry<T> {
    pub source: Source,
    pub item: T,
}

#[derive(Default)]
pub struct Catalog {
    pub scenarios: IndexMap<String, Entry<Scenario>>,
    pub checks: IndexMap<String, Entry<CheckFile>>,
    templates: IndexMap<String, String>,
    /// Problems met while loading (parse errors, duplicate ids, unreadable files).
    pub diagnostics: Vec<Diagnostic>,
    /// Files whose ids were already taken in the same layer (reported by lint).
    pub duplicates: Vec<(String, Source)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Scenario,
    Check,
    Any,
}

impl Catalog {
    /// Built-ins, then each user folder in order (a later folder overrides an earlier one).
    /// What `klab list` needs: every scenario, built-in and from the user's folders. Checks
    /// and templates are not parsed (lint and render load everything).
    pub fn load_for_listing(user_dirs: &[PathBuf]) -> Catalog {
        let mut c = Catalog::builtin_with(false);
        for d in user_dirs {
            c.add_path(d, false);
        }
        c
    }

    pub fn load(user_dirs: &[PathBuf]) -> Catalog {
        let mut c = Catalog::builtin();
        for d in user_dirs {
            c.add_path(d, false);
        }
        c
    }

    /// What a command about one drill needs (`klab check` of the running drill): the user's
    /// folders, every template, and of the built-in scenarios and checks only the drill's own
    /// file and the check files it `use`s (built-in files are named after their id; a test holds
    /// that). A user file still overrides a built-in one of the same id. When the drill or a
    /// check it uses is not found this way (or a `use` is templated), the whole catalog is
    /// loaded, so errors and suggestions read as they always did.
    pub fn load_for_drill(user_dirs: &[PathBuf], id: &str) -> Catalog {
        let file = format!("{id}.yaml");
        let mut c = Catalog::builtin_filtered(|_| false, |name| name == file);
        for d in user_dirs {
            c.add_path(d, false);
        }
        let Some(e) = c.scenario(id) else { return Catalog::load(user_dirs) };
        let mut uses = Vec::new();
        for ch in &e.item.checks {
            if let crate::scenario::kinds::CheckBody::Use(u) = &ch.body {
                if u.value.contains(['{', '}']) {
                    return Catalog::load(user_dirs);
                }
                uses.push(format!("{}.yaml", u.value));
            }
        }
        if !uses.is_empty() {
            // Built-ins first, then what the user's folders hold over them (as `load` does).
            let builtin = Catalog::builtin_filtered(|name| uses.iter().any(|u| u == name), |_| false);
            for (cid, entry) in builtin.checks {
                c.checks.entry(cid).or_insert(entry);
            }
            c.diagnostics.extend(builtin.diagnostics);
        }
        if uses_missing_check(&c, id) {
            return Catalog::load(user_dirs);
        }
        c
    }

    pub fn builtin() -> Catalog {
        Catalog::builtin_with(true)
    }

    /// The built-in catalog; without checks and templates for commands that only list drills.
    fn builtin_with(checks: bool) -> Catalog {
        Catalog::builtin_filtered(|_| checks, |_| true)
    }

    /// The built-in catalog with the check and scenario files whose paths (below `checks/` and
    /// `scenarios/`) the filters take.
    fn builtin_filtered(keep_check: impl Fn(&str) -> bool, keep_scenario: impl Fn(&str) -> bool) -> Catalog {
        let mut c = Catalog::default();
        let checks = files_of(&BUILTIN_CHECKS)
            .into_iter()
            .filter(|f| keep_check(&f.0))
            .map(|f| (Origin::Builtin(format!("checks/{}", f.0)), f.1, Expect::Check, false));
        let scenarios = files_of(&BUILTIN_SCENARIOS)
            .into_iter()
            .filter(|f| keep_scenario(&f.0))
            .map(|f| (Origin::Builtin(format!("scenarios/{}", f.0)), f.1, Expect::Scenario, false));
        c.add_texts(checks.chain(scenarios).collect());
        for file in BUILTIN_TEMPLATES.files() {
            if let Some(text) = file.contents_utf8() {
                c.templates.insert(file.path().to_string_lossy().into_owned(), text.to_string());
            }
        }
        c
    }

    /// Adds a file, or every YAML file below a folder (hidden folders excepted). With `strict`
    /// (what `lint` asks for) every YAML file must be a klab file; otherwise, outside
    /// `scenarios/` and `checks/`, YAML files are taken only if they say they are.
    pub fn add_path(&mut self, path: &Path, strict: bool) {
        if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files);
            files.sort();
            // Read them all, then parse on all cores (see `add_texts`).
            let mut texts: Vec<(Origin, Vec<u8>, Expect, bool)> = Vec::new();
            for f in files {
                let in_catalog_dir = f
                    .strip_prefix(path)
                    .ok()
                    .and_then(|r| r.components().next())
                    .map(|c| c.as_os_str().to_string_lossy().into_owned());
                let expect = match in_catalog_dir.as_deref() {
                    Some("scenarios") => Expect::Scenario,
                    Some("checks") => Expect::Check,
                    _ => Expect::Any,
                };
                let origin = Origin::File(f.clone());
                match std::fs::read(&f) {
                    Ok(bytes) => texts.push((origin, bytes, expect, !strict && expect == Expect::Any)),
                    Err(e) => self.diagnostics.push(Diagnostic::error(origin.display(), format!("cannot read: {e}"))),
                }
            }
            let mut batch = Vec::new();
            for (origin, bytes, expect, skip) in &texts {
                match yaml::as_text(&origin.display(), bytes) {
                    Ok(text) => batch.push((origin.clone(), text, *expect, *skip)),
                    Err(d) => self.diagnostics.push(d),
                }
            }
            self.add_texts(batch);
            let tdir = path.join("templates");
            if tdir.is_dir() {
                let mut tfiles = Vec::new();
                walk_all(&tdir, &mut tfiles);
                for f in tfiles {
                    if let (Ok(rel), Ok(text)) = (f.strip_prefix(&tdir), std::fs::read_to_string(&f)) {
                        self.templates.insert(rel.to_string_lossy().into_owned(), text);
                    }
                }
            }
        } else {
            self.add_file(path, Expect::Any, false);
        }
    }

    fn add_file(&mut self, path: &Path, expect: Expect, skip_foreign: bool) {
        let origin = Origin::File(path.to_path_buf());
        match std::fs::read(path) {
            Ok(bytes) => match yaml::as_text(&origin.display(), &bytes) {
                Ok(text) => self.add_text(origin, text, expect, skip_foreign),
                Err(d) => self.diagnostics.push(d),
            },
            Err(e) => self.diagnostics.push(Diagnostic::error(origin.display(), format!("cannot read: {e}"))),
        }
    }

    fn add_text(&mut self, origin: Origin, text: &str, expect: Expect, skip_foreign: bool) {
        let parsed = parse_text(origin, text, expect, skip_foreign);
        self.add_parsed(parsed);
    }

    /// Parses many files on all cores (YAML parsing is what loading costs), then adds them in
    /// their given order, so duplicates and overrides resolve as if read one by one.
    fn add_texts(&mut self, files: Vec<(Origin, &str, Expect, bool)>) {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
        if threads < 2 || files.len() < 4 {
            for (o, t, e, s) in files {
                self.add_text(o, t, e, s);
            }
            return;
        }
        let chunk = files.len().div_ceil(threads);
        let mut jobs: Vec<Vec<(Origin, &str, Expect, bool)>> = Vec::new();
        let mut it = files.into_iter().peekable();
        while it.peek().is_some() {
            jobs.push(it.by_ref().take(chunk).collect());
        }
        let results: Vec<Vec<Parsed>> = std::thread::scope(|sc| {
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|job| sc.spawn(move || job.into_iter().map(|(o, t, e, s)| parse_text(o, t, e, s)).collect()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        for p in results.into_iter().flatten() {
            self.add_parsed(p);
        }
    }

    fn add_parsed(&mut self, p: Parsed) {
        match p {
            Parsed::Scenario(id, e) => self.insert_scenario(id, *e),
            Parsed::Check(id, e) => self.insert_check(id, *e),
            Parsed::Problem(d) => self.diagnostics.push(*d),
            Parsed::Foreign => {}
        }
    }

    fn insert_scenario(&mut self, id: String, e: Entry<Scenario>) {
        if let Some(prev) = self.scenarios.get(&id)
            && same_layer(&prev.source.origin, &e.source.origin)
        {
            self.duplicates.push((id, e.source));
            return;
        }
        self.scenarios.insert(id, e);
    }

    fn insert_check(&mut self, id: String, e: Entry<CheckFile>) {
        if let Some(prev) = self.checks.get(&id)
            && same_layer(&prev.source.origin, &e.source.origin)
        {
            self.duplicates.push((id, e.source));
            return;
        }
        self.checks.insert(id, e);
    }

    pub fn scenario(&self, id: &str) -> Option<&Entry<Scenario>> {
        self.scenarios.get(id)
    }

    pub fn check(&self, id: &str) -> Option<&Entry<CheckFile>> {
        self.checks.get(id)
    }

    pub fn template(&self, name: &str) -> Option<&str> {
        self.templates.get(name).map(String::as_str)
    }

    /// A "did you mean" for an unknown scenario id.
    pub fn suggest_scenario(&self, id: &str) -> Option<String> {
        yaml::suggest(id, self.scenarios.keys().map(String::as_str))
    }
}

/// Whether the drill `id` uses a check the catalog does not hold.
fn uses_missing_check(c: &Catalog, id: &str) -> bool {
    c.scenario(id).is_some_and(|e| {
        e.item.checks.iter().any(|ch| match &ch.body {
            crate::scenario::kinds::CheckBody::Use(u) => c.check(&u.value).is_none(),
            crate::scenario::kinds::CheckBody::Inline(_) => false,
        })
    })
}

/// Two files are in the same layer when both are built in or both come from the user's folders
/// with the same root; a user folder overriding a built-in is not a duplicate.
fn same_layer(a: &Origin, b: &Origin) -> bool {
    a.is_builtin() == b.is_builtin()
}

fn files_of(dir: &'static Dir<'static>) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    collect(dir, &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn collect(dir: &'static Dir<'static>, out: &mut Vec<(String, &'static str)>) {
    for f in dir.files() {
        let p = f.path().to_string_lossy().into_owned();
        if (p.ends_with(".yaml") || p.ends_with(".yml"))
            && !p.contains("/.")
            && let Some(t) = f.contents_utf8()
        {
            out.push((p, t));
        }
    }
    for d in dir.dirs() {
        collect(d, out);
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" || name == "templates" {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(p);
        }
    }
}

fn walk_all(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk_all(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// One file, parsed: what it holds, a problem, or a foreign YAML file to pass over.
#[derive(Default)]
enum Parsed {
    Scenario(String, Box<Entry<Scenario>>),
    Check(String, Box<Entry<CheckFile>>),
    Problem(Box<Diagnostic>),
    #[default]
    Foreign,
}

fn parse_text(origin: Origin, text: &str, expect: Expect, skip_foreign: bool) -> Parsed {
    let name = origin.display();
    let problem = |d: Diagnostic| Parsed::Problem(Box::new(d));
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        if skip_foreign {
            return Parsed::Foreign;
        }
        return problem(
            Diagnostic::error(&name, "file is empty: nothing but blank lines and comments")
                .help("`klab new <id>` writes a scenario to start from"),
        );
    }
    // The folder says what a file is (`scenarios/`, `checks/`); elsewhere its header does.
    let wanted = match expect {
        Expect::Scenario | Expect::Check => expect,
        Expect::Any => {
            let header: Header = match yaml::parse(&name, text) {
                Ok(h) => h,
                Err(_) if skip_foreign => return Parsed::Foreign,
                Err(d) => return problem(d),
            };
            let is_klab = header.api_version.as_deref().is_some_and(|v| v.starts_with("klab.dev/"));
            match header.kind.as_deref().unwrap_or("") {
                "Scenario" => Expect::Scenario,
                "Check" => Expect::Check,
                _ if skip_foreign && !is_klab => return Parsed::Foreign,
                other => {
                    let found = if other.is_empty() { "no `kind`".to_string() } else { format!("kind `{other}`") };
                    return problem(
                        Diagnostic::error(
                            &name,
                            format!("not a klab file: {found}, expected `kind: Scenario` or `kind: Check`"),
                        )
                        .at(text, 1, 1)
                        .help("start the file with `apiVersion: klab.dev/v1` and `kind: Scenario` (or `Check`)"),
                    );
                }
            }
        }
    };
    let source = Source { origin, text: text.to_string() };
    match wanted {
        Expect::Scenario => match yaml::parse::<Scenario>(&name, text) {
            Ok(s) => Parsed::Scenario(s.metadata.id.value.clone(), Box::new(Entry { source, item: s })),
            Err(d) => problem(d),
        },
        _ => match yaml::parse::<CheckFile>(&name, text) {
            Ok(c) => Parsed::Check(c.metadata.id.value.clone(), Box::new(Entry { source, item: c })),
            Err(d) => problem(d),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `load_for_drill` reads one built-in scenario file by name: each must be `<id>.yaml`, and
    /// the drill must come out as the whole catalog has it.
    #[test]
    fn a_drill_loads_alone_as_in_the_whole_catalog() {
        let all = Catalog::builtin();
        assert!(all.diagnostics.is_empty(), "{:?}", all.diagnostics);
        assert!(!all.scenarios.is_empty());
        for (id, e) in &all.checks {
            assert_eq!(e.source.origin.display(), format!("checks/{id}.yaml"), "built-in check `{id}`");
        }
        let opts = crate::scenario::plan::PlanOptions {
            set: vec![],
            variant: crate::scenario::plan::VariantChoice::Default,
            lab: None,
        };
        let plan = |c: &Catalog, id: &str| {
            crate::scenario::plan::build(c, c.scenario(id).unwrap(), &opts)
                .map(|p| serde_json::to_value(&p).unwrap())
                .map_err(|d| format!("{d:?}"))
        };
        for (id, e) in &all.scenarios {
            assert_eq!(e.source.origin.display(), format!("scenarios/{id}.yaml"), "built-in drill `{id}`");
            let one = Catalog::load_for_drill(&[], id);
            assert_eq!(one.scenarios.len(), 1, "{id}");
            assert_eq!(one.scenario(id).map(|s| &s.source.text), Some(&e.source.text), "{id}");
            assert_eq!(plan(&one, id), plan(&all, id), "{id}");
        }
        // Not found: the whole catalog, for the usual "did you mean".
        assert_eq!(Catalog::load_for_drill(&[], "no-such-drill").scenarios.len(), all.scenarios.len());
    }
}
