//! Rebuilds klab when a file of the embedded catalog is added, changed or removed:
//! `include_dir!` embeds `scenarios/`, `checks/` and `templates/` but cannot tell cargo to watch
//! them for new files (before this, a new scenario needed a `touch src/scenario/catalog.rs`).
fn main() {
    for dir in ["scenarios", "checks", "templates", "build.rs"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
