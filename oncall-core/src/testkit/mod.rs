//! Test support shipped with the core (feature `testkit`): an in-memory [`Provider`](crate::Provider)
//! with fault injection, the [`VendorSimulator`] trait every vendor simulator implements, the
//! conformance suite every provider must pass, and the one every [`StateStore`](crate::StateStore)
//! must pass.

pub mod conformance;
mod memory;
mod overlaps;
mod simulator;
pub mod store_conformance;
mod throttle;

pub use memory::{Call, CallKind, InMemoryProvider};
pub use overlaps::{resolve_overlaps, Layered};
pub use simulator::{Fault, Trigger, VendorSimulator};
pub use throttle::{Admission, OverLimit, RateLimit, Throttle};
