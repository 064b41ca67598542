//! The catalog: built-in scenarios, checks and templates (embedded in the binary at build time)
//! plus the user's folders (`--catalog DIR`, `KLAB_CATALOG`), which add to or override them by id.
//!
//! Loading never stops at a bad file: its diagnostic is kept and the rest still loads, so `list`
//! works while one scenario is broken and `lint` reports every file at once.

use super::diag::Diagnostic;
use super::model::{CheckFile, Header, Scenario};
use super::summary::Summary;
use super::yaml;
use include_dir::{Dir, include_dir};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

static BUILTIN_SCENARIOS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/scenarios");
static BUILTIN_CHECKS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/checks");
static BUILTIN_TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
static NO_FILES: Dir<'static> = Dir::new("", &[]);

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
        Catalog::builtin_with(&BUILTIN_CHECKS, &builtin_scenario_files())
    }

    /// The built-in catalog with the check and scenario files whose paths (below `checks/` and
    /// `scenarios/`) the filters take.
    fn builtin_filtered(keep_check: impl Fn(&str) -> bool, keep_scenario: impl Fn(&str) -> bool) -> Catalog {
        let scenarios: Vec<(String, &'static str)> = builtin_scenario_files()
            .into_iter()
            .filter(|(p, _)| keep_scenario(p.strip_prefix("scenarios/").unwrap_or(p)))
            .collect();
        Catalog::builtin_with_checks(&BUILTIN_CHECKS, keep_check, &scenarios)
    }

    fn builtin_with(checks: &'static Dir<'static>, scenarios: &[(String, &'static str)]) -> Catalog {
        Catalog::builtin_with_checks(checks, |_| true, scenarios)
    }

    fn builtin_with_checks(
        checks: &'static Dir<'static>,
        keep_check: impl Fn(&str) -> bool,
        scenarios: &[(String, &'static str)],
    ) -> Catalog {
        let mut c = Catalog::default();
        let checks = files_of(checks)
            .into_iter()
            .filter(|f| keep_check(&f.0))
            .map(|f| (Origin::Builtin(format!("checks/{}", f.0)), f.1, Expect::Check, false));
        let scenarios = scenarios.iter().map(|f| (Origin::Builtin(f.0.clone()), f.1, Expect::Scenario, false));
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
                match yaml::read_capped(&f) {
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
        match yaml::read_capped(path) {
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

/// The built-in scenario files, by their path in the klab repository, in order.
fn builtin_scenario_files() -> Vec<(String, &'static str)> {
    files_of(&BUILTIN_SCENARIOS).into_iter().map(|(p, t)| (format!("scenarios/{p}"), t)).collect()
}

/// What `klab list` shows: a summary of every scenario, built-in and from the user's folders,
/// in catalog order, and the problems met loading the user's folders.
#[derive(Default)]
pub struct Listing {
    pub scenarios: IndexMap<String, Listed>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub origin: Origin,
    pub summary: Summary,
}

impl Listing {
    /// The same listing as [`Listing::of`] a fully loaded catalog, faster: built-in scenarios
    /// are read from their listed sections only (see [`Summary::from_header`]; the tests check
    /// that this gives what a full parse gives), checks and templates are not read, and the
    /// user's folders are loaded in full (their files may be broken; `list` warns about them).
    pub fn load(user_dirs: &[PathBuf]) -> Listing {
        let mut l = Listing::builtin();
        if user_dirs.is_empty() {
            return l;
        }
        let mut user = Catalog::default();
        for d in user_dirs {
            user.add_path(d, false);
        }
        // As if added to the built-in catalog file by file: a user file overrides a built-in
        // scenario in its place; within the user's folders, the first file with an id wins.
        l.merge(Listing::of(&user));
        l
    }

    /// The built-in scenarios. Should one not be readable fast (or two share an id), all are
    /// read in full, so that the listing is the full parse's, problems included.
    pub fn builtin() -> Listing {
        let files = builtin_scenario_files();
        Listing::builtin_fast(&files).unwrap_or_else(|| Listing::of(&Catalog::builtin_with(&NO_FILES, &files)))
    }

    fn builtin_fast(files: &[(String, &'static str)]) -> Option<Listing> {
        let mut l = Listing::default();
        for (path, text) in files {
            let summary = Summary::from_header(text)?;
            let listed = Listed { origin: Origin::Builtin(path.clone()), summary };
            if l.scenarios.insert(listed.summary.id.clone(), listed).is_some() {
                return None;
            }
        }
        Some(l)
    }

    /// The listing of a loaded catalog.
    pub fn of(c: &Catalog) -> Listing {
        Listing {
            scenarios: c
                .scenarios
                .iter()
                .map(|(id, e)| {
                    (id.clone(), Listed { origin: e.source.origin.clone(), summary: Summary::from_scenario(&e.item) })
                })
                .collect(),
            diagnostics: c.diagnostics.clone(),
        }
    }

    fn merge(&mut self, other: Listing) {
        for (id, e) in other.scenarios {
            self.scenarios.insert(id, e);
        }
        self.diagnostics.extend(other.diagnostics);
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
                // Game-day rosters are linted by `klab lint` / `klab gameday lint`, not loaded.
                "GameDay" if is_klab => return Parsed::Foreign,
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

    fn rows(l: &Listing) -> Vec<(&String, &Listed)> {
        l.scenarios.iter().collect()
    }

    /// `klab list` reads the built-in scenarios fast; it must list exactly what a full parse
    /// gives, and the fast way must work for every one of them (else `list` is slow again).
    #[test]
    fn the_fast_summary_of_every_builtin_scenario_is_the_full_parse_s() {
        let files = builtin_scenario_files();
        assert!(files.len() > 10, "the built-in scenarios are embedded");
        for (path, text) in &files {
            let full: Scenario = yaml::parse(path, text).unwrap_or_else(|d| panic!("{path} does not load:\n{d}"));
            let fast = Summary::from_header(text).unwrap_or_else(|| {
                panic!("{path}: the listed sections cannot be cut out; keep `metadata`, `symptoms`, `profile` and `variants` plain top-level `key:` sections")
            });
            assert_eq!(fast, Summary::from_scenario(&full), "{path}");
        }
        let full = Listing::of(&Catalog::builtin());
        assert!(full.diagnostics.is_empty(), "{:?}", full.diagnostics);
        let fast = Listing::builtin_fast(&files).expect("every built-in scenario is read fast");
        assert_eq!(rows(&fast), rows(&full));
        assert_eq!(rows(&Listing::load(&[])), rows(&full));
    }

    /// User folders override built-ins in place, add new drills at the end, and their broken
    /// files are reported, as when the whole catalog is loaded.
    #[test]
    fn a_listing_with_user_folders_is_the_full_catalog_s() {
        let builtin = builtin_scenario_files();
        let (path, text) = &builtin[1];
        let id = Summary::from_header(text).unwrap().id;
        let retitled = |title: &str| {
            let lines =
                text.lines().map(|l| if l.starts_with("  title: ") { format!("  title: {title}") } else { l.into() });
            lines.collect::<Vec<_>>().join("\n")
        };
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir(a.path().join("scenarios")).unwrap();
        std::fs::write(a.path().join("scenarios/override.yaml"), retitled("Mine")).unwrap();
        std::fs::write(a.path().join("scenarios/new.yaml"), text.replace(&format!("id: {id}"), "id: zz-new")).unwrap();
        std::fs::write(a.path().join("scenarios/broken.yaml"), "apiVersion: klab.dev/v1\nkind: Scenario\n").unwrap();
        std::fs::write(b.path().join("again.yaml"), retitled("Again")).unwrap();
        let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
        let fast = Listing::load(&dirs);
        let full = Listing::of(&Catalog::load(&dirs));
        assert_eq!(rows(&fast), rows(&full));
        assert_eq!(fast.diagnostics, full.diagnostics);
        assert_eq!(fast.diagnostics.len(), 1, "{path}: {:?}", fast.diagnostics);
        assert_eq!(fast.scenarios[&id].summary.title, "Mine");
        assert_eq!(fast.scenarios.get_index_of(&id), Some(1));
        assert_eq!(fast.scenarios.keys().last().map(String::as_str), Some("zz-new"));
    }

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
