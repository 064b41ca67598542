//! Where klab keeps what it must not forget: per lab, its pinned identity, the session of the
//! current drill, and the injection journal. Writes are atomic (temp file, fsync, rename); a
//! lock file stops two klab processes from acting on one lab at once.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use the state folder {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is damaged ({message}); move it away to start over")]
    Corrupt { path: PathBuf, message: String },
    #[error("another klab process is working on lab `{0}` (lock held); wait for it or stop it")]
    Busy(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

/// `KLAB_STATE_DIR`, else `$XDG_STATE_HOME/klab`, else `~/.local/state/klab`.
pub fn state_root(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("KLAB_STATE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(p).join("klab");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/klab")
}

/// One lab's folder.
#[derive(Clone, Debug)]
pub struct LabDir {
    pub root: PathBuf,
}

impl LabDir {
    pub fn new(state_root: &Path, lab: &str) -> LabDir {
        LabDir { root: state_root.join("labs").join(lab) }
    }
    pub fn ensure(&self) -> Result<(), StateError> {
        fs::create_dir_all(&self.root).map_err(io(&self.root))
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    pub fn lab_file(&self) -> PathBuf {
        self.path("lab.json")
    }
    pub fn session_file(&self) -> PathBuf {
        self.path("session.json")
    }
    pub fn journal_file(&self) -> PathBuf {
        self.path("journal.jsonl")
    }
}

/// Writes `value` as JSON atomically: a crash leaves either the old or the new file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("state")));
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| StateError::Corrupt { path: path.into(), message: e.to_string() })?;
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&text).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt { path: path.into(), message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::Io { path: path.into(), source: e }),
    }
}

/// An exclusive lock on a lab, held for the life of the value.
pub struct LabLock {
    _lock: fd_lock::RwLockWriteGuard<'static, File>,
}

impl LabLock {
    pub fn acquire(dir: &LabDir, lab: &str) -> Result<LabLock, StateError> {
        dir.ensure()?;
        let path = dir.path("lock");
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
        // The lock lives as long as the process needs it; leaking one small box per command is fine.
        let lock: &'static mut fd_lock::RwLock<File> = Box::leak(Box::new(fd_lock::RwLock::new(f)));
        match lock.try_write() {
            Ok(g) => Ok(LabLock { _lock: g }),
            Err(_) => Err(StateError::Busy(lab.to_string())),
        }
    }
}

/// What klab pinned about a lab when it created it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LabRecord {
    pub name: String,
    pub context: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// UID of the kube-system namespace: the cluster's identity.
    pub cluster_uid: String,
    pub nodes: u8,
    pub created_at: String,
    /// Set when the lab was adopted with an explicit override instead of created by klab.
    #[serde(default)]
    pub adopted: bool,
}
