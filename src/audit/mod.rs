//! Kubernetes audit logs made useful: read them (plain, gzip, rotated sets, stdin) as a stream,
//! summarise who did what, put the writes on a timeline, answer "did U do V on R", and lint audit
//! policies for the known gotchas.
//!
//! This module takes bytes in and gives values out. It must never print, never import `cli`, and
//! never hold a whole log in memory: logs are read in blocks and folded into small aggregates.

pub mod error;
pub mod event;
pub mod filter;
pub mod generate;
pub mod lint;
pub mod policy;
pub mod query;
pub mod read;
pub mod redact;
pub mod scan;
pub mod summary;
pub mod time;
pub mod timeline;

pub use error::AuditError;
pub use event::Event;
pub use filter::Filter;
pub use query::{Answer, Question};
pub use read::{Malformed, ReadStats, events};
pub use summary::{Key, Summary, summarize};
pub use timeline::{Timeline, timeline};
