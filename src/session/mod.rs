//! Per-lab state on disk: pinned identity, the drill session, the write-ahead journal, the lock.

pub mod journal;
pub mod record;
pub mod state;
