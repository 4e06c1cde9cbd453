//! The integration tests, one module per topic, in a single test binary: it
//! links libtorch, polars and plotters once instead of once per file. Run one
//! module with `cargo test --test it <module>::`.
//!
//! The modules share one process and run on parallel threads, so a test that
//! seeds or draws from torch's global random generator, or changes environment
//! variables, holds [`common::serial`].

mod common;

mod build_profile;
mod cas;
mod cgan_recipe;
mod concepts;
mod consistency;
mod copying;
mod cvae_remedies;
mod data_loaders;
mod eval;
mod explorer;
mod flops;
mod fuzz_readers;
mod interruptions;
mod intervals;
mod latent_prior;
mod models;
mod notebook;
mod plots;
mod recognisability;
mod report;
mod robustness;
mod training;
mod vae_anomaly;
mod validation;
