//! # oncall-sync
//!
//! Keeps on-call rotas planned in a host application in step with PagerDuty and Opsgenie.
//!
//! This crate is a facade: [`core`] is the sans-IO model, planner and sync driver; the adapters are
//! [`opsgenie`] and [`pagerduty`] (features of the same names, on by default). See `README.md` and
//! `ARCHITECTURE.md` for the map. The Jira Service Management Operations adapter, Opsgenie's
//! successor, is `jsm` (feature `jsm`, on by default); [`migrate`] moves a destination to it.
//!
//! It also holds what the `oncall` CLI (`examples/oncall.rs`) runs on, for hosts to reuse:
//! [`config`], the CLI's JSON config (connections, one schedule, destinations; a provider per
//! connection; [`config::Config::probe`], `oncall probe`), [`FileStateStore`], destination state
//! in one JSON file with compare-and-swap across processes, and [`trace_file::JsonLinesTrace`],
//! the HTTP trace of `oncall --trace-http`, keys and e-mail addresses redacted.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use oncall_core as core;
pub use oncall_core::*;
#[cfg(feature = "jsm")]
pub use oncall_jsm as jsm;
#[cfg(feature = "opsgenie")]
pub use oncall_opsgenie as opsgenie;
#[cfg(feature = "pagerduty")]
pub use oncall_pagerduty as pagerduty;
pub mod config;
pub mod file_store;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod trace_file;
#[cfg(feature = "postgres")]
pub mod worker;

pub use file_store::FileStateStore;

/// The README's code blocks, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
