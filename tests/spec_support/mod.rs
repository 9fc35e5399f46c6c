//! Checks HTTP traffic against the vendors' official specs (issue 13 §3).
//!
//! - [`spec`]: the specs in `tests/fixtures/vendor-specs/` as checks of one exchange (the
//!   `jsonschema` crate validates; the glue around it is ours).
//! - [`recorder`]: a loopback proxy between a client and a simulator that records every exchange.
//! - [`listed`]: the known defects of the specs, the violations waiting for a fix, and
//!   [`listed::assert_conforms`], which fails on anything else.
//!
//! Used by `tests/vendor_specs.rs`; any other test can record its traffic and check it the same
//! way:
//!
//! ```ignore
//! let recorder = Recorder::start(&simulator.uri());
//! let provider = simulator.provider_builder().with_base_url(recorder.uri()).build()?;
//! // ... drive the provider ...
//! assert_conforms(Suite::Flows, Vendor::PagerDuty, &recorder.exchanges(), &[]);
//! ```
#![allow(dead_code, unused_imports)] // each test binary uses part of it

mod convert;
pub mod exchange;
pub mod listed;
pub mod recorder;
pub mod spec;

pub use exchange::{Answer, Exchange};
pub use listed::{assert_conforms, Suite};
pub use recorder::Recorder;
pub use spec::{Rule, Side, Spec, Vendor, Violation};
