//! Integration tests of atom-credentials, in one target.
//!
//! The store's test bodies (store.rs, rotation.rs, concurrency.rs,
//! adoption.rs) are included once per backend, as rustls runs its API tests
//! once per provider: SQLite always, PostgreSQL and MariaDB when
//! `ATOM_TEST_POSTGRES_URL` / `ATOM_TEST_MYSQL_URL` are set (otherwise those
//! tests print SKIPPED and pass).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;
mod python_legacy;

mod sqlite {
    const KIND: crate::common::Kind = crate::common::Kind::Sqlite;
    include!("store.rs");
    include!("rotation.rs");
    include!("concurrency.rs");
    include!("adoption.rs");
}

mod postgres {
    const KIND: crate::common::Kind = crate::common::Kind::Postgres;
    include!("store.rs");
    include!("rotation.rs");
    include!("concurrency.rs");
    include!("adoption.rs");
}

mod mariadb {
    const KIND: crate::common::Kind = crate::common::Kind::MySql;
    include!("store.rs");
    include!("rotation.rs");
    include!("concurrency.rs");
    include!("adoption.rs");
}
