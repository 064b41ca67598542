//! Renderers of results: JUnit for CI, and the debrief report of a drill (Markdown, HTML, JSON).

pub mod debrief;
pub mod junit;
