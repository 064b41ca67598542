//! klab's test harness, one crate so that it is compiled once rather than into every test
//! binary. The integration tests (`tests/*.rs`) and the benchmark use it as `support`:
//! `use klab_testkit as support;`, and `use klab_testkit::lab_env;` for the lab harness.
//!
//! - [`fake_apiserver`]: an in-process API server that speaks real Kubernetes HTTP, with an
//!   opt-in model of a kind cluster (`cluster_model.rs`);
//! - [`lab_env`]: the lab end-to-end harness, on the fake or the real API server;
//! - [`browser`]: headless chromium for the reports.

pub mod browser;
pub mod fake_apiserver;
pub mod lab_env;

pub use fake_apiserver::{FakeApiServer, strip_server_fields};

use std::path::{Path, PathBuf};

/// The repository's root (fixtures, the fake `docker`/`kind`, the checks).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit/ sits in the repository")
}

/// The `klab` binary that cargo built for this test run. An integration test runs from
/// `target/<profile>/deps/`; cargo puts the package's binaries one folder up and builds them
/// before it runs the integration tests.
pub fn klab_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's own path");
    let dir = exe.parent().and_then(Path::parent).expect("a test binary in target/<profile>/deps");
    let bin = dir.join(format!("klab{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} is missing: run the tests with `cargo test`, which builds it", bin.display());
    bin
}
