//! Test support shipped with the core (feature `testkit`): an in-memory [`Provider`](crate::Provider)
//! with fault injection, and the conformance suite every provider must pass.

pub mod conformance;
mod memory;

pub use memory::{Call, CallKind, Fault, InMemoryProvider, Trigger};
