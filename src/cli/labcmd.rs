//! `klab up`, `down`, `drill`, `status`, `reset`: the lab's life and the drill's.

use super::args::{DrillArgs, Global, OutputFormat, UpArgs};
use super::output::{self, BOLD, DIM, GREEN, YELLOW, paint};
use super::{Failure, Outcome, find_scenario};
use crate::cluster::kube::ObjKey;
use crate::cluster::lab::{Kind, Lab, LabError, LabTarget, cluster_uid, write_marker};
use crate::exit;
use crate::fault::{FaultError, Injector};
use crate::scenario::catalog::Catalog;
use crate::scenario::plan::{LabVars, Plan, PlanOptions, VariantChoice};
use crate::scenario::version::MinorVersion;
use crate::session::journal::{self, Journal, Record};
use crate::session::record::Session;
use crate::session::state::{LabDir, LabLock, LabRecord, StateError, read_json, state_root, write_json};
use std::time::Duration;

pub(crate) fn target(g: &Global) -> LabTarget {
    LabTarget { name: g.lab.clone(), kubeconfig: g.kubeconfig.clone(), override_context: g.override_context.clone() }
}

pub(crate) fn lab_dir(g: &Global) -> LabDir {
    LabDir::new(&state_root(g.state_dir.as_deref()), &g.lab)
}

pub(crate) fn lab_failure(e: LabError) -> Failure {
    match e {
        LabError::Refused { .. } => Failure::new(exit::REFUSED, e.to_string()).help("klab only breaks clusters it created for training (`klab up`). To use another cluster anyway, name its context with --i-know-context CONTEXT"),
        LabError::NoLab { .. } => Failure::new(exit::NOT_READY, e.to_string()),
        LabError::State(StateError::Busy(_)) => Failure::new(exit::BUSY, e.to_string()),
        LabError::Tool(_) => Failure::new(exit::NOT_READY, e.to_string()).help("`klab doctor` checks docker, kind and kubectl"),
        other => Failure::new(exit::CLUSTER, other.to_string()),
    }
}

/// [`lab_failure`] for a lab that [`ensure_lab`] just found or made: kind has a cluster of
/// that name, so "create it with `klab up`" would be no help when it cannot be opened.
pub(crate) fn ensured_lab_failure(e: LabError) -> Failure {
    match e {
        LabError::NoLab { name, reason } => Failure::new(
            exit::NOT_READY,
            format!("kind cluster `{name}` exists, but klab cannot open it as a lab: {reason}"),
        )
        .help(format!(
            "if it is left over from an earlier run, delete it (`kind delete cluster --name {name}`) and run `klab up` again"
        )),
        other => lab_failure(other),
    }
}

pub(crate) fn state_failure(e: StateError) -> Failure {
    match e {
        StateError::Busy(_) => Failure::new(exit::BUSY, e.to_string()),
        other => Failure::new(exit::FAILED, other.to_string()),
    }
}

fn say(line: &str) {
    anstream::eprintln!("{line}");
}

/// Creates the lab if it does not exist; returns whether it created it.
pub(crate) async fn ensure_lab(g: &Global, nodes: u8) -> Result<bool, Failure> {
    let kind = Kind::default();
    let existing = kind.clusters().await.map_err(lab_failure)?;
    if existing.iter().any(|c| c == &g.lab) {
        return Ok(false);
    }
    if !g.lab.starts_with("klab") {
        return Err(Failure::new(exit::USAGE, format!("lab name `{}` must start with `klab`", g.lab))
            .help("e.g. --lab klab-team1"));
    }
    let dir = lab_dir(g);
    dir.ensure().map_err(state_failure)?;
    let audit_dir = dir.path("audit");
    let audit_log_dir = dir.path("audit-log");
    std::fs::create_dir_all(&audit_dir)
        .and_then(|_| std::fs::create_dir_all(&audit_log_dir))
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot create {}: {e}", audit_dir.display())))?;
    // User folders may override the templates (e.g. a kind config for a remote Docker engine).
    let cat = Catalog::load(&g.catalog);
    let policy = cat
        .template("audit-policy.yaml")
        .ok_or_else(|| Failure::new(exit::FAILED, "templates/audit-policy.yaml is missing"))?;
    std::fs::write(audit_dir.join("policy.yaml"), policy).map_err(|e| Failure::new(exit::FAILED, e.to_string()))?;
    let tpl = cat
        .template("kind-config.yaml.tera")
        .ok_or_else(|| Failure::new(exit::FAILED, "templates/kind-config.yaml.tera is missing"))?;
    let mut ctx = tera::Context::new();
    ctx.insert("name", &g.lab);
    ctx.insert("nodes", &nodes);
    ctx.insert("workers", &(nodes.max(1) - 1));
    ctx.insert("audit_dir", &audit_dir.display().to_string());
    ctx.insert("audit_log_dir", &audit_log_dir.display().to_string());
    // A lab on another Docker host (game days): an apiserver address this machine reaches.
    ctx.insert("api_server_address", &std::env::var("KLAB_API_SERVER_ADDRESS").ok().filter(|a| !a.is_empty()));
    let config = tera::Tera::default()
        .render_str(tpl, &ctx, false)
        .map_err(|e| Failure::new(exit::FAILED, format!("kind config template: {e}")))?;
    let config_path = dir.path("kind-config.yaml");
    std::fs::write(&config_path, config).map_err(|e| Failure::new(exit::FAILED, e.to_string()))?;
    say(&format!(
        "{} creating lab `{}` with {nodes} node(s) (kind create cluster; this takes a minute or two)…",
        paint(BOLD, "→"),
        g.lab
    ));
    kind.create(&g.lab, &config_path, g.kubeconfig.as_deref()).await.map_err(lab_failure)?;
    let t = target(g);
    let kube = crate::cluster::kube::Kube::connect(g.kubeconfig.as_deref(), &t.context())
        .await
        .map_err(|e| Failure::new(exit::CLUSTER, e.to_string()))?;
    // kind returns once the node is Ready, but on a loaded machine the new apiserver may still
    // drop a connection or two (seen in CI with four labs starting at once): ask again for a while.
    until_answered("marking the lab", || write_marker(&kube, &g.lab))
        .await
        .map_err(|e| Failure::new(exit::CLUSTER, format!("cannot mark the lab: {e}")))?;
    let uid = until_answered("reading the cluster's identity", || cluster_uid(&kube))
        .await
        .map_err(|e| Failure::new(exit::CLUSTER, e.to_string()))?;
    let rec = LabRecord {
        name: g.lab.clone(),
        context: t.context(),
        kubeconfig: g.kubeconfig.clone(),
        cluster_uid: uid,
        nodes,
        created_at: journal::now(),
        adopted: false,
    };
    write_json(&dir.lab_file(), &rec).map_err(state_failure)?;
    wait_control_plane_visible(&kube).await;
    say(&format!("{} lab `{}` is up (context {})", paint(GREEN, "✓"), g.lab, t.context()));
    Ok(true)
}

/// How long a freshly created lab's apiserver may go on dropping connections.
const NEW_LAB_ANSWER: Duration = Duration::from_secs(120);

/// Runs `call` until it succeeds, fails for a reason that asking again does not cure, or
/// [`NEW_LAB_ANSWER`] has passed; says what it waits for at once, then every 15 s.
async fn until_answered<T, F, Fut>(what: &str, mut call: F) -> Result<T, crate::cluster::kube::KubeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::cluster::kube::KubeError>>,
{
    let start = std::time::Instant::now();
    let mut said: Option<std::time::Instant> = None;
    loop {
        match call().await {
            Err(e) if e.is_transient() && start.elapsed() < NEW_LAB_ANSWER => {
                if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(15)) {
                    say(&format!(
                        "  {what}: the new apiserver is not ready yet ({e}); asking again for up to {}s ({}s so far)…",
                        NEW_LAB_ANSWER.as_secs(),
                        start.elapsed().as_secs()
                    ));
                    said = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => return other,
        }
    }
}

/// The control plane's mirror pods can appear well after the node is Ready; faults that hide
/// them must not race them.
async fn wait_control_plane_visible(kube: &crate::cluster::kube::Kube) {
    let start = std::time::Instant::now();
    let mut last = start;
    while start.elapsed() < Duration::from_secs(240) {
        if let Ok(pods) = kube.list("v1", "Pod", Some("kube-system"), Some("tier=control-plane"), None).await {
            let names: Vec<String> = pods
                .iter()
                .filter_map(|p| p.pointer("/metadata/labels/component").and_then(|v| v.as_str()).map(str::to_string))
                .collect();
            if ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
                .iter()
                .all(|c| names.iter().any(|n| n == c))
            {
                return;
            }
        }
        if last.elapsed() > Duration::from_secs(15) {
            say(&format!(
                "  waiting for the control plane's pods to show in the API ({}s)…",
                start.elapsed().as_secs()
            ));
            last = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub fn up(g: &Global, a: &UpArgs) -> Outcome {
    let rt = super::runtime()?;
    rt.block_on(async {
        let created = ensure_lab(g, a.nodes).await?;
        if !created {
            let lab = Lab::open(&target(g), &lab_dir(g), true).await.map_err(ensured_lab_failure)?;
            say(&format!(
                "{} lab `{}` already exists ({} node(s) pinned as kube-system UID {})",
                paint(GREEN, "✓"),
                g.lab,
                lab.nodes.nodes().await.map(|n| n.len()).unwrap_or(0),
                lab.record.cluster_uid
            ));
        }
        Ok(exit::OK)
    })
}

pub fn down(g: &Global) -> Outcome {
    let rt = super::runtime()?;
    rt.block_on(async {
        let dir = lab_dir(g);
        let _lock = LabLock::acquire(&dir, &g.lab).map_err(state_failure)?;
        let kind = Kind::default();
        let existing = kind.clusters().await.map_err(lab_failure)?;
        if existing.iter().any(|c| c == &g.lab) {
            let rec: Option<LabRecord> = read_json(&dir.lab_file()).map_err(state_failure)?;
            if rec.is_none() && g.override_context.is_none() {
                return Err(Failure::new(
                    exit::REFUSED,
                    format!("kind cluster `{}` was not created by klab (no lab record)", g.lab),
                )
                .help("delete it with `kind delete cluster --name …` yourself if you mean it"));
            }
            say(&format!("→ deleting lab `{}`…", g.lab));
            kind.delete(&g.lab, g.kubeconfig.as_deref()).await.map_err(lab_failure)?;
        }
        let _ = std::fs::remove_dir_all(&dir.root);
        say(&format!("{} lab `{}` is gone", paint(GREEN, "✓"), g.lab));
        Ok(exit::OK)
    })
}

/// What templates must know of the lab (node names, DNS), read from the live lab.
pub(crate) async fn lab_vars(lab: &Lab, nodes: u8) -> LabVars {
    let mut vars = LabVars::new(&lab.target.name, nodes);
    if let Ok(list) = lab.nodes.nodes().await
        && !list.is_empty()
    {
        vars.nodes = list.iter().map(|n| n.name.clone()).collect();
        vars.control_plane =
            list.iter().find(|n| n.role == "control-plane").map(|n| n.name.clone()).unwrap_or(vars.control_plane);
        vars.workers = list.iter().filter(|n| n.role != "control-plane").map(|n| n.name.clone()).collect();
    }
    if let Ok(kube) = lab.kube() {
        let dns = ObjKey {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: Some("kube-system".into()),
            name: "kube-dns".into(),
        };
        if let Ok(None) = kube.get(&dns).await {
            let svc = ObjKey {
                api_version: "v1".into(),
                kind: "Service".into(),
                namespace: Some("default".into()),
                name: "kubernetes".into(),
            };
            if let Ok(Some(s)) = kube.get(&svc).await
                && let Some(ip) = s.pointer("/spec/clusterIP").and_then(|v| v.as_str())
            {
                vars = vars.without_dns(ip);
            }
        }
    }
    vars
}

pub(crate) async fn plan_for(
    cat: &Catalog,
    lab: &Lab,
    id: &str,
    set: &[(String, String)],
    variant: Option<&str>,
) -> Result<Plan, Failure> {
    let e = find_scenario(cat, id)?;
    let choice = match variant {
        Some(v) => VariantChoice::Named(v.to_string()),
        None if e.item.variants.is_empty() => VariantChoice::Default,
        None => match lab.kube() {
            Ok(k) => match k.server_version().await {
                Ok((v, _)) => {
                    VariantChoice::ForServer(MinorVersion::parse(&v).map_err(|m| Failure::new(exit::CLUSTER, m))?)
                }
                Err(e) => {
                    return Err(Failure::new(
                        exit::CLUSTER,
                        format!("cannot read the server version to pick a variant: {e}"),
                    ));
                }
            },
            Err(e) => return Err(Failure::new(exit::CLUSTER, e.to_string())),
        },
    };
    // Learning the lab's nodes and DNS costs a `docker ps` and API calls: only when a template
    // of the drill reads them.
    let vars = if crate::scenario::plan::reads_lab_vars(&e.item) {
        lab_vars(lab, e.item.profile.nodes).await
    } else {
        LabVars::new(&lab.target.name, e.item.profile.nodes)
    };
    super::render::build_plan(cat, id, &PlanOptions { set: set.to_vec(), variant: choice, lab: Some(vars) })
}

pub fn drill(g: &Global, cat: &Catalog, a: &DrillArgs) -> Outcome {
    let e = find_scenario(cat, &a.id)?;
    if a.dry_run {
        let plan = super::render::build_plan(cat, &a.id, &super::render::plan_options(&a.plan)?)?;
        anstream::print!("{}", super::render::render_text(&plan));
        anstream::println!("{}", paint(DIM, "(dry run: nothing was touched)"));
        return Ok(exit::OK);
    }
    let rt = super::runtime()?;
    rt.block_on(async {
        ensure_lab(g, e.item.profile.nodes).await?;
        let dir = lab_dir(g);
        let _lock = LabLock::acquire(&dir, &g.lab).map_err(state_failure)?;
        let lab = Lab::open(&target(g), &dir, true).await.map_err(ensured_lab_failure)?;
        let j = Journal::open(&dir.journal_file()).map_err(state_failure)?;
        if !j.is_clean() {
            let s: Option<Session> = read_json(&dir.session_file()).map_err(state_failure)?;
            return Err(Failure::new(exit::FAILED, format!("a drill is still injected in lab `{}`{}", g.lab, s.map(|s| format!(" ({})", s.scenario)).unwrap_or_default())).help("run `klab reset` first"));
        }
        let node_list = lab.nodes.nodes().await.map_err(|e| Failure::new(exit::CLUSTER, e.to_string()))?;
        if (node_list.len() as u8) < e.item.profile.nodes {
            return Err(Failure::new(exit::NOT_READY, format!("`{}` needs {} node(s); lab `{}` has {}", a.id, e.item.profile.nodes, g.lab, node_list.len())).help(format!("recreate the lab: `klab down && klab up --nodes {}`", e.item.profile.nodes)));
        }
        if let Ok(kube) = lab.kube() {
            let names: Vec<String> = node_list.iter().map(|n| n.name.clone()).collect();
            let facts = crate::selftest::preflight::facts(kube, lab.nodes.as_ref(), &names).await;
            // NetworkPolicy enforcement takes pods to probe; `klab selftest` does, drill only says so.
            let profile = crate::scenario::model::Profile { network_policy: false, ..e.item.profile.clone() };
            if let Some(why) = facts.cannot_carry(&profile) {
                if !a.force {
                    return Err(Failure::new(exit::NOT_READY, format!("lab `{}` cannot carry `{}`: {why}", g.lab, a.id)).help("use a lab that has it (e.g. kind with CoreDNS), or --force to start anyway"));
                }
                say(&format!("{} {why} (--force: starting anyway)", paint(YELLOW, "!")));
            }
            if e.item.profile.network_policy {
                say(&format!("{} `{}` needs a CNI that enforces NetworkPolicy (kind's kindnet does from v0.24; `klab selftest` probes it)", paint(DIM, "note:"), a.id));
            }
        }
        let plan = plan_for(cat, &lab, &a.id, &a.plan.set, a.plan.variant.as_deref()).await?;
        if let Some(v) = &plan.variant {
            say(&format!("variant: {v} ({})", plan.variant_reason.clone().unwrap_or_default()));
        }
        let mut session = Session {
            scenario: a.id.clone(),
            variant: plan.variant.clone(),
            variant_reason: plan.variant_reason.clone(),
            set: a.plan.set.clone(),
            params: plan.params.clone(),
            lab: g.lab.clone(),
            context: lab.record.context.clone(),
            cluster_uid: lab.record.cluster_uid.clone(),
            started_at: journal::now(),
            injected_at: None,
            hints_taken: vec![],
            check_attempts: vec![],
            diagnoses: vec![],
            gave_up: false,
            fixed_at: None,
        };
        write_json(&dir.session_file(), &session).map_err(state_failure)?;
        let progress = |l: &str| say(l);
        let inj = Injector { lab: &lab, nodes: node_list, progress: &progress };
        let mut j = j;
        let run = async {
            for (title, steps) in [("setup", &plan.setup), ("faults", &plan.faults)] {
                say(&format!("{} {title}", paint(BOLD, "→")));
                for st in steps {
                    let ev = inj.run_step(&mut j, st).await?;
                    say(&format!("  {} {} {}", paint(GREEN, "✓"), st.id, paint(DIM, ev)));
                }
            }
            Ok::<(), FaultError>(())
        };
        let result = tokio::select! {
            r = run => r,
            _ = tokio::signal::ctrl_c() => {
                say(&format!("{} interrupted: what was injected so far is in the journal; `klab reset` undoes it", paint(YELLOW, "!")));
                return Ok(exit::INTERRUPTED);
            }
        };
        if let Err(err) = result {
            return Err(Failure::new(exit::CLUSTER, err.to_string()).help("`klab reset` undoes what was already done (see `klab status`)"));
        }
        session.injected_at = Some(journal::now());
        write_json(&dir.session_file(), &session).map_err(state_failure)?;
        anstream::println!();
        super::show::Briefing::of(&e.item).print();
        anstream::println!();
        anstream::println!("{} the clock runs: {} to fix it. `klab check` when you think it works; `klab hint` if stuck.", paint(BOLD, "⏱"), e.item.metadata.time_limit);
        Ok(exit::OK)
    })
}

/// Keeps the finished drill's journal and session side by side (`klab report` reads them).
fn archive_drill(dir: &LabDir, j: &Journal) {
    let archived = j.archive().ok().flatten();
    let session = dir.session_file();
    let stamp = archived.as_ref().and_then(|p| {
        p.file_name()?.to_str()?.strip_prefix("journal-")?.strip_suffix(".jsonl.done").map(str::to_string)
    });
    match stamp {
        Some(s) if session.exists() => {
            let _ = std::fs::rename(&session, dir.path(&format!("session-{s}.json.done")));
        }
        _ => {
            let _ = std::fs::remove_file(&session);
        }
    }
}

pub fn reset(g: &Global) -> Outcome {
    let rt = super::runtime()?;
    rt.block_on(async {
        let dir = lab_dir(g);
        let _lock = LabLock::acquire(&dir, &g.lab).map_err(state_failure)?;
        let mut j = Journal::open(&dir.journal_file()).map_err(state_failure)?;
        let pending = j.pending_undo();
        if pending.is_empty() {
            archive_drill(&dir, &j);
            say(&format!("{} nothing to undo in lab `{}`", paint(GREEN, "✓"), g.lab));
            return Ok(exit::OK);
        }
        let lab = Lab::open(&target(g), &dir, false).await.map_err(lab_failure)?;
        if let Some(e) = &lab.kube_error {
            say(&format!("{} the apiserver does not answer ({e}); node-level changes are undone first", paint(YELLOW, "!")));
        }
        let nodes = lab.nodes.nodes().await.unwrap_or_default();
        let progress = |l: &str| say(l);
        let inj = Injector { lab: &lab, nodes, progress: &progress };
        say(&format!("→ undoing {} change(s), last first", pending.len()));
        let (_, failed) = inj.undo_pending(&mut j).await.map_err(|e| Failure::new(exit::FAILED, e.to_string()))?;
        if !failed.is_empty() {
            return Err(Failure::new(exit::CLUSTER, format!("{} change(s) could not be undone yet", failed.len())).help("fix what the lines above say (or wait for the cluster to answer), then run `klab reset` again: it continues where it stopped"));
        }
        archive_drill(&dir, &j);
        say(&format!("{} lab `{}` is back to how klab found it", paint(GREEN, "✓"), g.lab));
        Ok(exit::OK)
    })
}

pub fn status(g: &Global, cat: &Catalog) -> Outcome {
    let dir = lab_dir(g);
    let rec: Option<LabRecord> = read_json(&dir.lab_file()).map_err(state_failure)?;
    let session: Option<Session> = read_json(&dir.session_file()).map_err(state_failure)?;
    let j = Journal::open(&dir.journal_file()).map_err(state_failure)?;
    let pending = j.pending_undo();
    if g.output == OutputFormat::Json {
        output::print_json(
            &serde_json::json!({"lab": rec, "session": session, "pendingUndo": pending.iter().map(|(_, _, u)| u.describe()).collect::<Vec<_>>(),
                "progress": super::scorecard::status_json(session.as_ref(), cat)}),
        )?;
        return Ok(exit::OK);
    }
    match &rec {
        Some(r) => anstream::println!(
            "lab {} (context {}, kube-system UID {}{})",
            paint(BOLD, &r.name),
            r.context,
            r.cluster_uid,
            if r.adopted { ", adopted with --i-know-context" } else { "" }
        ),
        None => anstream::println!("lab {}: not created by klab here (`klab up`)", g.lab),
    }
    match &session {
        None => anstream::println!("no drill running"),
        Some(s) => {
            let title = cat.scenario(&s.scenario).map(|e| e.item.metadata.title.clone()).unwrap_or_default();
            anstream::println!("drill {} — {title}", paint(BOLD, &s.scenario));
            if let Some(v) = &s.variant {
                anstream::println!("variant {v} ({})", s.variant_reason.clone().unwrap_or_default());
            }
            if let Some(t) = s.injected_at.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
                let mins = (jiff::Timestamp::now().as_second() - t.as_second()) / 60;
                let limit =
                    cat.scenario(&s.scenario).map(|e| e.item.metadata.time_limit.to_string()).unwrap_or_default();
                anstream::println!(
                    "injected {mins} min ago (time limit {limit}); hints taken: {}; check attempts: {}",
                    s.hints_taken.len(),
                    s.check_attempts.len()
                );
                super::scorecard::print_status(s, cat);
            } else {
                anstream::println!(
                    "{}",
                    paint(
                        YELLOW,
                        "injection did not finish (see the journal below); `klab reset` undoes what was done"
                    )
                );
            }
        }
    }
    if !pending.is_empty() {
        anstream::println!("journal: {} change(s) that `klab reset` will undo", pending.len());
        for r in &j.records {
            if let Record::Intent { seq, phase, step, kind, .. } = r {
                let state = j.records.iter().find_map(|x| match x {
                    Record::Done { seq: s, .. } if s == seq => Some("done"),
                    Record::Failed { seq: s, .. } if s == seq => Some("failed"),
                    _ => None,
                });
                anstream::println!("  {seq:>3}. {phase:<8} {step} [{kind}] {}", state.unwrap_or("interrupted"));
            }
        }
    }
    Ok(exit::OK)
}
