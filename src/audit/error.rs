//! The errors the audit engine reports at its boundary. A malformed line is not an error of the
//! run (it is skipped and counted, see [`crate::audit::read::Malformed`]); these are the failures
//! that stop one: a file that cannot be opened or read, a bad filter, a bad policy file.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: no audit log files in this folder")]
    EmptyFolder { path: PathBuf },
    #[error("{source_name}:{line}: {reason}")]
    Malformed { source_name: String, line: u64, reason: String },
    #[error("bad {what} `{value}`: {expected}")]
    BadArgument { what: &'static str, value: String, expected: String },
    #[error("a worker thread failed: {0}")]
    Worker(String),
}
