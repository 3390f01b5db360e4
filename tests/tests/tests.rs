//! Cross-crate scenarios, one test target.

// A failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod legacy_world;
mod library_messages;
