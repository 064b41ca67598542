//! The node-side operations faults and checks are made of: sysctl, files, processes, the
//! kubelet service, and etcdctl inside the etcd container (through crictl), all through a
//! [`NodeAccess`]. Each returns the node's own words on failure.

use super::node::{NODE_TIMEOUT, NodeAccess, NodeError};
use super::process::{Output, argv};
use base64::Engine;
use std::time::Duration;

pub struct NodeOps<'a> {
    pub access: &'a dyn NodeAccess,
}

fn failed(node: &str, what: &str, out: &Output) -> NodeError {
    NodeError::Failed { node: node.to_string(), message: format!("{what}: {}", out.reason()) }
}

/// The certificates kubeadm gives etcd; the same on kind nodes.
const ETCD_FLAGS: &[&str] = &[
    "--endpoints=https://127.0.0.1:2379",
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
    "--cert=/etc/kubernetes/pki/etcd/server.crt",
    "--key=/etc/kubernetes/pki/etcd/server.key",
    "--command-timeout=20s",
];

impl NodeOps<'_> {
    pub async fn run(&self, node: &str, cmd: &[String]) -> Result<Output, NodeError> {
        self.access.exec(node, cmd, None, NODE_TIMEOUT).await
    }

    pub async fn sysctl_get(&self, node: &str, key: &str) -> Result<String, NodeError> {
        let out = self.run(node, &argv(["sysctl", "-n", key])).await?;
        if !out.ok() {
            return Err(failed(node, &format!("sysctl -n {key}"), &out));
        }
        Ok(out.stdout.trim().to_string())
    }

    pub async fn sysctl_set(&self, node: &str, key: &str, value: &str) -> Result<(), NodeError> {
        let out = self.run(node, &argv(["sysctl", "-w", &format!("{key}={value}")])).await?;
        if !out.ok() {
            return Err(failed(node, &format!("sysctl -w {key}={value}"), &out));
        }
        Ok(())
    }

    /// The file's bytes, or `None` when it does not exist.
    pub async fn read_file(&self, node: &str, path: &str) -> Result<Option<Vec<u8>>, NodeError> {
        let out = self.run(node, &argv(["base64", "-w", "0", path])).await?;
        if out.ok() {
            return base64::engine::general_purpose::STANDARD
                .decode(out.stdout.trim())
                .map(Some)
                .map_err(|e| NodeError::Failed { node: node.into(), message: format!("reading {path}: {e}") });
        }
        let exists = self.run(node, &argv(["test", "-e", path])).await?;
        if exists.code == 1 { Ok(None) } else { Err(failed(node, &format!("reading {path}"), &out)) }
    }

    /// Writes atomically: into a hidden temp file beside `tmp_dir` (same filesystem), then `mv`.
    /// Static pod manifests are written from the folder above the manifests folder, so the
    /// kubelet never sees a half-written file.
    pub async fn write_file(
        &self,
        node: &str,
        path: &str,
        content: &[u8],
        mode: Option<&str>,
    ) -> Result<(), NodeError> {
        let (dir, base) = path.rsplit_once('/').unwrap_or((".", path));
        let tmp_dir =
            if dir.ends_with("/manifests") { dir.rsplit_once('/').map(|(p, _)| p).unwrap_or(dir) } else { dir };
        let tmp = format!("{}/.klab-{base}.tmp", if tmp_dir.is_empty() { "/" } else { tmp_dir });
        let out = self.access.exec(node, &argv(["tee", &tmp]), Some(content), NODE_TIMEOUT).await?;
        if !out.ok() {
            return Err(failed(node, &format!("writing {tmp}"), &out));
        }
        if let Some(m) = mode {
            let out = self.run(node, &argv(["chmod", m, &tmp])).await?;
            if !out.ok() {
                return Err(failed(node, &format!("chmod {m} {tmp}"), &out));
            }
        }
        let out = self.run(node, &argv(["mv", "-f", &tmp, path])).await?;
        if !out.ok() {
            return Err(failed(node, &format!("mv {tmp} {path}"), &out));
        }
        Ok(())
    }

    pub async fn remove_file(&self, node: &str, path: &str) -> Result<(), NodeError> {
        let out = self.run(node, &argv(["rm", "-f", path])).await?;
        if !out.ok() {
            return Err(failed(node, &format!("rm {path}"), &out));
        }
        Ok(())
    }

    /// Command lines of the processes named exactly `name`.
    pub async fn process_cmdlines(&self, node: &str, name: &str) -> Result<Vec<String>, NodeError> {
        let out = self.run(node, &argv(["pgrep", "-a", "-x", name])).await?;
        match out.code {
            0 => Ok(out.stdout.lines().map(|l| l.split_once(' ').map(|(_, c)| c).unwrap_or("").to_string()).collect()),
            1 => Ok(vec![]),
            _ => Err(failed(node, &format!("pgrep {name}"), &out)),
        }
    }

    pub async fn kubelet_running(&self, node: &str) -> Result<bool, NodeError> {
        let out = self.run(node, &argv(["systemctl", "is-active", "kubelet"])).await?;
        Ok(out.ok() && out.stdout.trim() == "active")
    }

    pub async fn kubelet(&self, node: &str, start: bool) -> Result<(), NodeError> {
        let verb = if start { "start" } else { "stop" };
        let out = self.run(node, &argv(["systemctl", verb, "kubelet"])).await?;
        if !out.ok() {
            return Err(failed(node, &format!("systemctl {verb} kubelet"), &out));
        }
        Ok(())
    }

    /// The running etcd container's id, through crictl (the apiserver may be failing).
    pub async fn etcd_container(&self, node: &str) -> Result<String, NodeError> {
        let out = self.run(node, &argv(["crictl", "ps", "--name", "^etcd$", "-q"])).await?;
        if !out.ok() {
            return Err(failed(node, "crictl ps --name etcd", &out));
        }
        out.stdout.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string).ok_or_else(|| NodeError::Failed {
            node: node.into(),
            message: "no running etcd container (crictl ps --name etcd is empty)".into(),
        })
    }

    /// Runs `etcdctl ARGS` in the etcd container with the member's certificates.
    pub async fn etcdctl(
        &self,
        node: &str,
        args: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, NodeError> {
        let id = self.etcd_container(node).await?;
        let mut cmd = argv(["crictl", "exec"]);
        if stdin.is_some() {
            cmd.push("-i".into());
        }
        cmd.push(id);
        cmd.push("etcdctl".into());
        cmd.extend(ETCD_FLAGS.iter().map(|s| s.to_string()));
        cmd.extend(args.iter().cloned());
        self.access.exec(node, &cmd, stdin, timeout).await
    }

    /// Raised alarms, e.g. `["NOSPACE"]`.
    pub async fn etcd_alarms(&self, node: &str) -> Result<Vec<String>, NodeError> {
        let out = self.etcdctl(node, &argv(["alarm", "list"]), None, NODE_TIMEOUT).await?;
        if !out.ok() {
            return Err(failed(node, "etcdctl alarm list", &out));
        }
        Ok(out.stdout.lines().filter_map(|l| l.split("alarm:").nth(1)).map(|a| a.trim().to_string()).collect())
    }

    /// (revision, dbSize) from `endpoint status`.
    pub async fn etcd_status(&self, node: &str) -> Result<(u64, u64), NodeError> {
        let out = self.etcdctl(node, &argv(["endpoint", "status", "-w", "json"]), None, NODE_TIMEOUT).await?;
        if !out.ok() {
            return Err(failed(node, "etcdctl endpoint status", &out));
        }
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
            .map_err(|e| NodeError::Failed { node: node.into(), message: format!("etcdctl endpoint status: {e}") })?;
        let st = v.get(0).and_then(|e| e.get("Status")).cloned().unwrap_or_default();
        let rev = st.pointer("/header/revision").and_then(|x| x.as_u64()).unwrap_or(0);
        let size = st.get("dbSize").and_then(|x| x.as_u64()).unwrap_or(0);
        Ok((rev, size))
    }

    pub async fn etcd_healthy(&self, node: &str) -> Result<(bool, String), NodeError> {
        let out = self.etcdctl(node, &argv(["endpoint", "health"]), None, NODE_TIMEOUT).await?;
        let text = format!("{}{}", out.stdout, out.stderr).trim().to_string();
        Ok((out.ok() && text.contains("is healthy"), text))
    }

    /// Deletes the prefix, compacts to the current revision, defragments, disarms: the order
    /// an operator must follow after NOSPACE (only the disarm gives writes back).
    pub async fn etcd_recover(
        &self,
        node: &str,
        prefix: Option<&str>,
        compact: bool,
        defrag: bool,
        disarm: bool,
    ) -> Result<Vec<String>, NodeError> {
        let mut done = Vec::new();
        let long = Duration::from_secs(120);
        if let Some(p) = prefix {
            let out = self.etcdctl(node, &argv(["del", p, "--prefix"]), None, long).await?;
            if !out.ok() {
                return Err(failed(node, &format!("etcdctl del {p} --prefix"), &out));
            }
            done.push(format!("deleted {} key(s) under {p}", out.stdout.trim()));
        }
        if compact {
            let (rev, _) = self.etcd_status(node).await?;
            let out = self.etcdctl(node, &argv(["compact", &rev.to_string()]), None, long).await?;
            if !out.ok() && !out.stderr.contains("required revision has been compacted") {
                return Err(failed(node, "etcdctl compact", &out));
            }
            done.push(format!("compacted to revision {rev}"));
        }
        if defrag {
            let out = self.etcdctl(node, &argv(["defrag"]), None, long).await?;
            if !out.ok() {
                return Err(failed(node, "etcdctl defrag", &out));
            }
            done.push("defragmented".into());
        }
        if disarm {
            let out = self.etcdctl(node, &argv(["alarm", "disarm"]), None, long).await?;
            if !out.ok() {
                return Err(failed(node, "etcdctl alarm disarm", &out));
            }
            done.push("alarms disarmed".into());
        }
        Ok(done)
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
}
