//! Exit codes, in one place (documented in `klab --help` and docs/cli.md).

/// Everything asked for was done, and every check passed.
pub const OK: i32 = 0;
/// The command ran but the answer is "no": lint errors, failing checks, a failed selftest.
pub const FAILED: i32 = 1;
/// The command line was wrong (clap's own code).
pub const USAGE: i32 = 2;
/// A prerequisite is missing: docker, kind or kubectl, or no lab/session where one is needed.
pub const NOT_READY: i32 = 3;
/// The guard refused: the cluster is not a klab training lab (see `--i-know-context`).
pub const REFUSED: i32 = 4;
/// The cluster or a node could not be reached or did not do what was asked.
pub const CLUSTER: i32 = 5;
/// Another klab process holds the lab's lock.
pub const BUSY: i32 = 6;
/// Interrupted (Ctrl-C); whatever was injected is in the journal and `klab reset` undoes it.
pub const INTERRUPTED: i32 = 130;

pub const HELP_TEXT: &str = "Exit codes: 0 ok · 1 failed (lint errors, failing checks) · 2 usage · \
3 not ready (missing tool, no lab or session) · 4 refused (not a klab lab) · 5 cluster error · \
6 lab busy · 130 interrupted";
