//! The checker: evaluate checks with evidence, grade diagnoses, score attempts.

pub mod engine;
pub mod matcher;
