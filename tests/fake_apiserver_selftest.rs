// tier: fake API server (in-process), no cluster
//! Proves the fake API server in `testkit/` behaves like a real one for kube-rs 5.

use klab_testkit as support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, AttachParams, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{Discovery, Scope};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::{FakeApiServer, strip_server_fields};

async fn client_from_kubeconfig(api: &FakeApiServer, dir: &std::path::Path) -> Client {
    let path = api.kubeconfig(dir);
    let kc = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let opts = KubeConfigOptions { context: Some("kind-klab".into()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts).await.expect("config from kubeconfig");
    Client::try_from(config).expect("client")
}

fn cm(name: &str, labels: Value, data: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }))
    .unwrap()
}

fn api_err(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected Error::Api, got {other:?}"),
    }
}

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    items.iter().map(|o| o.meta().name.clone().unwrap_or_default()).collect()
}

#[tokio::test]
async fn kubeconfig_client_sees_version_and_discovery() {
    let api = FakeApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let client = client_from_kubeconfig(&api, dir.path()).await;

    let text = std::fs::read_to_string(dir.path().join("kubeconfig")).unwrap();
    assert!(text.contains(&format!("server: {}", api.url())), "{text}");
    assert!(text.contains("current-context: kind-klab"), "{text}");

    let v = client.apiserver_version().await.unwrap();
    assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "31"));

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "NetworkPolicy")
        .expect("networkpolicies discovered");
    assert_eq!(ar.api_version, "networking.k8s.io/v1");
    assert_eq!(ar.plural, "networkpolicies");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(discovery.has_group("apps"));
    assert!(discovery.has_group("rbac.authorization.k8s.io"));
    assert!(discovery.has_group("admissionregistration.k8s.io"));
    assert!(discovery.has_group("coordination.k8s.io"));
    assert!(!discovery.has_group("policy"), "no PSPs on 1.31");
    let core = discovery.get("").expect("core group");
    let (pods, pod_caps) = core.recommended_kind("Pod").expect("pods");
    assert_eq!(pods.plural, "pods");
    assert!(pod_caps.subresources.iter().any(|(sr, _)| sr.plural == "log"));
    assert!(pod_caps.subresources.iter().any(|(sr, _)| sr.plural == "exec"));
    let (nodes, node_caps) = core.recommended_kind("Node").expect("nodes");
    assert_eq!(nodes.plural, "nodes");
    assert_eq!(node_caps.scope, Scope::Cluster);

    // Aggregated discovery (two requests) sees the same groups.
    let agg = Discovery::new(client.clone()).run_aggregated().await.unwrap();
    assert!(agg.has_group("apps") && agg.has_group("networking.k8s.io") && agg.has_group(""));
    assert!(!agg.has_group("policy"));

    // Named kubeconfig with other names.
    let path = api.kubeconfig_named(dir.path(), "ctx-a", "cl-a", "user-a");
    let kc = Kubeconfig::read_from(&path).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("ctx-a"));
    assert_eq!(kc.clusters[0].name, "cl-a");
    assert_eq!(kc.auth_infos[0].name, "user-a");
}

#[tokio::test]
async fn old_version_serves_podsecuritypolicies_dynamically() {
    let api = FakeApiServer::start();
    api.set_version(1, 20);
    let client = api.client();
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.minor, "20");
    assert_eq!(v.git_version, "v1.20.0");

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "PodSecurityPolicy")
        .expect("PSP discovered on 1.20");
    assert_eq!(ar.api_version, "policy/v1beta1");
    assert_eq!(caps.scope, Scope::Cluster);

    let psps: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy",
        "metadata": {"name": "restricted", "labels": {"tier": "strict"}},
        "spec": {"privileged": false},
    }))
    .unwrap();
    let created = psps.create(&PostParams::default(), &obj).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.metadata.namespace, None);
    let list = psps.list(&ListParams::default().labels("tier=strict")).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].data["spec"]["privileged"], json!(false));
    assert!(api.get("policy/v1beta1", "PodSecurityPolicy", "", "restricted").is_some());
    psps.delete("restricted", &DeleteParams::default()).await.unwrap();
    assert!(api.get("policy/v1beta1", "PodSecurityPolicy", "", "restricted").is_none());

    // Back on 1.31 the resource is gone from discovery and its URLs 404.
    api.set_version(1, 31);
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(!discovery.has_group("policy"));
    let err = api_err(psps.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn networkpolicy_via_dynamic_api() {
    let api = FakeApiServer::start();
    let client = api.client();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, _) =
        discovery.groups().flat_map(|g| g.recommended_resources()).find(|(ar, _)| ar.kind == "NetworkPolicy").unwrap();
    let nps: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let np: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }))
    .unwrap();
    nps.create(&PostParams::default(), &np).await.unwrap();
    let got = nps.get("deny-all").await.unwrap();
    assert_eq!(got.data["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(got.metadata.namespace.as_deref(), Some("default"));
    let all: Api<DynamicObject> = Api::all_with(client, &ar);
    assert_eq!(all.list(&ListParams::default()).await.unwrap().items.len(), 1);
    nps.delete("deny-all", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_err(nps.get("deny-all").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn configmap_crud_selectors_and_conflicts() {
    let api = FakeApiServer::start();
    let client = api.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();

    let a = cms.create(&pp, &cm("a", json!({"app": "web", "tier": "fe"}), json!({"k": "1"}))).await.unwrap();
    let rv_a: u64 = a.resource_version().unwrap().parse().unwrap();
    assert!(a.uid().is_some());
    assert!(a.metadata.creation_timestamp.is_some());
    assert_eq!(a.metadata.generation, Some(1));
    cms.create(&pp, &cm("b", json!({"app": "db", "tier": "be"}), json!({}))).await.unwrap();
    cms.create(&pp, &cm("c", json!({"app": "web"}), json!({}))).await.unwrap();
    let b_rv: u64 = cms.get("b").await.unwrap().resource_version().unwrap().parse().unwrap();
    assert!(b_rv > rv_a, "one global counter");

    // AlreadyExists
    let err = api_err(cms.create(&pp, &cm("a", json!({}), json!({}))).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(err.message, "configmaps \"a\" already exists");

    // Namespace must exist.
    let nowhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let err = api_err(nowhere.create(&pp, &cm("x", json!({}), json!({}))).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "namespaces \"nowhere\" not found");

    // Invalid name
    let err = api_err(cms.create(&pp, &cm("Bad_Name", json!({}), json!({}))).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));

    // generateName
    let mut g = cm("", json!({}), json!({}));
    g.metadata.name = None;
    g.metadata.generate_name = Some("gen-".into());
    let g = cms.create(&pp, &g).await.unwrap();
    assert!(g.name_any().starts_with("gen-") && g.name_any().len() == 9, "{}", g.name_any());

    // dryRun creates nothing
    let dry = PostParams { dry_run: true, ..Default::default() };
    cms.create(&dry, &cm("dry", json!({}), json!({}))).await.unwrap();
    assert!(api.get("v1", "ConfigMap", "default", "dry").is_none());

    // Label selectors
    let sel = |s: &'static str| {
        let cms = cms.clone();
        async move {
            let mut n = names(&cms.list(&ListParams::default().labels(s)).await.unwrap().items);
            n.sort();
            n
        }
    };
    assert_eq!(sel("app=web").await, ["a", "c"]);
    assert_eq!(sel("app==web,tier=fe").await, ["a"]);
    assert_eq!(sel("app!=web").await, ["b", g.name_any().as_str()]);
    assert_eq!(sel("app in (db, web),tier").await, ["a", "b"]);
    assert_eq!(sel("app notin (web)").await, ["b", g.name_any().as_str()]);
    assert_eq!(sel("!tier").await, ["c", g.name_any().as_str()]);
    assert_eq!(sel("app").await, ["a", "b", "c"]);
    // Field selectors
    let by_name = cms.list(&ListParams::default().fields("metadata.name=b")).await.unwrap();
    assert_eq!(names(&by_name.items), ["b"]);
    assert!(by_name.metadata.resource_version.is_some());
    let not_b = cms.list(&ListParams::default().fields("metadata.name!=b,metadata.namespace=default")).await.unwrap();
    assert_eq!(not_b.items.len(), 3);

    // List across all namespaces.
    api.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sys", "namespace": "kube-system"}}));
    let everywhere: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(everywhere.list(&ListParams::default()).await.unwrap().items.len(), 5);
    assert_eq!(cms.list(&ListParams::default()).await.unwrap().items.len(), 4);

    // Merge patch
    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": null, "n": "2"}, "metadata": {"labels": {"tier": null}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap().get("n").map(String::as_str), Some("2"));
    assert!(!patched.data.as_ref().unwrap().contains_key("k"));
    assert!(!patched.labels().contains_key("tier"));
    let rv_after: u64 = patched.resource_version().unwrap().parse().unwrap();
    assert!(rv_after > b_rv);
    // Strategic merge (treated as merge)
    let patched =
        cms.patch("a", &PatchParams::default(), &Patch::Strategic(json!({"data": {"s": "3"}}))).await.unwrap();
    assert_eq!(patched.data.as_ref().unwrap().len(), 2);

    // JSON patch (kube's Patch::Json needs a feature we do not enable: send it raw)
    let ops = json!([
        {"op": "test", "path": "/data/n", "value": "2"},
        {"op": "add", "path": "/data/added", "value": "x"},
        {"op": "replace", "path": "/data/s", "value": "33"},
        {"op": "copy", "from": "/data/s", "path": "/data/copied"},
        {"op": "move", "from": "/data/n", "path": "/data/moved"},
        {"op": "remove", "path": "/metadata/labels/app"},
        {"op": "add", "path": "/metadata/annotations", "value": {"a~b/c": "1"}},
    ]);
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/a")
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .body(serde_json::to_vec(&ops).unwrap())
        .unwrap();
    let jp: ConfigMap = client.request(req).await.unwrap();
    let data = jp.data.clone().unwrap();
    assert_eq!(data.get("added").map(String::as_str), Some("x"));
    assert_eq!(data.get("s").map(String::as_str), Some("33"));
    assert_eq!(data.get("copied").map(String::as_str), Some("33"));
    assert_eq!(data.get("moved").map(String::as_str), Some("2"));
    assert!(!data.contains_key("n"));
    assert!(jp.labels().is_empty());
    assert_eq!(jp.annotations().get("a~b/c").map(String::as_str), Some("1"));
    // A failing test op is 422 and changes nothing.
    let bad = json!([{"op": "test", "path": "/data/s", "value": "nope"}, {"op": "remove", "path": "/data/s"}]);
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/a")
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .body(serde_json::to_vec(&bad).unwrap())
        .unwrap();
    let err = api_err(client.request::<ConfigMap>(req).await.unwrap_err());
    assert_eq!(err.code, 422);
    assert!(cms.get("a").await.unwrap().data.unwrap().contains_key("s"));

    // Server-side apply: create when missing, merge when present.
    let ssa = PatchParams::apply("klab-test").force();
    let applied = cms
        .patch(
            "applied",
            &ssa,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"x": "1"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap().get("x").map(String::as_str), Some("1"));
    let applied = cms
        .patch(
            "applied",
            &ssa,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"y": "2"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap().len(), 2);
    assert!(
        api.requests()
            .iter()
            .any(|(m, p)| m == "PATCH" && p.contains("fieldManager=klab-test") && p.contains("force=true"))
    );

    // Replace: fresh resourceVersion works, stale one is a 409 Conflict.
    let mut cur = cms.get("b").await.unwrap();
    let stale = cur.clone();
    cur.data = Some([("r".to_string(), "1".to_string())].into());
    let replaced = cms.replace("b", &pp, &cur).await.unwrap();
    assert_ne!(replaced.resource_version(), stale.resource_version());
    let err = api_err(cms.replace("b", &pp, &stale).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(err.message.contains("the object has been modified"), "{}", err.message);
    // Merge patch carrying a stale resourceVersion conflicts too.
    let err = api_err(
        cms.patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": stale.resource_version()}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);

    // No-op patch does not bump resourceVersion.
    let before = cms.get("c").await.unwrap().resource_version();
    let after = cms.patch("c", &PatchParams::default(), &Patch::Merge(json!({"data": {}}))).await.unwrap();
    assert_eq!(after.resource_version(), before);

    // Delete, then 404 with a real Status.
    let deleted = cms.delete("c", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_left());
    let err = api_err(cms.get("c").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "configmaps \"c\" not found");
    let err = api_err(cms.delete("c", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(err.code, 404);
    let err = api_err(cms.patch("c", &PatchParams::default(), &Patch::Merge(json!({}))).await.unwrap_err());
    assert_eq!(err.code, 404);

    // Collection delete by label
    cms.delete_collection(&DeleteParams::default(), &ListParams::default().labels("app=db")).await.unwrap();
    assert!(api.get("v1", "ConfigMap", "default", "b").is_none());
    assert!(api.get("v1", "ConfigMap", "default", "a").is_some());
}

#[tokio::test]
async fn namespaces_pods_generation_and_cascade() {
    let api = FakeApiServer::start();
    let client = api.client();
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "lab"}})).unwrap();
    let ns = nss.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(ns.metadata.labels.unwrap().get("kubernetes.io/metadata.name").map(String::as_str), Some("lab"));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "lab");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx"}]},
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    api.auto_run_pods(true);
    let mut p2 = pod.clone();
    p2.metadata.name = Some("web2".into());
    p2.spec.as_mut().unwrap().node_name = Some("node-2".into());
    let running = pods.create(&PostParams::default(), &p2).await.unwrap();
    let status = running.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(status.conditions.unwrap().iter().any(|c| c.type_ == "Ready" && c.status == "True"));

    let on_node1 = pods.list(&ListParams::default().fields("spec.nodeName=node-1")).await.unwrap();
    assert_eq!(names(&on_node1.items), ["web"]);

    // Status is ignored on main-resource writes, settable via set_status and /status.
    assert!(api.set_status("v1", "Pod", "lab", "web", json!({"phase": "Failed", "reason": "Evicted"})));
    let got = pods.get("web").await.unwrap();
    assert_eq!(got.status.as_ref().unwrap().phase.as_deref(), Some("Failed"));
    let patched = pods
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}, "metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.as_ref().unwrap().phase.as_deref(), Some("Failed"));
    assert_eq!(patched.metadata.generation, got.metadata.generation, "metadata change keeps generation");
    let patched = pods
        .patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Succeeded"}})))
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().phase.as_deref(), Some("Succeeded"));
    let patched = pods
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"activeDeadlineSeconds": 5}})))
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(got.metadata.generation.unwrap() + 1));

    // Namespace finalize subresource (as `kubectl replace --raw …/finalize`).
    let mut lab = nss.get("lab").await.unwrap();
    lab.spec = Some(Default::default());
    let fin = nss.replace_subresource("finalize", "lab", &PostParams::default(), &lab).await.unwrap();
    assert!(fin.spec.unwrap_or_default().finalizers.unwrap_or_default().is_empty());
    assert_eq!(api.get("v1", "Namespace", "", "lab").unwrap()["spec"], json!({}));

    // Deleting the namespace deletes its objects.
    api.set_pod_log("lab", "web", "hello\n");
    nss.delete("lab", &DeleteParams::default()).await.unwrap();
    assert!(api.get("v1", "Namespace", "", "lab").is_none());
    assert!(api.get("v1", "Pod", "lab", "web").is_none());
    assert!(api.get("v1", "Pod", "lab", "web2").is_none());
    assert_eq!(api_err(pods.get("web").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn injected_write_failure_reaches_kube_as_api_error() {
    let api = FakeApiServer::start();
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    cms.create(&PostParams::default(), &cm("keep", json!({}), json!({}))).await.unwrap();

    api.fail_writes(500, "etcdserver: mvcc: database space exceeded");
    let err = api_err(cms.create(&PostParams::default(), &cm("new", json!({}), json!({}))).await.unwrap_err());
    assert_eq!(err.code, 500);
    assert_eq!(err.message, "etcdserver: mvcc: database space exceeded");
    assert_eq!(err.reason, "InternalError");
    let err = api_err(cms.delete("keep", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(err.code, 500);
    let err = api_err(
        cms.patch("keep", &PatchParams::default(), &Patch::Merge(json!({"data": {"a": "b"}}))).await.unwrap_err(),
    );
    assert_eq!(err.message, "etcdserver: mvcc: database space exceeded");
    // Reads still work; seeding bypasses failures.
    assert_eq!(cms.get("keep").await.unwrap().name_any(), "keep");
    api.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seeded", "namespace": "default"}}));
    assert_eq!(cms.list(&ListParams::default()).await.unwrap().items.len(), 2);

    api.clear_failures();
    cms.create(&PostParams::default(), &cm("new", json!({}), json!({}))).await.unwrap();

    api.fail_path(r"/configmaps/keep$", 403, "configmaps \"keep\" is forbidden: nope");
    let err = api_err(cms.get("keep").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(err.message, "configmaps \"keep\" is forbidden: nope");
    assert!(cms.get("new").await.is_ok());
    api.clear_failures();
    assert!(cms.get("keep").await.is_ok());
}

#[tokio::test]
async fn hang_gives_a_client_timeout_not_a_hang() {
    let api = FakeApiServer::start();
    // Only the call into the hang has a short read timeout: the calls that must succeed use the
    // ordinary client, so that a loaded machine (CI, beside four labs starting) cannot fail
    // them; a 300 ms timeout there once did.
    let mut config = api.kube_config();
    config.read_timeout = Some(Duration::from_secs(2));
    let short: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    cms.list(&ListParams::default()).await.unwrap();

    api.hang(true);
    // The error is the client's own read timeout; the outer one only turns a hang into a failure.
    let res = tokio::time::timeout(Duration::from_secs(60), short.list(&ListParams::default()))
        .await
        .expect("client must time out by itself");
    let err = res.unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
    assert!(format!("{err:?}").to_lowercase().contains("timed"), "{err:?}");

    api.hang(false);
    cms.list(&ListParams::default()).await.unwrap();

    api.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn refuse_gives_a_connection_error() {
    let api = FakeApiServer::start();
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    cms.list(&ListParams::default()).await.unwrap();
    api.refuse();
    let res = tokio::time::timeout(Duration::from_secs(60), cms.list(&ListParams::default()))
        .await
        .expect("connection error must be quick");
    let err = res.unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
    let text = format!("{err:?}").to_lowercase();
    assert!(text.contains("connect") || text.contains("closed"), "{text}");
    // A fresh connection is refused outright.
    let fresh: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    let text = format!("{:?}", fresh.list(&ListParams::default()).await.unwrap_err()).to_lowercase();
    assert!(text.contains("refused"), "{text}");
}

#[tokio::test]
async fn pod_logs_round_trip() {
    let api = FakeApiServer::start();
    api.put(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": "CrashLoopBackOff"}}));
    api.set_pod_log("default", "p", "line1\nline2\nline3\n");
    let pods: Api<Pod> = Api::namespaced(api.client(), "default");
    assert_eq!(pods.logs("p", &LogParams::default()).await.unwrap(), "line1\nline2\nline3\n");
    let tail = LogParams { tail_lines: Some(2), ..Default::default() };
    assert_eq!(pods.logs("p", &tail).await.unwrap(), "line2\nline3\n");
    // Seeded status is kept as given.
    assert_eq!(pods.get("p").await.unwrap().status.unwrap().phase.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(api_err(pods.logs("nope", &LogParams::default()).await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn exec_scripted_responder() {
    use tokio::io::AsyncReadExt;
    let api = FakeApiServer::start();
    api.put(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}));
    api.on_exec("default", "p", |argv| match argv.last().map(String::as_str) {
        Some("ok") => (format!("ran {}\n", argv.join(" ")), String::new(), 0),
        _ => (String::new(), "boom\n".into(), 3),
    });
    let pods: Api<Pod> = Api::namespaced(api.client(), "default");

    let mut proc = pods.exec("p", vec!["sh", "-c", "ok"], &AttachParams::default()).await.unwrap();
    let mut stdout = proc.stdout().unwrap();
    let status = proc.take_status().unwrap();
    let mut out = String::new();
    stdout.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "ran sh -c ok\n");
    let status = status.await.unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"));

    let mut proc = pods.exec("p", vec!["false"], &AttachParams::default()).await.unwrap();
    let mut stderr = proc.stderr().unwrap();
    let status = proc.take_status().unwrap();
    let mut err = String::new();
    stderr.read_to_string(&mut err).await.unwrap();
    assert_eq!(err, "boom\n");
    let status = status.await.unwrap();
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let causes = status.details.unwrap().causes.unwrap();
    assert_eq!(causes[0].message.as_deref(), Some("3"));

    assert!(pods.exec("missing", vec!["true"], &AttachParams::default()).await.is_err());
}

#[tokio::test]
async fn watch_streams_changes() {
    use futures::StreamExt;
    let api = FakeApiServer::start();
    let cms: Api<ConfigMap> = Api::namespaced(api.client(), "default");
    let list = cms.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let stream = cms.watch(&WatchParams::default().timeout(5), &rv).await.unwrap();
    let watch_req = api.requests().last().unwrap().1.clone();
    assert!(watch_req.contains("watch=true") && watch_req.contains(&format!("resourceVersion={rv}")), "{watch_req}");
    let mut stream = Box::pin(stream);
    cms.create(&PostParams::default(), &cm("w", json!({}), json!({}))).await.unwrap();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.name_any(), "w"),
        other => panic!("unexpected {other:?}"),
    }
    api.remove("v1", "ConfigMap", "default", "w");
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => assert_eq!(o.name_any(), "w"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn sync_controls_snapshot_requests_and_hooks() {
    // No tokio runtime here: the server brings its own.
    let api = FakeApiServer::start();
    let nss = api.list("v1", "Namespace");
    assert_eq!(names_of(&nss), ["default", "kube-system", "kube-public", "kube-node-lease"]);
    api.put(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}}),
    );
    let before = api.snapshot();
    let dep = api.get("apps/v1", "Deployment", "default", "web").unwrap();
    assert!(dep["metadata"]["uid"].is_string());
    assert_eq!(strip_server_fields(&dep)["metadata"], json!({"name": "web", "namespace": "default"}));

    api.register("example.com", "v1", "Widget", "widgets", true);
    api.set_delete_hook(|obj| {
        if obj["kind"] == "Deployment" {
            let mut again = strip_server_fields(obj);
            again["metadata"]["labels"] = json!({"recreated": "true"});
            vec![again]
        } else {
            vec![]
        }
    });

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = api.client();
        let discovery = Discovery::new(client.clone()).run().await.unwrap();
        let (ar, caps) = discovery.get("example.com").unwrap().recommended_kind("Widget").unwrap();
        assert_eq!(caps.scope, Scope::Namespaced);
        let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
        let w: DynamicObject = serde_json::from_value(
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}),
        )
        .unwrap();
        widgets.create(&PostParams::default(), &w).await.unwrap();
        let deps: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), "default");
        deps.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 0}}))).await.unwrap();
    });
    assert_ne!(api.snapshot(), before);
    let dep = api.get("apps/v1", "Deployment", "default", "web").unwrap();
    assert_eq!(dep["metadata"]["generation"], json!(2));
    assert_eq!(api.get("example.com/v1", "Widget", "default", "w1").unwrap()["spec"]["size"], json!(3));

    // Restore by hand: the snapshot matches again.
    api.remove("example.com/v1", "Widget", "default", "w1");
    api.put(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}}),
    );
    assert_eq!(api.snapshot(), before);

    // Delete hook recreates the deployment with a label.
    rt.block_on(async {
        let deps: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(api.client(), "default");
        deps.delete("web", &DeleteParams::default()).await.unwrap();
    });
    let again = api.get("apps/v1", "Deployment", "default", "web").expect("recreated by hook");
    assert_eq!(again["metadata"]["labels"]["recreated"], json!("true"));

    let reqs = api.requests();
    assert!(
        reqs.iter().any(|(m, p)| m == "POST" && p == "/apis/example.com/v1/namespaces/default/widgets"),
        "{reqs:?}"
    );
    assert!(
        reqs.iter().any(|(m, p)| m == "DELETE" && p.starts_with("/apis/apps/v1/namespaces/default/deployments/web"))
    );
    assert_eq!(api.write_requests().len(), 3);
    api.clear_requests();
    assert!(api.requests().is_empty());
    api.stop();
    api.stop();
}

fn names_of(objs: &[Value]) -> Vec<&str> {
    objs.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect()
}
