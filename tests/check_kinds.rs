// tier: fake API server (in-process, real kube-rs HTTP) + fake `docker` (tests/support/bin); no cluster.
//! Every check kind through the engine: passing, failing with the evidence a trainee reads, and
//! unable to look (apiserver refused, Docker down) — which must fail as "unknown", so that `not:`
//! never turns it into a pass. The engine runs in-process against the fake API server; node
//! access is `docker exec` into the fake node containers, each test with its own node state.

use klab_testkit as support;
use klab_testkit::lab_env;

use klab::check::engine::{CheckContext, Verdict, evaluate, run_all, run_one};
use klab::cluster::kube::Kube;
use klab::cluster::node::{DockerNodes, NodeAccess};
use klab::fault::AUDIT_LOG_PATH;
use klab::scenario::duration::Duration as Dur;
use klab::scenario::kinds::{CheckSpec, Role};
use klab::scenario::plan::PlannedCheck;
use lab_env::{Backend, Env, GOOD};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A lab for one test: the fake API server and fake node containers of a [`Env`], a kube-rs
/// client, and `docker exec` through a wrapper that points the fake at this test's node state.
struct Lab {
    env: Env,
    kube: Kube,
    docker: String,
    since: Option<jiff::Timestamp>,
}

impl Lab {
    async fn new() -> Lab {
        let env = Env::new(Backend::Fake, &GOOD).unwrap();
        let kube = Kube::connect(Some(&env.kubeconfig), "kind-klab").await.expect("connect to the fake");
        let wrapper = env.root.join("docker-wrapper");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nKLAB_FAKE_DOCKER='{}' exec '{}' \"$@\"\n",
                env.root.join("docker").display(),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/bin/docker").display()
            ),
        )
        .unwrap();
        let mut perm = std::fs::metadata(&wrapper).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&wrapper, perm).unwrap();
        let fake = env.fake();
        fake.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
        Lab { env, kube, docker: wrapper.display().to_string(), since: None }
    }

    /// Node access as one klab command has it (it lists the nodes once).
    fn nodes(&self) -> DockerNodes {
        DockerNodes::with_program("klab", &self.docker)
    }

    fn fake(&self) -> &support::FakeApiServer {
        self.env.fake()
    }

    fn node_dir(&self, node: &str) -> PathBuf {
        self.env.root.join("docker/nodes").join(node)
    }

    /// Stops the fake Docker daemon: every `docker` call fails as a stopped daemon does.
    fn docker_down(&self) {
        std::fs::write(self.env.root.join("docker/down"), "").unwrap();
    }

    /// Adds a worker node container with these sysctls.
    fn add_worker(&self, sysctls: Value) {
        let dir = self.node_dir("klab-worker");
        std::fs::create_dir_all(dir.join("root/etc/kubernetes/manifests")).unwrap();
        std::fs::write(dir.join("sysctl.json"), sysctls.to_string()).unwrap();
        std::fs::write(
            self.env.root.join("docker/nodes.json"),
            json!([{"name": "klab-control-plane", "role": "control-plane", "cluster": "klab"},
                   {"name": "klab-worker", "role": "worker", "cluster": "klab"}])
            .to_string(),
        )
        .unwrap();
    }

    async fn ctx<'a>(&'a self, nodes: &'a DockerNodes) -> CheckContext<'a> {
        CheckContext {
            kube: Ok(&self.kube),
            nodes,
            node_list: nodes.nodes().await.unwrap_or_default().into(),
            since: self.since,
            audit_log_path: AUDIT_LOG_PATH.into(),
        }
    }

    async fn eval(&self, spec: Value) -> Verdict {
        let spec: CheckSpec = serde_json::from_value(spec.clone()).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let nodes = self.nodes();
        let ctx = self.ctx(&nodes).await;
        evaluate(&ctx, &spec).await
    }

    fn probe_pods(&self) -> Vec<String> {
        self.fake()
            .list("v1", "Pod")
            .iter()
            .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
            .filter(|n| n.starts_with("klab-probe-"))
            .collect()
    }
}

fn passes(v: &Verdict) {
    assert!(v.passed && !v.unknown, "expected a pass: {v:#?}");
}

fn fails(v: &Verdict) {
    assert!(!v.passed && !v.unknown, "expected a failure that looked: {v:#?}");
}

fn could_not_look(v: &Verdict) {
    assert!(!v.passed && v.unknown, "expected a failure that could not look: {v:#?}");
}

fn evidence(v: &Verdict) -> String {
    v.evidence.join("\n")
}

// ------------------------------------------------------------------------------------ resource

fn cm(name: &str, mode: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"}}, "data": {"mode": mode}})
}

#[tokio::test]
async fn resource_exists_or_is_absent_and_says_which_object() {
    let lab = Lab::new().await;
    lab.fake().put(cm("app-config", "production"));
    let get = |name: &str, present: bool| json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": name, "present": present}});
    let v = lab.eval(get("app-config", true)).await;
    passes(&v);
    assert_eq!(v.reason, "ConfigMap shop/app-config found: app-config");
    let v = lab.eval(get("gone", true)).await;
    fails(&v);
    assert_eq!(v.reason, "ConfigMap shop/gone does not exist");
    let v = lab.eval(get("gone", false)).await;
    passes(&v);
    assert_eq!(v.reason, "no ConfigMap shop/gone matches");
    let v = lab.eval(get("app-config", false)).await;
    fails(&v);
    assert_eq!(v.reason, "ConfigMap shop/app-config still there: app-config");
}

#[tokio::test]
async fn resource_partial_match_shows_the_mismatch_as_evidence() {
    let lab = Lab::new().await;
    lab.fake().put(cm("app-config", "production"));
    let m = |mode: &str| json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "app-config", "match": {"metadata": {"labels": {"app": "web"}}, "data": {"mode": mode}}}});
    passes(&lab.eval(m("production")).await);
    let v = lab.eval(m("staging")).await;
    fails(&v);
    assert_eq!(v.reason, "ConfigMap shop/app-config exists but does not match");
    let ev = evidence(&v);
    assert!(ev.contains("app-config:") && ev.contains("staging") && ev.contains("production"), "{ev}");
    // `null` means absent: an object with the field does not match.
    let v = lab
        .eval(json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "app-config", "match": {"data": {"mode": null}}}}))
        .await;
    fails(&v);
}

#[tokio::test]
async fn resource_lists_match_by_content_not_by_position() {
    let lab = Lab::new().await;
    lab.fake().put(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "web-allow", "namespace": "shop"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                 "ingress": [{"ports": [{"port": 53}]}, {"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}],
                 "egress": []}}));
    let np = |m: Value| json!({"resource": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "namespace": "shop", "name": "web-allow", "match": m}});
    passes(&lab.eval(np(json!({"spec": {"ingress": [{"ports": [{"port": 8080}]}]}}))).await);
    passes(&lab.eval(np(json!({"spec": {"policyTypes": ["Egress"]}}))).await);
    let v = lab.eval(np(json!({"spec": {"egress": [{}]}}))).await;
    fails(&v);
    assert!(evidence(&v).contains("egress"), "{v:#?}");
    let v = lab.eval(np(json!({"spec": {"ingress": [{"ports": [{"port": 9090}]}]}}))).await;
    fails(&v);
    assert!(evidence(&v).contains("9090"), "{v:#?}");
}

#[tokio::test]
async fn resource_counts_objects_by_label() {
    let lab = Lab::new().await;
    for (i, mode) in ["a", "b", "c"].iter().enumerate() {
        lab.fake().put(cm(&format!("web-{i}"), mode));
    }
    lab.fake().put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "shop", "labels": {"app": "db"}}}));
    let count = |min: Option<u32>, max: Option<u32>| json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "labelSelector": "app=web", "count": {"min": min, "max": max}}});
    let v = lab.eval(count(Some(3), Some(3))).await;
    passes(&v);
    assert_eq!(v.reason, "3 ConfigMap shop/* match (expected 3–3)");
    fails(&lab.eval(count(Some(4), None)).await);
    fails(&lab.eval(count(None, Some(2))).await);
    passes(&lab.eval(count(None, Some(5))).await);
    // A match tree narrows what is counted.
    let v = lab
        .eval(json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "labelSelector": "app=web", "match": {"data": {"mode": "b"}}, "count": {"min": 1, "max": 1}}}))
        .await;
    passes(&v);
}

#[tokio::test]
async fn resource_cannot_look_when_the_apiserver_refuses_or_errs() {
    let lab = Lab::new().await;
    lab.fake().fail_path("configmaps", 500, "etcdserver: request timed out");
    let spec = json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "x", "present": false}});
    let v = lab.eval(spec.clone()).await;
    could_not_look(&v);
    assert!(v.reason.contains("etcdserver: request timed out"), "{v:#?}");
    assert!(evidence(&v).contains("while reading ConfigMap shop/x"), "{v:#?}");
    lab.fake().clear_failures();
    passes(&lab.eval(spec.clone()).await);
    lab.fake().refuse();
    let v = lab.eval(spec).await;
    could_not_look(&v);
    assert!(v.reason.contains("cannot reach the apiserver"), "{v:#?}");
}

// ------------------------------------------------------------------------------------ probePod

/// Plays the kubelet for probe pods: the first one that appears ends with `code` and `log`.
/// Returns the node the pod was pinned to.
async fn finish_probe(lab: &Lab, code: i64, log: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(p) =
            lab.fake().list("v1", "Pod").into_iter().find(|p| {
                p.pointer("/metadata/name").and_then(Value::as_str).is_some_and(|n| n.starts_with("klab-probe-"))
            })
        {
            let name = p.pointer("/metadata/name").and_then(Value::as_str).unwrap().to_string();
            let ns = p.pointer("/metadata/namespace").and_then(Value::as_str).unwrap().to_string();
            lab.fake().set_pod_log(&ns, &name, log);
            let phase = if code == 0 { "Succeeded" } else { "Failed" };
            lab.fake().set_status(
                "v1",
                "Pod",
                &ns,
                &name,
                json!({"phase": phase,
                "containerStatuses": [{"name": "probe", "state": {"terminated": {"exitCode": code}}}]}),
            );
            return p.pointer("/spec/nodeName").and_then(Value::as_str).map(str::to_string);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no probe pod appeared");
}

fn probe(timeout: &str) -> Value {
    json!({"probePod": {"image": "busybox:1.36", "namespace": "shop", "node": "control-plane", "timeout": timeout,
        "command": ["sh", "-c", "wget -q -O - \"$1\"", "probe", "https://10.96.0.1/api"],
        "expect": {"exitCode": 0, "stdoutContains": "APIVersions"}}})
}

#[tokio::test]
async fn probe_pod_passes_on_the_expected_output_and_is_removed() {
    let lab = Lab::new().await;
    let (v, node) = tokio::join!(lab.eval(probe("60s")), finish_probe(&lab, 0, "{\"kind\": \"APIVersions\"}\n"));
    passes(&v);
    assert_eq!(node.as_deref(), Some("klab-control-plane"), "`node: control-plane` pins the pod");
    let ev = evidence(&v);
    assert!(ev.contains("on klab-control-plane: exit code 0") && ev.contains("APIVersions"), "{ev}");
    assert!(lab.probe_pods().is_empty(), "probe pod left behind: {:?}", lab.probe_pods());
}

#[tokio::test]
async fn probe_pod_fails_on_a_bad_exit_code_with_its_log_and_is_removed() {
    let lab = Lab::new().await;
    let (v, _) = tokio::join!(lab.eval(probe("60s")), finish_probe(&lab, 1, "wget: download timed out\n"));
    fails(&v);
    assert!(v.reason.contains("exit code 1, expected 0"), "{v:#?}");
    assert!(evidence(&v).contains("wget: download timed out"), "{v:#?}");
    assert!(lab.probe_pods().is_empty(), "probe pod left behind: {:?}", lab.probe_pods());
}

#[tokio::test]
async fn probe_pod_that_never_finishes_times_out_and_is_removed() {
    let lab = Lab::new().await;
    let v = lab.eval(probe("2s")).await;
    fails(&v);
    assert!(v.reason.contains("probe pod still Running after 2s"), "{v:#?}");
    assert!(lab.probe_pods().is_empty(), "probe pod left behind: {:?}", lab.probe_pods());
}

#[tokio::test]
async fn probe_pod_refused_by_admission_is_an_answer_but_unreachable_is_not() {
    let lab = Lab::new().await;
    lab.fake().fail_path(
        "^/api/v1/namespaces/shop/pods$",
        403,
        "pods \"x\" is forbidden: violates PodSecurity \"restricted\"",
    );
    let v = lab.eval(probe("5s")).await;
    fails(&v);
    assert!(v.reason.contains("could not be created") && v.reason.contains("violates PodSecurity"), "{v:#?}");
    lab.fake().clear_failures();
    lab.fake().refuse();
    let v = lab.eval(probe("5s")).await;
    could_not_look(&v);
    assert!(evidence(&v).contains("the probe pod was not created"), "{v:#?}");
}

// ------------------------------------------------------------------------------------ podExec

fn toolbox(lab: &Lab, name: &str, phase: &str) {
    lab.fake().put(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": {"app": "toolbox"}},
        "spec": {"containers": [{"name": "toolbox", "image": "busybox:1.36"}]}, "status": {"phase": phase}}));
}

fn exec_check(selector: &str) -> Value {
    json!({"podExec": {"namespace": "shop", "labelSelector": selector, "command": ["wget", "-q", "-O", "-", "http://web:8080/"],
        "expect": {"exitCode": 0, "stdoutContains": "shop is open"}}})
}

#[tokio::test]
async fn pod_exec_runs_in_a_running_match_and_shows_its_output() {
    let lab = Lab::new().await;
    toolbox(&lab, "toolbox-old", "Pending");
    toolbox(&lab, "toolbox", "Running");
    lab.fake().on_exec("shop", "toolbox", |argv| {
        assert_eq!(argv[0], "wget");
        ("shop is open\n".into(), String::new(), 0)
    });
    let v = lab.eval(exec_check("app=toolbox")).await;
    passes(&v);
    assert!(v.reason.contains("in toolbox succeeded"), "{v:#?}");
    assert!(evidence(&v).contains("shop/toolbox: exit code 0"), "{v:#?}");
}

#[tokio::test]
async fn pod_exec_fails_with_the_commands_words() {
    let lab = Lab::new().await;
    toolbox(&lab, "toolbox", "Running");
    lab.fake().on_exec("shop", "toolbox", |_| (String::new(), "wget: download timed out\n".into(), 1));
    let v = lab.eval(exec_check("app=toolbox")).await;
    fails(&v);
    assert!(v.reason.contains("exit code 1, expected 0"), "{v:#?}");
    assert!(evidence(&v).contains("wget: download timed out"), "{v:#?}");
    let v = lab.eval(exec_check("app=nothing")).await;
    fails(&v);
    assert_eq!(v.reason, "no running pod matches app=nothing in shop");
}

#[tokio::test]
async fn pod_exec_cannot_look_without_the_apiserver() {
    let lab = Lab::new().await;
    toolbox(&lab, "toolbox", "Running");
    lab.fake().refuse();
    could_not_look(&lab.eval(exec_check("app=toolbox")).await);
}

// ------------------------------------------------------------------------------------ nodeExec

fn node_exec(cmd: &[&str], expect: Value) -> Value {
    json!({"nodeExec": {"nodes": "all", "command": cmd, "expect": expect}})
}

#[tokio::test]
async fn node_exec_checks_exit_code_and_output_on_every_node() {
    let lab = Lab::new().await;
    let manifest = ["cat", "/etc/kubernetes/manifests/etcd.yaml"];
    let v = lab.eval(node_exec(&manifest, json!({"exitCode": 0, "stdoutContains": "--data-dir=/var/lib/etcd"}))).await;
    passes(&v);
    assert!(evidence(&v).contains("klab-control-plane: exit 0"), "{v:#?}");
    let v = lab.eval(node_exec(&manifest, json!({"stdoutContains": "--quota-backend-bytes"}))).await;
    fails(&v);
    assert_eq!(v.reason, "klab-control-plane: output does not contain \"--quota-backend-bytes\"");
    passes(
        &lab.eval(node_exec(&manifest, json!({"stdoutMatches": "image: registry\\.k8s\\.io/etcd:3\\.5\\.\\d+"}))).await,
    );
    fails(&lab.eval(node_exec(&manifest, json!({"stdoutEquals": "etcd"}))).await);
    // A clear exit code: `test -e` of a missing file exits 1.
    let missing = ["test", "-e", "/etc/sysctl.d/90-cis-network.conf"];
    passes(&lab.eval(node_exec(&missing, json!({"exitCode": 1}))).await);
    let v = lab.eval(node_exec(&missing, json!({"exitCode": 0}))).await;
    fails(&v);
    assert!(v.reason.contains("exit code 1, expected 0"), "{v:#?}");
    // On several nodes, every node must meet the expectation.
    lab.add_worker(json!({}));
    let v = lab.eval(node_exec(&manifest, json!({"exitCode": 0}))).await;
    fails(&v);
    assert!(v.reason.starts_with("klab-worker: exit code 1"), "{v:#?}");
}

#[tokio::test]
async fn node_exec_with_docker_down_cannot_look_even_when_exit_code_1_is_expected() {
    let lab = Lab::new().await;
    let nodes = lab.nodes();
    let node_list = nodes.nodes().await.unwrap();
    lab.docker_down();
    // With the node list known (as `klab check` has it when Docker stops mid-run).
    let spec: CheckSpec = serde_json::from_value(node_exec(&["test", "-e", "/nope"], json!({"exitCode": 1}))).unwrap();
    let ctx = CheckContext {
        kube: Ok(&lab.kube),
        nodes: &nodes,
        node_list: node_list.into(),
        since: None,
        audit_log_path: AUDIT_LOG_PATH.into(),
    };
    let v = evaluate(&ctx, &spec).await;
    could_not_look(&v);
    assert!(v.reason.contains("Cannot connect to the Docker daemon"), "{v:#?}");
    let not: CheckSpec =
        serde_json::from_value(json!({"not": node_exec(&["test", "-e", "/nope"], json!({"exitCode": 0}))})).unwrap();
    could_not_look(&evaluate(&ctx, &not).await);
    // Without any node list, it says so.
    let v = lab.eval(node_exec(&["true"], json!({}))).await;
    could_not_look(&v);
    assert!(v.reason.contains("nodes could not be listed"), "{v:#?}");
}

// ------------------------------------------------------------------------------------ sysctl

fn sysctl(key: &str, equals: &str) -> Value {
    json!({"sysctl": {"nodes": "all", "key": key, "equals": equals}})
}

#[tokio::test]
async fn sysctl_reads_every_node_and_names_the_one_that_differs() {
    let lab = Lab::new().await;
    let v = lab.eval(sysctl("net.ipv4.ip_forward", "1")).await;
    passes(&v);
    assert_eq!(v.evidence, vec!["klab-control-plane: net.ipv4.ip_forward = 1"]);
    lab.add_worker(json!({"net.ipv4.ip_forward": "0"}));
    let v = lab.eval(sysctl("net.ipv4.ip_forward", "1")).await;
    fails(&v);
    assert_eq!(v.reason, "net.ipv4.ip_forward = 0 on klab-worker (expected 1)");
    assert!(evidence(&v).contains("klab-worker: net.ipv4.ip_forward = 0"), "{v:#?}");
    let v = lab.eval(sysctl("net.ipv4.no_such_key", "1")).await;
    fails(&v);
    assert!(v.reason.contains("cannot stat /proc/sys/net/ipv4/no_such_key"), "{v:#?}");
}

#[tokio::test]
async fn sysctl_with_the_node_unreachable_is_unknown_and_not_does_not_pass() {
    let lab = Lab::new().await;
    let nodes = lab.nodes();
    let node_list = nodes.nodes().await.unwrap();
    lab.docker_down();
    let ctx = CheckContext {
        kube: Ok(&lab.kube),
        nodes: &nodes,
        node_list: node_list.into(),
        since: None,
        audit_log_path: AUDIT_LOG_PATH.into(),
    };
    let spec: CheckSpec = serde_json::from_value(sysctl("net.ipv4.ip_forward", "0")).unwrap();
    let v = evaluate(&ctx, &spec).await;
    could_not_look(&v);
    assert!(evidence(&v).contains("cannot be reached"), "{v:#?}");
    let not: CheckSpec = serde_json::from_value(json!({"not": sysctl("net.ipv4.ip_forward", "1")})).unwrap();
    let v = evaluate(&ctx, &not).await;
    could_not_look(&v);
    assert!(v.reason.starts_with("cannot tell"), "{v:#?}");
}

// ------------------------------------------------------------------------------------ etcd

fn write_etcd(lab: &Lab, v: Value) {
    std::fs::write(lab.node_dir("klab-control-plane").join("etcd.json"), v.to_string()).unwrap();
}

#[tokio::test]
async fn etcd_alarms_health_and_size() {
    let lab = Lab::new().await;
    let v = lab.eval(json!({"etcd": {"noAlarms": true, "healthy": true, "maxDbBytes": 2_000_000}})).await;
    passes(&v);
    let ev = evidence(&v);
    assert!(
        ev.contains("etcdctl alarm list: (none)")
            && ev.contains("is healthy")
            && ev.contains("etcd database size 1000000 bytes"),
        "{ev}"
    );
    write_etcd(
        &lab,
        json!({"keys": {"/klab/filler/1": 900_000}, "alarms": ["NOSPACE"], "base": 1_000_000, "garbage": 0, "revision": 7}),
    );
    let v = lab.eval(json!({"etcd": {"noAlarms": true}})).await;
    fails(&v);
    assert_eq!(v.reason, "etcd alarm raised: NOSPACE");
    assert!(evidence(&v).contains("etcdctl alarm list: NOSPACE"), "{v:#?}");
    let v = lab.eval(json!({"etcd": {"maxDbBytes": 1_500_000}})).await;
    fails(&v);
    assert_eq!(v.reason, "etcd database is 1900000 bytes, more than 1500000: compact and defragment");
    std::fs::write(lab.node_dir("klab-control-plane").join("etcd-unhealthy"), "").unwrap();
    let v = lab.eval(json!({"etcd": {"healthy": true}})).await;
    fails(&v);
    assert_eq!(v.reason, "etcd is not healthy");
    assert!(evidence(&v).contains("unhealthy cluster"), "{v:#?}");
}

#[tokio::test]
async fn etcd_without_its_container_fails_and_with_docker_down_cannot_look() {
    let lab = Lab::new().await;
    std::fs::remove_file(lab.node_dir("klab-control-plane").join("root/etc/kubernetes/manifests/etcd.yaml")).unwrap();
    let v = lab.eval(json!({"etcd": {"noAlarms": true}})).await;
    fails(&v);
    assert!(v.reason.contains("no running etcd container"), "{v:#?}");
    let nodes = lab.nodes();
    let node_list = nodes.nodes().await.unwrap();
    lab.docker_down();
    let ctx = CheckContext {
        kube: Ok(&lab.kube),
        nodes: &nodes,
        node_list: node_list.into(),
        since: None,
        audit_log_path: AUDIT_LOG_PATH.into(),
    };
    let spec: CheckSpec = serde_json::from_value(json!({"etcd": {"noAlarms": true, "healthy": true}})).unwrap();
    let v = evaluate(&ctx, &spec).await;
    could_not_look(&v);
    assert!(v.reason.contains("Cannot connect to the Docker daemon"), "{v:#?}");
}

// ------------------------------------------------------------------------------------ rollout

fn workload(kind: &str, name: &str, generation: i64, spec: Value, status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "shop", "generation": generation},
        "spec": spec, "status": status})
}

fn rollout(kind: &str, name: &str) -> Value {
    json!({"rollout": {"kind": kind, "namespace": "shop", "name": name}})
}

#[tokio::test]
async fn rollout_of_deployments_daemonsets_and_statefulsets() {
    let lab = Lab::new().await;
    let f = lab.fake();
    f.put(workload(
        "Deployment",
        "web",
        2,
        json!({"replicas": 2}),
        json!({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2}),
    ));
    f.put(workload(
        "Deployment",
        "half",
        1,
        json!({"replicas": 2}),
        json!({"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 1}),
    ));
    f.put(workload(
        "Deployment",
        "stale",
        3,
        json!({"replicas": 1}),
        json!({"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 1}),
    ));
    f.put(workload(
        "DaemonSet",
        "agent",
        1,
        json!({}),
        json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 2}),
    ));
    f.put(workload(
        "DaemonSet",
        "nowhere",
        1,
        json!({}),
        json!({"observedGeneration": 1, "desiredNumberScheduled": 0, "numberReady": 0, "updatedNumberScheduled": 0}),
    ));
    f.put(workload(
        "StatefulSet",
        "db",
        1,
        json!({"replicas": 3}),
        json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3}),
    ));
    f.put(workload(
        "StatefulSet",
        "db-slow",
        1,
        json!({"replicas": 3}),
        json!({"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 3}),
    ));

    let v = lab.eval(rollout("Deployment", "web")).await;
    passes(&v);
    assert_eq!(v.reason, "Deployment shop/web: 2/2 available, 2 updated");
    let v = lab.eval(rollout("Deployment", "half")).await;
    fails(&v);
    assert_eq!(v.evidence, vec!["Deployment shop/half: 1/2 available, 2 updated"]);
    let v = lab.eval(rollout("Deployment", "stale")).await;
    fails(&v);
    assert!(evidence(&v).contains("(rollout not observed yet)"), "{v:#?}");
    let v = lab.eval(rollout("DaemonSet", "agent")).await;
    passes(&v);
    assert_eq!(v.reason, "DaemonSet shop/agent: 2/2 ready, 2 updated");
    fails(&lab.eval(rollout("DaemonSet", "nowhere")).await);
    passes(&lab.eval(rollout("StatefulSet", "db")).await);
    let v = lab.eval(rollout("StatefulSet", "db-slow")).await;
    fails(&v);
    assert_eq!(v.reason, "StatefulSet shop/db-slow: 1/3 ready, 3 updated");
    let v = lab.eval(rollout("Deployment", "missing")).await;
    fails(&v);
    assert_eq!(v.reason, "Deployment shop/missing does not exist");
    lab.fake().refuse();
    could_not_look(&lab.eval(rollout("Deployment", "web")).await);
}

// ------------------------------------------------------------------------------------ events

fn event(name: &str, reason: &str, kind: &str, message: &str, at: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "shop"},
        "involvedObject": {"kind": "ReplicaSet", "name": "web-7d4b9", "namespace": "shop"},
        "reason": reason, "type": kind, "message": message, "lastTimestamp": at})
}

#[tokio::test]
async fn events_since_the_fault_by_reason_type_and_message() {
    let mut lab = Lab::new().await;
    let now = jiff::Timestamp::now();
    lab.since = Some(now - jiff::SignedDuration::from_mins(5));
    let old = (now - jiff::SignedDuration::from_mins(30)).to_string();
    let recent = (now - jiff::SignedDuration::from_mins(1)).to_string();
    lab.fake().put(event("old", "FailedCreate", "Warning", "before the fault: quota exceeded", &old));
    lab.fake().put(event("ok", "ScalingReplicaSet", "Normal", "Scaled up", &recent));
    let none = json!({"events": {"namespace": "shop", "reason": "FailedCreate"}});
    let v = lab.eval(none.clone()).await;
    passes(&v);
    assert_eq!(v.reason, "no Warning event with reason FailedCreate since the fault", "older events do not count");
    lab.fake().put(event(
        "new",
        "FailedCreate",
        "Warning",
        "pods \"web-x\" is forbidden: violates PodSecurity",
        &recent,
    ));
    let v = lab.eval(none).await;
    fails(&v);
    assert_eq!(v.reason, "1 Warning event(s) with reason FailedCreate since the fault");
    assert_eq!(v.evidence, vec!["ReplicaSet web-7d4b9: pods \"web-x\" is forbidden: violates PodSecurity"]);
    passes(&lab.eval(json!({"events": {"namespace": "shop", "reason": "FailedCreate", "present": true, "messageContains": "PodSecurity"}})).await);
    fails(&lab.eval(json!({"events": {"namespace": "shop", "reason": "FailedCreate", "present": true, "messageContains": "quota"}})).await);
    passes(
        &lab.eval(
            json!({"events": {"namespace": "shop", "reason": "ScalingReplicaSet", "type": "Normal", "present": true}}),
        )
        .await,
    );
    lab.fake().refuse();
    could_not_look(&lab.eval(json!({"events": {"namespace": "shop", "reason": "FailedCreate"}})).await);
}

// ------------------------------------------------------------------------------------ audit

fn audit_line(time: &str, user: &str, verb: &str, resource: &str, name: &str, code: u16, stage: &str) -> String {
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": format!("{time}-{name}-{stage}"),
        "stage": stage, "verb": verb, "user": {"username": user},
        "objectRef": {"resource": resource, "namespace": "shop", "name": name, "apiVersion": "v1"},
        "responseStatus": {"code": code}, "requestReceivedTimestamp": time, "stageTimestamp": time})
    .to_string()
}

fn write_audit_log(lab: &Lab, lines: &[String]) {
    let path = lab.node_dir("klab-control-plane").join("root").join(AUDIT_LOG_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn audit_finds_calls_by_user_verb_resource_and_code_since_the_fault() {
    let mut lab = Lab::new().await;
    lab.since = Some("2024-05-01T10:00:00Z".parse().unwrap());
    write_audit_log(
        &lab,
        &[
            audit_line(
                "2024-05-01T09:59:00.000000Z",
                "alice",
                "delete",
                "configmaps",
                "before",
                200,
                "ResponseComplete",
            ),
            audit_line(
                "2024-05-01T10:01:00.000000Z",
                "alice",
                "delete",
                "configmaps",
                "app-config",
                200,
                "RequestReceived",
            ),
            audit_line(
                "2024-05-01T10:01:00.000000Z",
                "alice",
                "delete",
                "configmaps",
                "app-config",
                200,
                "ResponseComplete",
            ),
            audit_line("2024-05-01T10:02:00.000000Z", "bob", "create", "pods", "web-x", 403, "ResponseComplete"),
            "{not an audit line".into(),
        ],
    );
    let v = lab.eval(json!({"audit": {"user": "alice", "verb": "delete", "resource": "configmaps"}})).await;
    passes(&v);
    assert_eq!(v.reason, "1 matching audit event(s)", "one request, once; the one before the fault does not count");
    assert_eq!(v.evidence, vec!["2024-05-01T10:01:00.000000Z alice delete configmaps/app-config → 200"]);
    passes(&lab.eval(json!({"audit": {"verb": "create", "code": "4xx"}})).await);
    fails(&lab.eval(json!({"audit": {"verb": "create", "code": "5xx"}})).await);
    let v = lab.eval(json!({"audit": {"user": "bob", "code": "403", "present": false}})).await;
    fails(&v);
    assert_eq!(v.reason, "1 matching audit event(s), expected none");
    passes(&lab.eval(json!({"audit": {"user": "carol", "present": false}})).await);
    fails(&lab.eval(json!({"audit": {"name": "before"}})).await);
}

#[tokio::test]
async fn audit_without_a_log_fails_and_with_docker_down_cannot_look() {
    let lab = Lab::new().await;
    let v = lab.eval(json!({"audit": {"verb": "delete"}})).await;
    fails(&v);
    assert!(
        v.reason.contains("no audit log at /var/log/kubernetes/kube-apiserver-audit.log on klab-control-plane"),
        "{v:#?}"
    );
    let nodes = lab.nodes();
    let node_list = nodes.nodes().await.unwrap();
    lab.docker_down();
    let ctx = CheckContext {
        kube: Ok(&lab.kube),
        nodes: &nodes,
        node_list: node_list.into(),
        since: None,
        audit_log_path: AUDIT_LOG_PATH.into(),
    };
    let spec: CheckSpec = serde_json::from_value(json!({"audit": {"verb": "delete", "present": false}})).unwrap();
    could_not_look(&evaluate(&ctx, &spec).await);
}

// ------------------------------------------------------------------------------------ apiWrite

#[tokio::test]
async fn api_write_creates_and_deletes_a_config_map() {
    let lab = Lab::new().await;
    let before = lab.fake().list("v1", "ConfigMap").len();
    let v = lab.eval(json!({"apiWrite": {"namespace": "shop"}})).await;
    passes(&v);
    assert_eq!(v.reason, "a ConfigMap could be written in shop");
    assert_eq!(lab.fake().list("v1", "ConfigMap").len(), before, "the probe ConfigMap is deleted");
    assert!(lab.fake().write_requests().iter().any(|(m, p)| m == "POST" && p.contains("/namespaces/shop/configmaps")));
}

#[tokio::test]
async fn api_write_refused_by_etcd_is_an_answer_unreachable_is_not() {
    let lab = Lab::new().await;
    lab.fake().fail_writes(500, "etcdserver: mvcc: database space exceeded");
    let v = lab.eval(json!({"apiWrite": {"namespace": "shop"}})).await;
    fails(&v);
    assert!(v.reason.starts_with("writes fail: apiserver answered 500"), "{v:#?}");
    assert!(evidence(&v).contains("database space exceeded"), "{v:#?}");
    lab.fake().clear_failures();
    lab.fake().refuse();
    could_not_look(&lab.eval(json!({"apiWrite": {"namespace": "shop"}})).await);
}

// ------------------------------------------------------------------------------------ mirrorPods

#[tokio::test]
async fn mirror_pods_every_static_pod_has_its_api_object() {
    let lab = Lab::new().await;
    let spec = json!({"mirrorPods": {"nodes": "control-plane"}});
    let v = lab.eval(spec.clone()).await;
    fails(&v);
    assert_eq!(v.reason, "static pods running but invisible in the API: kube-system/etcd-klab-control-plane");
    assert!(evidence(&v).contains("crictl ps shows them"), "{v:#?}");
    lab.fake().put(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd-klab-control-plane", "namespace": "kube-system"}}));
    let v = lab.eval(spec.clone()).await;
    passes(&v);
    assert_eq!(v.reason, "all 1 static pods are visible in the API");
    let nodes = lab.nodes();
    let node_list = nodes.nodes().await.unwrap();
    lab.docker_down();
    let ctx = CheckContext {
        kube: Ok(&lab.kube),
        nodes: &nodes,
        node_list: node_list.into(),
        since: None,
        audit_log_path: AUDIT_LOG_PATH.into(),
    };
    let parsed: CheckSpec = serde_json::from_value(spec).unwrap();
    could_not_look(&evaluate(&ctx, &parsed).await);
}

#[tokio::test]
async fn mirror_pods_cannot_look_without_the_apiserver() {
    let lab = Lab::new().await;
    lab.fake().refuse();
    could_not_look(&lab.eval(json!({"mirrorPods": {}})).await);
}

// ------------------------------------------------------------------------------------ all/any/not

#[tokio::test]
async fn all_any_and_not_compose_verdicts_and_evidence() {
    let lab = Lab::new().await;
    lab.fake().put(cm("app-config", "production"));
    let yes = json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "app-config"}});
    let no = json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "app-config", "match": {"data": {"mode": "staging"}}}});
    let fwd = sysctl("net.ipv4.ip_forward", "1");
    let v = lab.eval(json!({"all": [yes, fwd]})).await;
    passes(&v);
    assert_eq!(v.reason, "all 2 hold");
    assert!(evidence(&v).contains("net.ipv4.ip_forward = 1"), "evidence of every part: {v:#?}");
    let v = lab.eval(json!({"all": [yes, no]})).await;
    fails(&v);
    assert_eq!(v.reason, "ConfigMap shop/app-config exists but does not match");
    let v = lab.eval(json!({"any": [no, yes]})).await;
    passes(&v);
    assert_eq!(v.reason, "ConfigMap shop/app-config found: app-config");
    let v = lab.eval(json!({"any": [no, sysctl("net.ipv4.ip_forward", "0")]})).await;
    fails(&v);
    assert!(
        v.reason
            .starts_with("none holds: ConfigMap shop/app-config exists but does not match; net.ipv4.ip_forward = 1"),
        "{v:#?}"
    );
    let v = lab.eval(json!({"not": no})).await;
    passes(&v);
    assert!(v.reason.starts_with("not: "), "{v:#?}");
    fails(&lab.eval(json!({"not": yes})).await);
}

// ------------------------------------------------------------------------------------ engine

fn planned(id: &str, spec: Value, timeout: Option<&str>, within: Option<&str>) -> PlannedCheck {
    PlannedCheck {
        id: id.into(),
        role: Role::User,
        description: id.into(),
        within: within.map(|w| Dur::parse(w).unwrap()),
        timeout: timeout.map(|t| Dur::parse(t).unwrap()),
        from: "inline".into(),
        self_heals: None,
        spec: serde_json::from_value(spec).unwrap(),
    }
}

#[tokio::test]
async fn a_hanging_apiserver_fails_the_check_at_its_timeout() {
    let lab = Lab::new().await;
    let nodes = lab.nodes();
    let ctx = lab.ctx(&nodes).await;
    lab.fake().hang(true);
    let c = planned("hangs", json!({"apiWrite": {}}), Some("1s"), None);
    // The reason names the check's own timeout; the outer one only turns a hang into a failure.
    let v = tokio::time::timeout(Duration::from_secs(60), run_one(&ctx, &c)).await.expect("the check hung");
    lab.fake().hang(false);
    fails(&v);
    assert_eq!(v.reason, "no answer within 1s");
}

#[tokio::test]
async fn within_polls_until_a_slow_recovery_passes() {
    let lab = Lab::new().await;
    let nodes = lab.nodes();
    let ctx = lab.ctx(&nodes).await;
    let c = planned(
        "mirror",
        json!({"resource": {"apiVersion": "v1", "kind": "Pod", "namespace": "kube-system", "name": "etcd-klab-control-plane"}}),
        None,
        Some("20s"),
    );
    let heal = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        lab.fake().put(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd-klab-control-plane", "namespace": "kube-system"}}));
    };
    let start = Instant::now();
    let (v, ()) = tokio::join!(run_one(&ctx, &c), heal);
    passes(&v);
    assert!(start.elapsed() >= Duration::from_millis(2500), "passed before the pod existed: {:?}", start.elapsed());
    let once = planned(
        "once",
        json!({"resource": {"apiVersion": "v1", "kind": "Pod", "namespace": "kube-system", "name": "nope"}}),
        None,
        None,
    );
    let results = run_all(&ctx, &[once]).await;
    assert!(!results[0].verdict.passed && results[0].id == "once");
}
