//! Integration tests of atom-audit: one test target, one module per theme.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod chain;
mod concurrency;
mod crash;
mod events;
mod fail_closed;
mod file_sink;
mod key_config;
mod no_secrets;
mod records;
