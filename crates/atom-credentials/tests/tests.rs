//! Integration tests of atom-credentials, in one target.
//!
//! The store's test bodies (store.rs, rotation.rs, concurrency.rs,
//! adoption.rs, failed_commit.rs) are modules of each backend's module, as
//! rustls runs its API tests once per provider: SQLite always, PostgreSQL and MariaDB when
//! `ATOM_TEST_POSTGRES_URL` / `ATOM_TEST_MYSQL_URL` are set (otherwise those
//! tests print SKIPPED and pass).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Deliberate: the same test bodies are modules of each backend.
#![allow(clippy::duplicate_mod)]

#[macro_use]
mod common;
mod python_legacy;

#[path = "."]
mod sqlite {
    const KIND: crate::common::Kind = crate::common::Kind::Sqlite;
    #[path = "adoption.rs"]
    mod adoption;
    #[path = "audit_table.rs"]
    mod audit_table;
    #[path = "concurrency.rs"]
    mod concurrency;
    #[path = "envelope.rs"]
    mod envelope;
    #[path = "failed_commit.rs"]
    mod failed_commit;
    #[path = "rotation.rs"]
    mod rotation;
    #[path = "store.rs"]
    mod store;
}

#[path = "."]
mod postgres {
    const KIND: crate::common::Kind = crate::common::Kind::Postgres;
    #[path = "adoption.rs"]
    mod adoption;
    #[path = "audit_table.rs"]
    mod audit_table;
    #[path = "concurrency.rs"]
    mod concurrency;
    #[path = "envelope.rs"]
    mod envelope;
    #[path = "failed_commit.rs"]
    mod failed_commit;
    #[path = "rotation.rs"]
    mod rotation;
    #[path = "store.rs"]
    mod store;
}

#[path = "."]
mod mariadb {
    const KIND: crate::common::Kind = crate::common::Kind::MySql;
    #[path = "adoption.rs"]
    mod adoption;
    #[path = "audit_table.rs"]
    mod audit_table;
    #[path = "concurrency.rs"]
    mod concurrency;
    #[path = "envelope.rs"]
    mod envelope;
    #[path = "failed_commit.rs"]
    mod failed_commit;
    #[path = "rotation.rs"]
    mod rotation;
    #[path = "store.rs"]
    mod store;
}
