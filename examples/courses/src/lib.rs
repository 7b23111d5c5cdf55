//! Course subscriptions, the DCB reference case: every command, view and automation is a
//! slice in `src/slices/`, found at start by the app runtime.

pub mod events;
pub mod slices;
