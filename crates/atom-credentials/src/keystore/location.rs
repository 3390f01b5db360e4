//! Where the key store lives, recorded in the credentials database
//! (`atom_store_settings`), so that a process configured without
//! `ATOM_KEYSTORE_URL` (or with another one) is told which setting it
//! needs, instead of finding no data keys. The record is a fingerprint of
//! the key store's database and its location without user or password:
//! never a credential.
//!
//! A process that migrates records the location on first use. Later, a
//! process configured otherwise is refused while any credential is
//! enveloped (its data key is in the recorded key store); with none, the
//! key store may still move, and a migrating process records the new one.

use sea_orm::{ConnectionTrait, DbBackend};
use sha2::Digest as _;

use crate::config::{ENV_KEYSTORE_URL, StoreConfig};
use crate::error::CredentialError;
use crate::sql::statement;
use crate::url::{Backend, DatabaseUrl};

/// The table of the store's recorded settings.
pub(crate) const SETTINGS_TABLE: &str = "atom_store_settings";
/// The key store's fingerprint: `here` (the credentials database) or 16
/// hex digits of SHA-256 of its location.
const KEYSTORE: &str = "keystore";
/// The key store's location, for messages.
const KEYSTORE_SHOWN: &str = "keystore_location";
/// The fingerprint of a key store kept in the credentials database.
const HERE: &str = "here";

/// Where a configuration puts the key store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    fingerprint: String,
    shown: String,
}

impl Location {
    /// The key store of `config`: its own database, or the credentials one.
    pub(crate) fn of(config: &StoreConfig) -> Location {
        match &config.keystore_url {
            None => Location {
                fingerprint: HERE.to_owned(),
                shown: "the credential database itself".to_owned(),
            },
            Some(url) => {
                let shown = place(url);
                let digest = sha2::Sha256::digest(shown.as_bytes());
                Location {
                    fingerprint: atom_io::hex(&digest[..8]),
                    shown,
                }
            }
        }
    }
}

/// A database's place without credentials: the scheme, host, port and
/// database of a server; the absolute path of an SQLite file.
fn place(url: &DatabaseUrl) -> String {
    match url.backend() {
        Backend::Sqlite => match url.sqlite_file() {
            Some(file) => {
                let file = std::path::absolute(&file).unwrap_or(file);
                format!("sqlite://{}", file.display())
            }
            None => "sqlite::memory:".to_owned(),
        },
        backend => {
            let (scheme, default_port) = match backend {
                Backend::Postgres => ("postgres", 5432),
                _ => ("mysql", 3306),
            };
            match ::url::Url::parse(url.expose()) {
                Ok(parsed) => format!(
                    "{scheme}://{}:{}{}",
                    parsed.host_str().unwrap_or_default().to_ascii_lowercase(),
                    parsed.port().unwrap_or(default_port),
                    parsed.path()
                ),
                Err(_) => format!("{scheme}://?"),
            }
        }
    }
}

/// The recorded location, if any.
async fn recorded(conn: &impl ConnectionTrait) -> Result<Option<Location>, CredentialError> {
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(statement(
            backend,
            &format!("SELECT name, value FROM {SETTINGS_TABLE} WHERE name IN (?, ?)"),
            vec![KEYSTORE.into(), KEYSTORE_SHOWN.into()],
        ))
        .await?;
    let (mut fingerprint, mut shown) = (None, None);
    for row in rows {
        let name: String = row.try_get("", "name")?;
        let value: String = row.try_get("", "value")?;
        match name.as_str() {
            KEYSTORE => fingerprint = Some(value),
            _ => shown = Some(value),
        }
    }
    Ok(fingerprint.map(|fingerprint| Location {
        fingerprint,
        shown: shown.unwrap_or_default(),
    }))
}

/// Whether any credential is sealed under a data key.
async fn any_enveloped(conn: &impl ConnectionTrait) -> Result<bool, CredentialError> {
    let row = conn
        .query_one_raw(statement(
            conn.get_database_backend(),
            "SELECT 1 AS one FROM user_credentials WHERE data_key_id IS NOT NULL LIMIT 1",
            vec![],
        ))
        .await?;
    Ok(row.is_some())
}

/// Checks that `config` puts the key store where the credentials database
/// says it is; with `may_record` (a migrating open), records the location
/// when none is recorded or nothing enveloped depends on the old one.
pub(crate) async fn check(
    conn: &impl ConnectionTrait,
    config: &StoreConfig,
    may_record: bool,
) -> Result<(), CredentialError> {
    let ours = Location::of(config);
    let theirs = recorded(conn).await?;
    match &theirs {
        Some(theirs) if *theirs.fingerprint == ours.fingerprint => return Ok(()),
        Some(theirs) if any_enveloped(conn).await? => {
            return Err(CredentialError::Config(mismatch(theirs, &ours, config)));
        }
        _ => {}
    }
    if may_record {
        write(conn, &ours, theirs.is_some()).await?;
    }
    Ok(())
}

fn mismatch(theirs: &Location, ours: &Location, config: &StoreConfig) -> String {
    match (&config.keystore_url, theirs.fingerprint == HERE) {
        (None, _) => format!(
            "the users' data keys of this credential database are kept in another database ({}), and {ENV_KEYSTORE_URL} is not set; set {ENV_KEYSTORE_URL} to that database (with its password), or its enveloped credentials cannot be opened",
            theirs.shown
        ),
        (Some(_), true) => format!(
            "the users' data keys of this credential database are kept in the credential database itself, but {ENV_KEYSTORE_URL} names {}; unset {ENV_KEYSTORE_URL}",
            ours.shown
        ),
        (Some(_), false) => format!(
            "the users' data keys of this credential database are kept in {}, but {ENV_KEYSTORE_URL} names {}; set {ENV_KEYSTORE_URL} to the former",
            theirs.shown, ours.shown
        ),
    }
}

/// Writes one row of the store's settings table: `replace` overwrites it,
/// otherwise an existing row stands (two first starts at once: the first
/// one's record stands).
pub(crate) async fn write_setting(
    conn: &impl ConnectionTrait,
    name: &str,
    value: &str,
    replace: bool,
) -> Result<(), CredentialError> {
    let backend = conn.get_database_backend();
    let sql = match (replace, backend) {
        (true, _) => format!("UPDATE {SETTINGS_TABLE} SET value = ? WHERE name = ?"),
        (false, DbBackend::MySql) => {
            format!("INSERT IGNORE INTO {SETTINGS_TABLE} (value, name) VALUES (?, ?)")
        }
        (false, _) => format!(
            "INSERT INTO {SETTINGS_TABLE} (value, name) VALUES (?, ?) ON CONFLICT DO NOTHING"
        ),
    };
    conn.execute_raw(statement(backend, &sql, vec![value.into(), name.into()]))
        .await?;
    Ok(())
}

async fn write(
    conn: &impl ConnectionTrait,
    location: &Location,
    replace: bool,
) -> Result<(), CredentialError> {
    for (name, value) in [
        (KEYSTORE, &location.fingerprint),
        (KEYSTORE_SHOWN, &location.shown),
    ] {
        write_setting(conn, name, value, replace).await?;
    }
    tracing::debug!(keystore = %location.shown, "key store location recorded");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_location_holds_no_credentials_and_names_the_same_place_alike() {
        let a = DatabaseUrl::parse("postgres://atom:hunter2@DB.example/keys").unwrap();
        let b = DatabaseUrl::parse("postgresql://other:pw@db.example:5432/keys").unwrap();
        let ca = StoreConfig::new(DatabaseUrl::default()).with_keystore(a);
        let cb = StoreConfig::new(DatabaseUrl::default()).with_keystore(b);
        let (la, lb) = (Location::of(&ca), Location::of(&cb));
        assert_eq!(la, lb);
        assert_eq!(la.shown, "postgres://db.example:5432/keys");
        assert!(!format!("{la:?}").contains("hunter2"));
        assert_eq!(la.fingerprint.len(), 16);
        let here = Location::of(&StoreConfig::new(DatabaseUrl::default()));
        assert_eq!(here.fingerprint, HERE);
        let other = DatabaseUrl::parse("mysql://u@db.example/keys").unwrap();
        let lo = Location::of(&StoreConfig::new(DatabaseUrl::default()).with_keystore(other));
        assert_ne!(lo, la);
    }
}
