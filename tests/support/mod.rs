//! Shared helpers for integration tests. Use from a test file with `mod support;`.
//!
//! Not every test uses every helper, hence the blanket allows.
#![allow(dead_code, unused_imports)]

pub mod browser;
pub mod fake_apiserver;

pub use fake_apiserver::{FakeApiServer, strip_server_fields};
