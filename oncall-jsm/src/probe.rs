//! [`Probe`] for JSM Operations (placeholder while the simulator is written).
