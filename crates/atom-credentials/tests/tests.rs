//! Integration tests of atom-credentials (one target; see the modules).
#![allow(clippy::unwrap_used, clippy::expect_used)]
