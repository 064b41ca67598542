//! Scenarios and checks as data: the model, loading with exact error places, linting, and the
//! rendered plan. Nothing in here talks to a cluster.

pub mod catalog;
pub mod diag;
pub mod duration;
pub mod kinds;
pub mod lint;
pub mod model;
pub mod plan;
pub mod summary;
pub mod template;
pub mod version;
pub mod yaml;
