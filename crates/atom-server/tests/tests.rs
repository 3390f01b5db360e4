//! Tests of atom-server over a real socket, one test target.

// A failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod binary;
mod cannot_open;
mod common;
mod disk_full;
mod hostile;
mod identity;
mod observability;
mod outage;
mod shared_trail;
mod tls;
