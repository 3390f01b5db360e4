//! Integration tests of the rotation engine and the key files, in one target.
//!
//! Every rotation test body runs on SQLite always, and on PostgreSQL and
//! MariaDB when `ATOM_TEST_POSTGRES_URL` / `ATOM_TEST_MYSQL_URL` are set
//! (otherwise they print SKIPPED and pass).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;
mod concurrent;
mod plan;
mod rotate;
