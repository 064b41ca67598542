// tier: fake API servers (one per team's lab, in-process, real kube-rs HTTP) + fake `docker`/`kind`
// on PATH. The same flow runs on real Kubernetes 1.20 nodes in ci/realnode-drills (two labs);
// this tier adds what a real cluster will not do on demand (a kill -9 in a chosen window, a host
// too small, a remote Docker host).
//! `klab gameday`: a roster, one lab per team, one clock, the board, the end, the report.

use klab_testkit as support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::FakeApiServer;

struct Game {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    kubeconfig: PathBuf,
    apis: Vec<(String, FakeApiServer)>,
}

fn game(teams: &[&str]) -> Game {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let docker = root.join("docker");
    let mut apis = Vec::new();
    let mut nodes = Vec::new();
    let (mut clusters, mut contexts, mut users) = (Vec::new(), Vec::new(), Vec::new());
    for t in teams {
        let lab = format!("klab-{t}");
        let node = format!("{lab}-control-plane");
        let api = FakeApiServer::start();
        api.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "klab-lab", "namespace": "kube-system", "labels": {"klab.dev/lab": "true"}}, "data": {"lab": lab}}));
        api.put(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {"node-role.kubernetes.io/control-plane": ""}}, "spec": {"providerID": format!("kind://docker/{lab}/{node}")}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        api.put(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.1"}}));
        api.put(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"}, "spec": {"clusterIP": "10.96.0.10"}}));
        let ctx = format!("kind-{lab}");
        clusters.push(json!({"name": ctx, "cluster": {"server": api.url()}}));
        contexts.push(json!({"name": ctx, "context": {"cluster": ctx, "user": ctx}}));
        users.push(json!({"name": ctx, "user": {"token": "fake-token"}}));
        std::fs::create_dir_all(docker.join("nodes").join(&node).join("root/etc/kubernetes/manifests")).unwrap();
        std::fs::write(docker.join("nodes").join(&node).join("sysctl.json"), r#"{"net.ipv4.ip_forward": "1"}"#)
            .unwrap();
        nodes.push(json!({"name": node, "role": "control-plane", "cluster": lab}));
        apis.push((t.to_string(), api));
    }
    std::fs::write(docker.join("nodes.json"), serde_json::to_string(&nodes).unwrap()).unwrap();
    std::fs::write(docker.join("clusters"), teams.iter().map(|t| format!("klab-{t}\n")).collect::<String>()).unwrap();
    let kubeconfig = root.join("kubeconfig");
    let kc = json!({"apiVersion": "v1", "kind": "Config", "clusters": clusters, "contexts": contexts, "users": users,
                    "current-context": format!("kind-klab-{}", teams[0]), "preferences": {}});
    std::fs::write(&kubeconfig, serde_json::to_string_pretty(&kc).unwrap()).unwrap();
    Game { _tmp: tmp, root, kubeconfig, apis }
}

impl Game {
    fn api(&self, team: &str) -> &FakeApiServer {
        &self.apis.iter().find(|(t, _)| t == team).unwrap().1
    }

    fn klab(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin!("klab"));
        c.args(["--color", "never"]);
        self.env(&mut c);
        c.args(args);
        c
    }

    fn env(&self, c: &mut std::process::Command) {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/bin");
        c.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KLAB_STATE_DIR", self.root.join("state"))
            .env("KLAB_FAKE_DOCKER", self.root.join("docker"))
            .env("KLAB_CATALOG", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gameday"))
            .env_remove("KLAB_LAB")
            .env_remove("KLAB_TEAM")
            .env_remove("KLAB_TEST_CRASH_AT")
            // The fakes on PATH answer; a developer's Docker settings must not reach past them.
            .env_remove("DOCKER_HOST")
            .env_remove("KLAB_DOCKER")
            .env_remove("KLAB_KIND");
    }

    fn out(&self, args: &[&str]) -> (i32, String, String) {
        let o = self.klab(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn roster(&self, text: &str) -> String {
        let p = self.root.join("roster.yaml");
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.root.join("state/gameday/state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn board(&self) -> Value {
        let (code, out, err) = self.out(&["gameday", "board", "-o", "json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("board JSON: {e}: {out}"))
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.root.join("docker/calls.log")).unwrap_or_default()
    }
}

fn team<'a>(board: &'a Value, name: &str) -> &'a Value {
    board["teams"].as_array().unwrap().iter().find(|t| t["team"] == name).unwrap_or_else(|| panic!("{board}"))
}

const ROSTER: &str = "apiVersion: klab.dev/v1
kind: GameDay
metadata: {name: friday, title: Friday fire drill}
timeLimit: 20m
drill: gd-config
hints: {max: 1}
teams:
  - name: blue
    members: [Ana, Ben]
  - name: red
    members: [Chen]
";

fn go(api: &FakeApiServer) {
    api.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "go", "namespace": "kube-system"}}));
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two teams: klab is killed (-9) while preparing, resumes; one team fixes and diagnoses, the
/// other takes a hint and blames a red herring; the end grades both; reset restores both labs.
#[test]
fn two_teams_a_crash_while_preparing_then_one_fixes_and_one_does_not() {
    let g = game(&["blue", "red"]);
    let roster = g.roster(ROSTER);
    go(g.api("blue"));

    // Start, and kill -9 the facilitator's klab while red's drill waits in its fault phase.
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("klab"));
    g.env(&mut cmd);
    let mut start = cmd
        .args(["--color", "never", "gameday", "start", &roster])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let red_journal = g.root.join("state/labs/klab-red/journal.jsonl");
    wait_for("blue injected and red in its fault phase", || {
        let blue_done = std::fs::read_to_string(g.root.join("state/gameday/state.json"))
            .is_ok_and(|s| s.contains(r#""name": "blue""#) && g.state()["teams"][0]["status"] == "injected");
        blue_done && std::fs::read_to_string(&red_journal).is_ok_and(|j| j.contains("flip-mode"))
    });
    start.kill().unwrap(); // SIGKILL
    start.wait().unwrap();

    // Nothing is lost: the board reads the state on disk; the clock has not started.
    let b = g.board();
    assert_eq!(b["clockStart"], Value::Null, "{b}");
    assert_eq!(team(&b, "blue")["state"], "working");
    assert_eq!(team(&b, "red")["state"], "preparing");

    // Red's drill (an orphan now) goes on once its wait is satisfied; start again resumes.
    go(g.api("red"));
    let (code, _, err) = g.out(&["gameday", "start", &roster]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming game day `friday`"), "{err}");
    assert!(err.contains("blue: already broken"), "{err}");
    let st = g.state();
    assert!(st["clockStart"].is_string(), "{st}");
    for t in ["blue", "red"] {
        let cm = g.api(t).get("v1", "ConfigMap", "shop", "app-config").unwrap();
        assert_eq!(cm["data"]["mode"], "maintenance", "{t}'s lab is broken");
    }

    // The same roster again does nothing new; another roster is refused while this one runs.
    let (code, _, err) = g.out(&["gameday", "start", &g.roster(&ROSTER.replace("friday", "monday"))]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("game day `friday` is still running"), "{err}");
    g.roster(ROSTER);

    // --team works on that team's lab only.
    let (code, _, err) = g.out(&["--team", "red", "--lab", "klab-blue", "check"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--team red works on lab `klab-red`"), "{err}");
    let (code, _, err) = g.out(&["--team", "green", "check"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no team `green`") && err.contains("blue, red"), "{err}");

    // Blue: a failed check, the fix, a passing check, the right diagnosis.
    assert_eq!(g.out(&["--team", "blue", "check"]).0, 1);
    let mut cm = g.api("blue").get("v1", "ConfigMap", "shop", "app-config").unwrap();
    cm["data"]["mode"] = json!("production");
    g.api("blue").put(cm);
    let (code, out, err) = g.out(&["--team", "blue", "check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(g.out(&["--team", "blue", "diagnose", "--cause", "mode-flipped"]).0, 0);
    assert_eq!(
        g.api("red").get("v1", "ConfigMap", "shop", "app-config").unwrap()["data"]["mode"],
        "maintenance",
        "blue's commands never touch red's lab"
    );

    // Red: one hint (the roster allows one), then a red herring.
    assert_eq!(g.out(&["--team", "red", "hint"]).0, 0);
    let (code, _, err) = g.out(&["--team", "red", "hint"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("allows 1 hint(s) per team"), "{err}");
    assert_eq!(g.out(&["--team", "red", "diagnose", "--cause", "dns"]).0, 1);
    // A final run is the facilitator's, at the end only.
    let (code, _, err) = g.out(&["--team", "red", "check", "--final"]);
    assert_eq!(code, 2, "{err}");

    let b = g.board();
    assert!(b["clockStart"].is_string() && b["endedAt"].is_null());
    let blue = team(&b, "blue");
    assert_eq!(
        (blue["rank"].as_u64(), blue["state"].as_str(), blue["fixed"].as_bool()),
        (Some(1), Some("fixed"), Some(true))
    );
    assert_eq!((blue["checksPassing"].as_u64(), blue["checksTotal"].as_u64()), (Some(1), Some(1)));
    assert_eq!((blue["causesFound"].as_u64(), blue["wrongAttempts"].as_u64()), (Some(1), Some(1)));
    let red = team(&b, "red");
    assert_eq!(
        (red["state"].as_str(), red["hints"].as_u64(), red["redHerringsBlamed"].as_u64()),
        (Some("working"), Some(1), Some(1))
    );
    assert_eq!(red["provisional"], true);
    let table = g.out(&["gameday", "board"]).1;
    assert!(table.contains("Game day `friday`") && table.contains("blue") && table.contains("fixed"), "{table}");

    // End: the clock stops, the final checks run, the results are written.
    let (code, out, err) = g.out(&["gameday", "end"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ended at"), "{out}");
    let st = g.state();
    assert!(st["endedAt"].is_string());
    assert!(st["teams"].as_array().unwrap().iter().all(|t| t["status"] == "final"), "{st}");
    let b = g.board();
    let (blue, red) = (team(&b, "blue"), team(&b, "red"));
    assert_eq!(blue["score"], 99, "one failed check run: {blue}");
    assert_eq!(red["state"], "not-fixed");
    // 100 − 5 (hint) − 5 (red herring) − 3 (attempt missed a cause) − 20 (cause not found).
    assert_eq!(red["score"], 67, "{red}");
    assert_eq!(red["wrongAttempts"], 1, "the final run is not red's failed attempt: {red}");
    assert_eq!(red["provisional"], false);
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(g.root.join("state/gameday/results.json")).unwrap()).unwrap();
    assert_eq!(results["debriefs"]["blue"]["outcome"], "fixed", "{results}");
    assert_eq!(results["debriefs"]["red"]["outcome"], "not-fixed");
    assert!(results["marks"].as_array().unwrap().iter().any(|m| m["team"] == "red" && m["kind"] == "hint"));
    // After the end, no more hints.
    let (code, _, err) = g.out(&["--team", "blue", "hint"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the game day is over"), "{err}");

    // The report: Markdown, JSON, HTML.
    let md = g.out(&["gameday", "report"]).1;
    assert!(md.contains("# Game day: Friday fire drill") && md.contains("| 1 | blue | Ana, Ben |"), "{md}");
    assert!(md.contains("## Team red"), "{md}");
    let html = g.out(&["gameday", "report", "--format", "html"]).1;
    assert!(html.contains(r#"id="scoreboard""#) && html.contains("<svg"), "{html}");

    // Reset both labs; down deletes them and keeps the results for the report.
    let (code, _, err) = g.out(&["gameday", "reset"]);
    assert_eq!(code, 0, "{err}");
    for t in ["blue", "red"] {
        assert!(g.api(t).get("v1", "Namespace", "", "shop").is_none(), "{t}'s lab is reset");
    }
    let (code, _, err) = g.out(&["gameday", "down"]);
    assert_eq!(code, 0, "{err}");
    assert!(g.calls().contains(r#"["kind", "delete", "cluster", "--name", "klab-blue"]"#), "{}", g.calls());
    assert_eq!(std::fs::read_to_string(g.root.join("docker/clusters")).unwrap().trim(), "");
    let (code, md, _) = g.out(&["gameday", "report"]);
    assert_eq!(code, 0);
    assert!(md.contains("Friday fire drill"), "the archived results still report");
    assert_eq!(g.out(&["gameday", "board"]).0, 3, "no game day runs any more");
}

#[test]
fn a_bad_roster_is_placed_and_a_small_host_is_refused_before_anything_is_created() {
    let g = game(&["blue", "red"]);
    let bad = g.roster("apiVersion: klab.dev/v1\nkind: GameDay\nmetadata: {name: x}\ntimeLimit: 20m\nteams:\n  - name: blue\n    members: [a]\n    drill: gd-confg\n");
    let (code, _, err) = g.out(&["gameday", "start", &bad]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("roster.yaml:8:12: error: no drill `gd-confg` in the catalog"), "{err}");
    assert!(err.contains("did you mean `gd-config`?"), "{err}");
    assert!(!g.root.join("state/gameday/state.json").exists());
    // `klab lint` knows a roster when it sees one.
    let (code, out, _) = g.out(&["lint", &bad]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("roster.yaml:8:12: error: no drill `gd-confg` in the catalog"), "{out}");

    // A new lab on a 1.5 GiB host: refused, and nothing was created or broken.
    let roster = g.roster(&ROSTER.replace("  - name: red\n", "  - name: green\n"));
    std::fs::write(g.root.join("docker/memtotal"), (3u64 << 29).to_string()).unwrap();
    let (code, _, err) = g.out(&["gameday", "start", &roster]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("klab-green (1 node(s), new)") && err.contains("klab-blue (1 node(s), exists)"), "{err}");
    assert!(err.contains("1 new node(s) need about 1.0 GiB (+1 GiB for the host); it has 1.5 GiB"), "{err}");
    assert!(!g.calls().contains(r#""create""#), "nothing created: {}", g.calls());
    assert!(g.api("blue").get("v1", "Namespace", "", "shop").is_none(), "nothing broken");
}

#[test]
fn a_team_on_another_docker_host_gets_that_host_for_every_docker_call() {
    let g = game(&["blue", "red"]);
    go(g.api("blue"));
    go(g.api("red"));
    let roster =
        g.roster(&format!("{ROSTER}    docker: {{host: 'tcp://10.1.2.3:2376', apiServerAddress: 10.1.2.3}}\n"));
    let (code, _, err) = g.out(&["gameday", "start", &roster]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("tcp://10.1.2.3:2376: klab-red (1 node(s), exists)"), "{err}");
    let hosts = std::fs::read_to_string(g.root.join("docker/hosts.log")).unwrap();
    assert!(hosts.lines().count() >= 2, "{hosts}");
    assert!(hosts.lines().all(|l| l.starts_with(r#"["tcp://10.1.2.3:2376""#)), "{hosts}");
    assert!(hosts.contains("klab-red") && !hosts.contains("klab-blue"), "only red's calls: {hosts}");
    // Red's own commands go there too (kind and docker).
    std::fs::remove_file(g.root.join("docker/hosts.log")).unwrap();
    assert_eq!(g.out(&["--team", "red", "up"]).0, 0);
    let hosts = std::fs::read_to_string(g.root.join("docker/hosts.log")).unwrap_or_default();
    assert!(hosts.contains(r#"["tcp://10.1.2.3:2376", "kind", "get", "clusters"]"#), "{hosts}");
    assert_eq!(g.out(&["--team", "blue", "up"]).0, 0);
    let after = std::fs::read_to_string(g.root.join("docker/hosts.log")).unwrap_or_default();
    assert_eq!(after, hosts, "blue's calls stay local");
}

/// The report of a finished game day (a recorded results file): Markdown and JSON snapshots.
fn recorded() -> Game {
    let g = game(&["blue"]);
    let dir = g.root.join("state/gameday");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gameday/results/results.json"),
        dir.join("results.json"),
    )
    .unwrap();
    g
}

#[test]
fn report_snapshots() {
    let g = recorded();
    let (code, md, err) = g.out(&["gameday", "report"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("gameday_report_md", md);
    let (code, json, err) = g.out(&["gameday", "report", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("gameday_report_json", json);
}

/// The HTML page in a real browser: it renders, the screenshot is not blank, the scoreboard,
/// the charts and the timeline are there, and no request leaves the page.
#[test]
fn the_game_day_page_renders_in_a_real_browser_and_requests_nothing() {
    let g = recorded();
    let page = g.root.join("gameday.html");
    let (code, _, err) = g.out(&["gameday", "report", "--format", "html", "--out", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    let loads = regex::Regex::new(r#"(?i)<(script|link|img|iframe|object|embed)\b|\bsrc\s*=|url\("#).unwrap();
    assert!(!loads.is_match(&html), "nothing is loaded: {:?}", loads.find(&html));
    let Some(chromium) = support::browser::chromium() else { return };
    let r = support::browser::render(chromium, &page, &g.root);
    for id in [r#"id="scoreboard""#, r#"id="time-to-fix""#, r#"id="timeline""#, r#"id="marks""#, r#"id="team-red""#] {
        assert!(r.dom.contains(id), "{id} missing from the rendered DOM: {}", r.dom);
    }
    assert!(r.dom.matches("<svg").count() >= 2, "both charts are in the DOM");
    assert!(r.dom.contains("<td>blue</td>") && r.dom.contains("<td>red</td>"), "the scoreboard lists both teams");
    r.assert_shown_offline();
    support::browser::control_is_caught(chromium, &g.root);
}
