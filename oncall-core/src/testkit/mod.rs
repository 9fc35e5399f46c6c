//! Test support shipped with the core (feature `testkit`): an in-memory [`Provider`](crate::Provider)
//! with fault injection, the [`VendorSimulator`] trait every vendor simulator implements, and the
//! conformance suite every provider must pass.

pub mod conformance;
mod memory;
mod simulator;

pub use memory::{Call, CallKind, InMemoryProvider};
pub use simulator::{Fault, Trigger, VendorSimulator};
