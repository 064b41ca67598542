//! The checker: evaluate checks with evidence, grade diagnoses, score attempts, and say who
//! fixed each cause.

pub mod attribution;
pub mod diagnosis;
pub mod engine;
pub mod matcher;
pub mod score;
