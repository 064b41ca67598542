//! Renderers of results: JUnit for CI (Markdown/HTML debriefs come with game days).

pub mod junit;
