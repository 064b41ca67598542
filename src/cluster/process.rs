//! Running external programs (docker, kind, kubectl): argument vectors only, never a shell;
//! always a timeout; the child is killed if klab stops waiting for it.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
    /// The most useful line to show when it failed.
    pub fn reason(&self) -> String {
        let e = self.stderr.trim();
        let text = if e.is_empty() { self.stdout.trim() } else { e };
        let last: Vec<&str> = text.lines().rev().take(3).collect();
        let joined = last.into_iter().rev().collect::<Vec<_>>().join(" | ");
        if joined.is_empty() {
            format!("exit code {}", self.code)
        } else {
            format!("exit code {}: {joined}", self.code)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("`{program}` is not installed or not on PATH")]
    NotFound { program: String },
    #[error("`{program}` did not finish within {secs}s")]
    Timeout { program: String, secs: u64 },
    #[error("cannot run `{program}`: {source}")]
    Io { program: String, source: std::io::Error },
}

static ENV_OVERLAY: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// Environment every program klab runs gets on top of klab's own (a game-day team's Docker
/// host: `DOCKER_HOST`/`DOCKER_CONTEXT`). Set once, at start-up.
pub fn set_env_overlay(vars: Vec<(String, String)>) {
    let _ = ENV_OVERLAY.set(vars);
}

pub fn env_overlay() -> &'static [(String, String)] {
    ENV_OVERLAY.get().map(Vec::as_slice).unwrap_or(&[])
}

/// Runs `argv` with an optional stdin, for at most `timeout`.
pub async fn run(argv: &[String], stdin: Option<&[u8]>, timeout: Duration) -> Result<Output, RunError> {
    let program = argv.first().cloned().unwrap_or_default();
    let mut cmd = Command::new(&program);
    cmd.envs(env_overlay().iter().cloned());
    cmd.args(&argv[1..])
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RunError::NotFound { program: program.clone() },
        _ => RunError::Io { program: program.clone(), source: e },
    })?;
    if let Some(data) = stdin
        && let Some(mut w) = child.stdin.take()
    {
        let data = data.to_vec();
        tokio::spawn(async move {
            let _ = w.write_all(&data).await;
            let _ = w.shutdown().await;
        });
    }
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(RunError::Timeout { program, secs: timeout.as_secs() }),
        Ok(Err(e)) => Err(RunError::Io { program, source: e }),
        Ok(Ok(out)) => Ok(Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

pub fn argv<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}
