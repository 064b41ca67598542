//! The injection journal: a write-ahead log of everything klab changes in a lab.
//!
//! For each step, klab first reads what it is about to change and writes an `intent` record
//! holding the step and the data to undo it (fsync'd) — only then does it act, and afterwards
//! it writes `done`. Undo data is captured *before* acting, so a crash, Ctrl-C or `kill -9` at
//! any point leaves a journal from which `klab reset` can restore every change already made.
//! `reset` replays the journal backwards and appends an `undone` record per item, so it is
//! idempotent and can be re-run after its own failure. Only the first change of each target is
//! kept: a later step touching the same thing needs no undo of its own, since restoring the
//! first "before" restores the original.

use super::state::StateError;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::cluster::kube::ObjKey;

/// How to put one thing back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "undo", rename_all = "camelCase")]
pub enum UndoItem {
    /// `before: None` → delete it; else write the original back.
    #[serde(rename_all = "camelCase")]
    Object { key: ObjKey, before: Option<serde_json::Value>, recreate: bool },
    #[serde(rename_all = "camelCase")]
    Sysctl { node: String, key: String, value: String },
    /// A file's bytes (base64) or its absence.
    #[serde(rename_all = "camelCase")]
    File { node: String, path: String, before: Option<String>, mode: Option<String> },
    /// A static pod manifest: restore the bytes, then wait until the pod runs them.
    #[serde(rename_all = "camelCase")]
    StaticPod { node: String, path: String, before: String, process: String, flag: String, was_present: bool },
    #[serde(rename_all = "camelCase")]
    EtcdFiller { node: String, prefix: String },
    #[serde(rename_all = "camelCase")]
    Kubelet { node: String, was_running: bool },
    #[serde(rename_all = "camelCase")]
    Command { node: String, argv: Vec<String> },
}

impl UndoItem {
    /// What this item restores; two items with one target restore the same thing.
    pub fn target(&self) -> String {
        match self {
            UndoItem::Object { key, .. } => format!(
                "object:{}/{}/{}/{}",
                key.api_version,
                key.kind,
                key.namespace.as_deref().unwrap_or(""),
                key.name
            ),
            UndoItem::Sysctl { node, key, .. } => format!("sysctl:{node}:{key}"),
            UndoItem::File { node, path, .. } | UndoItem::StaticPod { node, path, .. } => format!("file:{node}:{path}"),
            UndoItem::EtcdFiller { node, prefix } => format!("etcd:{node}:{prefix}"),
            UndoItem::Kubelet { node, .. } => format!("kubelet:{node}"),
            UndoItem::Command { node, argv } => format!("command:{node}:{}", argv.join("\u{1f}")),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            UndoItem::Object { key, before: None, .. } => format!("delete {key}"),
            UndoItem::Object { key, recreate: false, .. } => format!("leave {key} to its owner"),
            UndoItem::Object { key, .. } => format!("restore {key}"),
            UndoItem::Sysctl { node, key, value } => format!("{node}: sysctl {key}={value}"),
            UndoItem::File { node, path, before: None, .. } => format!("{node}: remove {path}"),
            UndoItem::File { node, path, .. } => format!("{node}: restore {path}"),
            UndoItem::StaticPod { node, path, .. } => format!("{node}: restore {path} and wait for the restart"),
            UndoItem::EtcdFiller { node, prefix } => {
                format!("{node}: delete etcd keys {prefix}*, compact, defragment, disarm alarms")
            }
            UndoItem::Kubelet { node, was_running } => {
                format!("{node}: kubelet {}", if *was_running { "start" } else { "stop" })
            }
            UndoItem::Command { node, argv } => format!("{node}: {}", argv.join(" ")),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "record", rename_all = "camelCase")]
pub enum Record {
    #[serde(rename_all = "camelCase")]
    Intent { seq: u32, phase: String, step: String, kind: String, at: String, undo: Vec<UndoItem> },
    #[serde(rename_all = "camelCase")]
    Done {
        seq: u32,
        at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Failed { seq: u32, at: String, error: String },
    #[serde(rename_all = "camelCase")]
    Undone { seq: u32, item: usize, at: String },
}

pub struct Journal {
    path: PathBuf,
    pub records: Vec<Record>,
}

pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl Journal {
    /// Opens (or starts) the journal; a torn last line (crash mid-write) is ignored.
    pub fn open(path: &Path) -> Result<Journal, StateError> {
        let mut records = Vec::new();
        match File::open(path) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(|e| StateError::Io { path: path.into(), source: e })?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    if let Ok(r) = serde_json::from_str::<Record>(&line) {
                        records.push(r);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StateError::Io { path: path.into(), source: e }),
        }
        Ok(Journal { path: path.to_path_buf(), records })
    }

    /// Appends one record and fsyncs it before returning.
    pub fn append(&mut self, r: Record) -> Result<(), StateError> {
        let err = |e| StateError::Io { path: self.path.clone(), source: e };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut f = OpenOptions::new().create(true).append(true).open(&self.path).map_err(err)?;
        let mut line = serde_json::to_string(&r)
            .map_err(|e| StateError::Corrupt { path: self.path.clone(), message: e.to_string() })?;
        line.push('\n');
        f.write_all(line.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        self.records.push(r);
        Ok(())
    }

    pub fn next_seq(&self) -> u32 {
        self.records.iter().filter(|r| matches!(r, Record::Intent { .. })).count() as u32 + 1
    }

    /// Targets that an earlier, not yet undone, intent already restores.
    pub fn covered_targets(&self) -> std::collections::HashSet<String> {
        let undone = self.undone();
        let mut out = std::collections::HashSet::new();
        for r in &self.records {
            if let Record::Intent { seq, undo, .. } = r {
                for (i, u) in undo.iter().enumerate() {
                    if !undone.contains(&(*seq, i)) {
                        out.insert(u.target());
                    }
                }
            }
        }
        out
    }

    pub fn undone(&self) -> std::collections::HashSet<(u32, usize)> {
        self.records
            .iter()
            .filter_map(|r| if let Record::Undone { seq, item, .. } = r { Some((*seq, *item)) } else { None })
            .collect()
    }

    /// Every (seq, index, item) still to undo, last first.
    pub fn pending_undo(&self) -> Vec<(u32, usize, UndoItem)> {
        let undone = self.undone();
        let mut out = Vec::new();
        for r in self.records.iter().rev() {
            if let Record::Intent { seq, undo, .. } = r {
                for (i, u) in undo.iter().enumerate().rev() {
                    if !undone.contains(&(*seq, i)) {
                        out.push((*seq, i, u.clone()));
                    }
                }
            }
        }
        out
    }

    pub fn is_clean(&self) -> bool {
        self.pending_undo().is_empty()
    }

    /// Moves a fully undone journal aside (kept for the debrief).
    pub fn archive(&self) -> Result<Option<PathBuf>, StateError> {
        if !self.path.exists() {
            return Ok(None);
        }
        let stamp = jiff::Timestamp::now().as_second();
        let to = self.path.with_file_name(format!("journal-{stamp}.jsonl.done"));
        std::fs::rename(&self.path, &to).map_err(|e| StateError::Io { path: self.path.clone(), source: e })?;
        Ok(Some(to))
    }
}

/// A test hook: `KLAB_TEST_CRASH_AT=<seq>:<intent|act|done>` aborts the process right after
/// that point, as `kill -9` would, so tests can prove `reset` recovers from every boundary.
pub fn crash_point(seq: u32, point: &str) {
    if let Ok(v) = std::env::var("KLAB_TEST_CRASH_AT")
        && v == format!("{seq}:{point}")
    {
        std::process::abort();
    }
}
