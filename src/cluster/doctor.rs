//! Prerequisites: is there a Docker engine, kind and kubectl, in usable versions?

use super::process::{self, RunError};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Serialize, Clone)]
pub struct ToolStatus {
    pub name: &'static str,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub ready: bool,
    pub tools: Vec<ToolStatus>,
}

const T: Duration = Duration::from_secs(10);

async fn probe(name: &'static str, argv: &[&str], fix: &str) -> ToolStatus {
    let args = process::argv(argv.iter().copied());
    match process::run(&args, None, T).await {
        Ok(o) if o.ok() => {
            let v = o.stdout.lines().next().unwrap_or("").trim().to_string();
            ToolStatus { name, ok: true, version: Some(v.clone()), detail: v, fix: None }
        }
        Ok(o) => ToolStatus { name, ok: false, version: None, detail: o.reason(), fix: Some(fix.to_string()) },
        Err(e @ RunError::NotFound { .. }) => {
            ToolStatus { name, ok: false, version: None, detail: e.to_string(), fix: Some(fix.to_string()) }
        }
        Err(e) => ToolStatus { name, ok: false, version: None, detail: e.to_string(), fix: Some(fix.to_string()) },
    }
}

pub async fn check() -> DoctorReport {
    let (client, engine, kind, kubectl) = tokio::join!(
        probe(
            "docker",
            &["docker", "version", "--format", "{{.Client.Version}}"],
            "install Docker: https://docs.docker.com/engine/install/"
        ),
        probe(
            "docker engine",
            &["docker", "version", "--format", "{{.Server.Version}}"],
            "start the Docker engine (e.g. `sudo systemctl start docker`) and check that your user may use it (`docker ps`)"
        ),
        probe(
            "kind",
            &["kind", "version"],
            "install kind v0.24 or newer: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
        ),
        probe(
            "kubectl",
            &["kubectl", "version", "--client", "-o", "yaml"],
            "install kubectl: https://kubernetes.io/docs/tasks/tools/"
        ),
    );
    let mut kubectl = kubectl;
    if kubectl.ok {
        // `-o yaml` prints several lines; keep the gitVersion.
        let args = process::argv(["kubectl", "version", "--client", "-o", "json"]);
        if let Ok(o) = process::run(&args, None, T).await
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&o.stdout)
            && let Some(gv) = v.pointer("/clientVersion/gitVersion").and_then(|x| x.as_str())
        {
            kubectl.version = Some(gv.to_string());
            kubectl.detail = gv.to_string();
        }
    }
    let tools = vec![client, engine, kind, kubectl];
    DoctorReport { ready: tools.iter().all(|t| t.ok), tools }
}
