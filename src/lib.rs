//! klab: Kubernetes chaos and incident-response training on local kind clusters.
//!
//! The core (`scenario`, `fault` planning, `check` grading, `session`, `audit`, `report`) takes
//! data in and gives data out; only `cluster` talks to the world (kube-rs, docker, kind). The
//! CLI in `cli` wires them and is the only place that prints.

pub mod audit;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod exit;
pub mod fault;
pub mod gameday;
pub mod report;
pub mod scenario;
pub mod selftest;
pub mod session;
