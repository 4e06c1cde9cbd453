//! The sections of REPORT.md, one file each, in the order they appear.

pub mod beyond;
pub mod intro;
pub mod k49_study;
pub mod priors;
pub mod remedies;
pub mod sign_study;
pub mod tables;
pub mod tradeoff;
pub mod trust;
pub mod vae;
