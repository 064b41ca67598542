//! The world outside: processes (docker, kind, kubectl), the Kubernetes API through kube-rs, and
//! node access. Everything else in klab reaches a cluster only through this module, and every
//! call made here has a timeout.

pub mod conn;
pub mod doctor;
pub mod kube;
pub mod lab;
pub mod node;
pub mod nodeops;
pub mod process;
