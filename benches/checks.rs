//! Benchmark (not a test): the check engine against the in-process fake API server.
//!
//!   CARGO_TARGET_DIR=… cargo bench --bench checks
//!
//! (a) 20 API-level checks (`resource` with a match tree) with 20 ms simulated latency per
//!     request finish in about one latency, not twenty: the engine runs them concurrently.
//! (b) The engine's own overhead per check is below 1 ms: the same checks evaluated one after
//!     another with no latency, minus the same API reads done directly with the client.
//!
//! Prints medians of many runs and whether each target is met; changes nothing outside itself.

use klab::check::engine::{CheckContext, evaluate, run_all};
use klab::cluster::kube::{Kube, ObjKey};
use klab::cluster::node::{Node, NodeAccess, NodeError};
use klab::cluster::process::Output;
use klab::scenario::kinds::{CheckSpec, Role};
use klab::scenario::plan::PlannedCheck;
use klab_testkit::FakeApiServer;
use serde_json::json;
use std::time::{Duration, Instant};

const CHECKS: usize = 20;
const LATENCY: Duration = Duration::from_millis(20);

/// API-level checks need no node; a node call here would be a bug in the benchmark.
struct NoNodes;
#[async_trait::async_trait]
impl NodeAccess for NoNodes {
    async fn nodes(&self) -> Result<Vec<Node>, NodeError> {
        Ok(vec![])
    }
    async fn exec(&self, node: &str, _: &[String], _: Option<&[u8]>, _: Duration) -> Result<Output, NodeError> {
        Err(NodeError::NoMatch(node.into()))
    }
    fn describe(&self) -> String {
        "none".into()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (a filter) is ignored.
    let api = FakeApiServer::start();
    let dir = std::env::temp_dir().join(format!("klab-bench-checks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = api.kubeconfig(&dir);
    api.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}));
    for i in 0..CHECKS {
        api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "bench", "labels": {"app": "bench"}},
            "data": {"n": i.to_string(), "mode": "production"}}));
    }
    let checks: Vec<PlannedCheck> = (0..CHECKS)
        .map(|i| PlannedCheck {
            id: format!("cm-{i}"),
            role: Role::Cause,
            description: format!("cm-{i} is as expected"),
            within: None,
            timeout: None,
            from: "inline".into(),
            self_heals: None,
            spec: serde_json::from_value::<CheckSpec>(json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap",
                "namespace": "bench", "name": format!("cm-{i}"),
                "match": {"metadata": {"labels": {"app": "bench"}}, "data": {"n": i.to_string(), "mode": "production"}}}}))
            .unwrap(),
        })
        .collect();
    let keys: Vec<ObjKey> = (0..CHECKS)
        .map(|i| ObjKey {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("bench".into()),
            name: format!("cm-{i}"),
        })
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let kube = Kube::connect(Some(&kubeconfig), "kind-klab").await.expect("connect");
        let ctx = CheckContext {
            kube: Ok(&kube),
            nodes: &NoNodes,
            node_list: vec![].into(),
            since: None,
            audit_log_path: String::new(),
        };
        // Warm up: discovery, connection pool.
        for _ in 0..3 {
            let r = run_all(&ctx, &checks).await;
            assert!(r.iter().all(|r| r.verdict.passed), "the benchmark's checks must pass: {r:#?}");
        }

        // (a) concurrency under latency.
        api.set_latency(LATENCY);
        let mut conc = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            let r = run_all(&ctx, &checks).await;
            conc.push(t.elapsed());
            assert!(r.iter().all(|r| r.verdict.passed));
        }
        let mut seq = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            for c in &checks {
                assert!(evaluate(&ctx, &c.spec).await.passed);
            }
            seq.push(t.elapsed());
        }
        api.set_latency(Duration::ZERO);
        let conc_m = median(conc);
        let seq_m = median(seq);

        // (b) engine overhead per check: sequential evaluation minus the same reads done directly.
        let rounds = 200;
        let mut engine = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            for c in &checks {
                assert!(evaluate(&ctx, &c.spec).await.passed);
            }
            engine.push(t.elapsed());
            let t = Instant::now();
            for k in &keys {
                assert!(kube.get(k).await.unwrap().is_some());
            }
            raw.push(t.elapsed());
        }
        let (engine_m, raw_m) = (median(engine), median(raw));
        let overhead = engine_m.saturating_sub(raw_m) / CHECKS as u32;

        println!(
            "klab check engine, {CHECKS} API-level checks (resource + match) against the in-process fake API server"
        );
        println!();
        println!("(a) with {} simulated latency per request", ms(LATENCY));
        println!("    run_all (concurrent), median of 30:   {}", ms(conc_m));
        println!("    one after another, median of 3:       {}", ms(seq_m));
        println!(
            "    concurrent = {:.2} latencies (target ≈ 1, i.e. < 2): {}",
            conc_m.as_secs_f64() / LATENCY.as_secs_f64(),
            if conc_m < 2 * LATENCY { "met" } else { "NOT met" }
        );
        println!();
        println!("(b) without latency, {CHECKS} checks one after another, median of {rounds}");
        println!("    engine (evaluate):                    {}", ms(engine_m));
        println!("    the same {CHECKS} GETs with the client:      {}", ms(raw_m));
        println!(
            "    engine overhead per check:            {} (target < 1 ms): {}",
            ms(overhead),
            if overhead < Duration::from_millis(1) { "met" } else { "NOT met" }
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
