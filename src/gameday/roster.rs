//! The game-day roster: teams and members, the drill each team gets (one shared draw or one per
//! team), the clock, the scoring rules and the hint policy, and where each team's lab runs.
//! Read with the same budgets and placed diagnostics as scenarios, and linted against the catalog.

use crate::check::score::Rules;
use crate::scenario::catalog::Catalog;
use crate::scenario::diag::Diagnostic;
use crate::scenario::duration::Duration;
use crate::scenario::yaml::{self, Locations};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const API_VERSION: &str = "klab.dev/v1";
pub const KIND: &str = "GameDay";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Roster {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    /// One clock for all teams; the score's time rule uses it instead of the drills' own limits.
    pub time_limit: Duration,
    /// The drill every team gets, unless a team names its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    /// Parameter overrides for the shared drill (`--set`), typed by the drill.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Nodes per lab (default: what each drill's profile asks for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u8>,
    #[serde(default)]
    pub scoring: Scoring,
    #[serde(default)]
    pub hints: HintPolicy,
    pub teams: Vec<Team>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
}

/// The points each rule takes; omitted ones keep klab's defaults (docs/scoring.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scoring {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overtime_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overtime_cap: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_herring: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfound_causes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_check: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_check_cap: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_pattern: Option<u32>,
}

impl Scoring {
    pub fn rules(&self) -> Rules {
        let d = Rules::default();
        Rules {
            overtime_per_minute: self.overtime_per_minute.unwrap_or(d.overtime_per_minute),
            overtime_cap: self.overtime_cap.unwrap_or(d.overtime_cap),
            red_herring: self.red_herring.unwrap_or(d.red_herring),
            missed_attempt: self.missed_attempt.unwrap_or(d.missed_attempt),
            unfound_causes: self.unfound_causes.unwrap_or(d.unfound_causes),
            failed_check: self.failed_check.unwrap_or(d.failed_check),
            failed_check_cap: self.failed_check_cap.unwrap_or(d.failed_check_cap),
            anti_pattern: self.anti_pattern.unwrap_or(d.anti_pattern),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HintPolicy {
    /// At most this many hints per team (0: none); omitted: all of the drill's hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Team {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
    /// This team's drill instead of the shared one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerHost>,
}

/// Another Docker engine for this team's lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DockerHost {
    /// `DOCKER_HOST` for docker and kind (e.g. `ssh://ops@10.0.0.5`, `tcp://10.0.0.5:2376`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A Docker context (`docker context ls`) instead of `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The address the lab's apiserver listens on, one the facilitator's machine reaches (kind's
    /// `networking.apiServerAddress`; kind's default, 127.0.0.1, is the remote host itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server_address: Option<String>,
}

impl DockerHost {
    /// The environment docker and kind get for this host.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if let Some(h) = &self.host {
            v.push(("DOCKER_HOST".into(), h.clone()));
        }
        if let Some(c) = &self.context {
            v.push(("DOCKER_CONTEXT".into(), c.clone()));
        }
        v
    }
    /// How the facilitator names this host.
    pub fn label(&self) -> String {
        self.host.clone().or_else(|| self.context.as_ref().map(|c| format!("context {c}"))).unwrap_or_default()
    }
}

impl Team {
    pub fn lab(&self) -> String {
        format!("klab-{}", self.name)
    }
}

impl Roster {
    pub fn drill_of<'a>(&'a self, t: &'a Team) -> Option<&'a str> {
        t.drill.as_deref().or(self.drill.as_deref())
    }
    pub fn team(&self, name: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.name == name)
    }
}

/// A team name becomes a kind cluster name (`klab-<team>`), container names and a context.
fn valid_team_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 30
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !n.starts_with('-')
        && !n.ends_with('-')
}

/// Reads and lints a roster: the parsed roster when there is no error, and every diagnostic
/// (errors and warnings) with its place.
pub fn load(file: &str, bytes: &[u8], cat: &Catalog) -> (Option<Roster>, Vec<Diagnostic>) {
    let text = match yaml::as_text(file, bytes) {
        Ok(t) => t,
        Err(d) => return (None, vec![d]),
    };
    let roster: Roster = match yaml::parse(file, text) {
        Ok(r) => r,
        Err(d) => return (None, vec![d]),
    };
    let diags = lint(file, text, &roster, cat);
    let ok = !diags.iter().any(Diagnostic::is_error);
    (ok.then_some(roster), diags)
}

pub fn lint(file: &str, text: &str, r: &Roster, cat: &Catalog) -> Vec<Diagnostic> {
    let locs = Locations::of(text);
    let mut out = Vec::new();
    let err = |path: &str, msg: String| {
        let (l, c) = locs.find(path);
        Diagnostic::error(file, msg).at(text, l, c)
    };
    let warn = |path: &str, msg: String| {
        let (l, c) = locs.find(path);
        Diagnostic::warning(file, msg).at(text, l, c)
    };
    if r.api_version != API_VERSION {
        out.push(err("apiVersion", format!("apiVersion is `{}`; a roster has `{API_VERSION}`", r.api_version)));
    }
    if r.kind != KIND {
        out.push(
            err("kind", format!("kind is `{}`; a roster has `{KIND}`", r.kind))
                .help("scenarios are linted with `klab lint`; this command reads game-day rosters"),
        );
    }
    if r.metadata.name.trim().is_empty() {
        out.push(err("metadata.name", "the game day needs a name".into()));
    }
    if r.time_limit.as_secs() == 0 {
        out.push(err("timeLimit", "the time limit must be more than 0".into()).help("e.g. `timeLimit: 45m`"));
    }
    if r.teams.is_empty() {
        out.push(err("teams", "a game day needs at least one team".into()));
    }
    if let Some(0) = r.nodes {
        out.push(err("nodes", "a lab needs at least one node".into()));
    }
    let check_drill = |path: &str, id: &str, out: &mut Vec<Diagnostic>| match cat.scenario(id) {
        None => {
            let mut d = err(path, format!("no drill `{id}` in the catalog"));
            d = d.help(match cat.suggest_scenario(id) {
                Some(s) => format!("did you mean `{s}`? (`klab list` shows them all)"),
                None => "`klab list` shows the drills; add folders with --catalog DIR".into(),
            });
            out.push(d);
        }
        Some(e) => {
            if let Some(n) = r.nodes
                && n < e.item.profile.nodes
            {
                out.push(err(
                    "nodes",
                    format!("`{id}` needs {} node(s); the roster gives each lab {n}", e.item.profile.nodes),
                ));
            }
        }
    };
    if let Some(d) = &r.drill {
        check_drill("drill", d, &mut out);
        if let Some(e) = cat.scenario(d) {
            for k in r.set.keys() {
                if !e.item.params.contains_key(k) {
                    out.push(err(&format!("set.{k}"), format!("`{d}` has no parameter `{k}`")).help(format!(
                        "its parameters: {}",
                        e.item.params.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
    } else if !r.set.is_empty() {
        out.push(err("set", "`set` applies to the shared `drill`, and there is none".into()));
    }
    if let Some(m) = r.hints.max
        && let Some(d) = r.drill.as_deref().and_then(|d| cat.scenario(d))
        && m > d.item.hints.len()
    {
        out.push(warn(
            "hints.max",
            format!("`{}` has {} hint(s); `max: {m}` allows them all", d.item.metadata.id.value, d.item.hints.len()),
        ));
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, t) in r.teams.iter().enumerate() {
        let p = format!("teams[{i}]");
        if !valid_team_name(&t.name) {
            out.push(
                err(&format!("{p}.name"), format!("team name `{}` cannot name a lab", t.name))
                    .help("lowercase letters, digits and dashes, at most 30 (the lab is `klab-<team>`)"),
            );
        }
        if let Some(first) = seen.insert(t.name.as_str(), i) {
            out.push(err(&format!("{p}.name"), format!("team `{}` is already teams[{first}]", t.name)));
        }
        match &t.drill {
            Some(d) => check_drill(&format!("{p}.drill"), d, &mut out),
            None if r.drill.is_none() => out.push(
                err(&p, format!("team `{}` has no drill and the roster has no shared `drill`", t.name))
                    .help("give the roster a `drill:` for everyone, or the team its own"),
            ),
            None => {}
        }
        if t.members.is_empty() {
            out.push(warn(&p, format!("team `{}` lists no members", t.name)));
        }
        if let Some(dh) = &t.docker {
            let dp = format!("{p}.docker");
            match (&dh.host, &dh.context) {
                (Some(_), Some(_)) => out.push(err(&dp, "give `host` or `context`, not both".into())),
                (None, None) => out.push(err(&dp, "`docker` needs a `host` or a `context`".into())),
                _ => {}
            }
            if dh.api_server_address.is_none() {
                out.push(
                    warn(&dp, "no `apiServerAddress`: kind binds the apiserver to 127.0.0.1 of the remote host".into())
                        .help("set the remote host's address, so klab on this machine reaches the lab"),
                );
            }
        }
    }
    out.sort_by_key(|d| (d.line, d.column));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Catalog {
        Catalog::load(&[])
    }

    #[test]
    fn a_good_roster_loads() {
        let text = "apiVersion: klab.dev/v1\nkind: GameDay\nmetadata: {name: friday}\ntimeLimit: 30m\ndrill: etcd-quota\nhints: {max: 1}\nteams:\n  - name: blue\n    members: [ana]\n  - name: red\n    members: [ben]\n    drill: ip-forward-off\n";
        let (r, d) = load("r.yaml", text.as_bytes(), &cat());
        assert!(d.is_empty(), "{d:?}");
        let r = r.unwrap();
        assert_eq!(r.drill_of(&r.teams[1]), Some("ip-forward-off"));
        assert_eq!(r.drill_of(&r.teams[0]), Some("etcd-quota"));
        assert_eq!(r.teams[0].lab(), "klab-blue");
    }

    #[test]
    fn problems_are_placed() {
        let text = "apiVersion: klab.dev/v1\nkind: GameDay\nmetadata: {name: friday}\ntimeLimit: 30m\nteams:\n  - name: Blue Team\n    members: [a]\n    drill: etcd-qouta\n  - name: red\n    members: [b]\n    drill: etcd-quota\n  - name: red\n    drill: etcd-quota\n";
        let (r, d) = load("r.yaml", text.as_bytes(), &cat());
        assert!(r.is_none());
        let lines: Vec<String> = d.iter().map(|d| format!("{}:{} {}", d.line, d.column, d.message)).collect();
        assert!(lines.iter().any(|l| l.starts_with("6:11 team name `Blue Team`")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("8:12 no drill `etcd-qouta`")), "{lines:?}");
        assert!(d.iter().any(|d| d.help.as_deref() == Some("did you mean `etcd-quota`? (`klab list` shows them all)")));
        assert!(lines.iter().any(|l| l.starts_with("12:11 team `red` is already teams[1]")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("lists no members")), "{lines:?}");
    }

    #[test]
    fn unknown_fields_and_bad_values_say_where() {
        let text = "apiVersion: klab.dev/v1\nkind: GameDay\nmetadata: {name: x}\ntimeLimit: 30m\ndrill: etcd-quota\nteams:\n  - name: a\n    memebers: [x]\n";
        let (_, d) = load("r.yaml", text.as_bytes(), &cat());
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].column), (8, 5), "{:?}", d[0]);
        assert!(d[0].message.contains("unknown field `memebers`"), "{}", d[0].message);
        assert_eq!(d[0].help.as_deref(), Some("did you mean `members`?"));
        let text = "apiVersion: klab.dev/v1\nkind: GameDay\nmetadata: {name: x}\ntimeLimit: soon\ndrill: etcd-quota\nteams: []\n";
        let (_, d) = load("r.yaml", text.as_bytes(), &cat());
        assert_eq!(d[0].line, 4, "{:?}", d[0]);
    }

    #[test]
    fn docker_hosts_are_checked() {
        let text = "apiVersion: klab.dev/v1\nkind: GameDay\nmetadata: {name: x}\ntimeLimit: 30m\ndrill: etcd-quota\nnodes: 1\nteams:\n  - name: a\n    members: [x]\n    docker: {host: 'ssh://a', context: b}\n  - name: b\n    members: [y]\n    docker: {host: 'tcp://10.0.0.5:2376'}\n";
        let (r, d) = load("r.yaml", text.as_bytes(), &cat());
        assert!(r.is_none());
        assert!(d.iter().any(|d| d.is_error() && d.line == 10 && d.message.contains("not both")), "{d:?}");
        assert!(d.iter().any(|d| !d.is_error() && d.line == 13 && d.message.contains("apiServerAddress")), "{d:?}");
    }
}
