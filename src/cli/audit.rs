//! `klab audit …` (being built: see issue "Audit logs made useful").

use super::args::Global;
use super::{Failure, Outcome};
use crate::exit;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Counts grouped by user, verb, resource, … (not yet built).
    Summary,
}

pub fn run(_g: &Global, _c: AuditCommand) -> Outcome {
    Err(Failure::new(exit::FAILED, "klab audit is not built yet"))
}
