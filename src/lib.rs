//! The predictive-scaler application: command-line entry points, configuration,
//! the HTTP API and the wiring of the actors to the chosen backend.
//!
//! `main.rs` parses the command line; [`serve`] and [`demo`] run the actor
//! tree; [`backtest`] and [`simulate`] write the evaluation protocol's formats;
//! [`api`] serves the read models.

pub mod api;
pub mod backend;
pub mod backtest;
pub mod bench;
pub mod bench_runtime;
pub mod cache;
pub mod config;
pub mod demo;
pub mod explain;
pub mod serve;
pub mod services;
pub mod simulate;
pub mod telemetry;
#[cfg(feature = "ml")]
pub mod train;
