//! How the store is configured: the database URL, the plaintext
//! transition setting and the pool size, from the environment or code.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::error::CredentialError;
use crate::url::DatabaseUrl;

/// The database URL; unset means [`DatabaseUrl::DEFAULT`] (`sqlite://atom.db`).
pub const ENV_DATABASE_URL: &str = "DATABASE_URL";
/// `1` or `true`: while a key is configured, plaintext rows (from the
/// no-key development mode) are still read, until rewrap has sealed them.
pub const ENV_PLAINTEXT_TRANSITION: &str = "ATOM_CREDENTIALS_PLAINTEXT_TRANSITION";
/// Largest number of pooled database connections (default 10; SQLite 4).
pub const ENV_DB_MAX_CONNECTIONS: &str = "ATOM_DB_MAX_CONNECTIONS";
/// Seconds a request waits for a database connection before it is refused
/// as unavailable (default 5): a database that refuses or does not answer
/// is reported within this time, not after sqlx's 30 s.
pub const ENV_DB_ACQUIRE_TIMEOUT_SECS: &str = "ATOM_DB_ACQUIRE_TIMEOUT_SECS";
/// The default of [`ENV_DB_ACQUIRE_TIMEOUT_SECS`]: within the 1-5 s an
/// orchestrator's probe waits.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Where the users' wrapped data keys live; unset means the credentials
/// database itself (see docs/OPERATIONS.md for the trade-off).
pub const ENV_KEYSTORE_URL: &str = "ATOM_KEYSTORE_URL";
/// `1` or `true`: new values are sealed under their user's data key (the
/// `atom:v2` form) and rewrap upgrades older rows to it; `0` or `false`:
/// they are not; unset: the store's recorded mode, and for a store that
/// holds no credential yet, envelopes (see `crate::mode`). Values of that
/// form are read whatever this says.
pub const ENV_ENVELOPE: &str = "ATOM_ENVELOPE_ENCRYPTION";

/// How a process is configured for envelope encryption, against the mode
/// recorded in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeSetting {
    /// Unset: the recorded mode; a store without one and without
    /// credentials starts in envelope mode, one holding credentials keeps
    /// `atom:v1`.
    Auto,
    /// Envelopes on (turns a recorded `off` on).
    On,
    /// Envelopes off; refused against a store recorded `on`.
    Off,
}

/// The store's settings. Build with [`StoreConfig::new`] or
/// [`StoreConfig::from_env`], then adjust with the `with_` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Where the credentials live.
    pub database_url: DatabaseUrl,
    /// Read plaintext rows although a key is configured (see
    /// [`ENV_PLAINTEXT_TRANSITION`]).
    pub plaintext_transition: bool,
    /// Pool size; `None` picks 10 (4 for SQLite, whose writers serialize).
    pub max_connections: Option<u32>,
    /// How long an operation waits for a connection (connecting included)
    /// before it fails as unavailable (see [`ENV_DB_ACQUIRE_TIMEOUT_SECS`]).
    pub acquire_timeout: Duration,
    /// The key store's database; `None` is the credentials database.
    pub keystore_url: Option<DatabaseUrl>,
    /// Seal new values under per-user data keys (see [`ENV_ENVELOPE`]),
    /// when `envelope_setting` is `None` (a library caller deciding per
    /// process; nothing is recorded or checked).
    pub envelope: bool,
    /// The binaries' and the Python package's setting, resolved against
    /// the mode recorded in the database when the store opens (and
    /// recorded by an open that migrates); `envelope` is then ignored.
    pub envelope_setting: Option<EnvelopeSetting>,
    /// Tests: `PRAGMA max_page_count` of every SQLite connection, read
    /// each time a connection is handed out.
    #[cfg(feature = "test-util")]
    pub sqlite_page_limit: Option<std::sync::Arc<std::sync::atomic::AtomicU32>>,
}

impl StoreConfig {
    /// Settings for `database_url`, with the transition setting off.
    pub fn new(database_url: DatabaseUrl) -> StoreConfig {
        StoreConfig {
            database_url,
            plaintext_transition: false,
            max_connections: None,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            keystore_url: None,
            envelope: false,
            envelope_setting: None,
            #[cfg(feature = "test-util")]
            sqlite_page_limit: None,
        }
    }

    /// Reads [`ENV_DATABASE_URL`], [`ENV_PLAINTEXT_TRANSITION`] and
    /// [`ENV_DB_MAX_CONNECTIONS`] from the process environment.
    pub fn from_env() -> Result<StoreConfig, CredentialError> {
        StoreConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the same variables through `lookup` (an environment).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<StoreConfig, CredentialError> {
        let database_url = match lookup(ENV_DATABASE_URL).filter(|u| !u.trim().is_empty()) {
            Some(text) => DatabaseUrl::parse(&text)
                .map_err(|e| CredentialError::Config(format!("{ENV_DATABASE_URL}: {e}")))?,
            None => DatabaseUrl::default(),
        };
        let plaintext_transition = atom_io::flag_from_env(&lookup, ENV_PLAINTEXT_TRANSITION)
            .map_err(|e| CredentialError::Config(e.to_string()))?;
        let max_connections = match lookup(ENV_DB_MAX_CONNECTIONS) {
            None => None,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(CredentialError::Config(format!(
                        "{ENV_DB_MAX_CONNECTIONS} must be a whole number of connections, at least 1"
                    )));
                }
            },
        };
        let acquire_timeout = match lookup(ENV_DB_ACQUIRE_TIMEOUT_SECS) {
            None => DEFAULT_ACQUIRE_TIMEOUT,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if (1..=300).contains(&n) => Duration::from_secs(n),
                _ => {
                    return Err(CredentialError::Config(format!(
                        "{ENV_DB_ACQUIRE_TIMEOUT_SECS} must be a whole number of seconds from 1 to 300 (default {})",
                        DEFAULT_ACQUIRE_TIMEOUT.as_secs()
                    )));
                }
            },
        };
        let keystore_url = match lookup(ENV_KEYSTORE_URL).filter(|u| !u.trim().is_empty()) {
            Some(text) => Some(
                DatabaseUrl::parse(&text)
                    .map_err(|e| CredentialError::Config(format!("{ENV_KEYSTORE_URL}: {e}")))?,
            ),
            None => None,
        };
        let envelope_setting = match lookup(ENV_ENVELOPE).filter(|v| !v.trim().is_empty()) {
            None => EnvelopeSetting::Auto,
            Some(_) => {
                if atom_io::flag_from_env(&lookup, ENV_ENVELOPE)
                    .map_err(|e| CredentialError::Config(e.to_string()))?
                {
                    EnvelopeSetting::On
                } else {
                    EnvelopeSetting::Off
                }
            }
        };
        Ok(StoreConfig {
            plaintext_transition,
            max_connections,
            acquire_timeout,
            keystore_url,
            envelope: envelope_setting == EnvelopeSetting::On,
            envelope_setting: Some(envelope_setting),
            ..StoreConfig::new(database_url)
        })
    }

    /// The same settings with the plaintext transition on or off.
    pub fn with_plaintext_transition(mut self, on: bool) -> StoreConfig {
        self.plaintext_transition = on;
        self
    }

    /// The same settings with the key store in another database.
    pub fn with_keystore(mut self, url: DatabaseUrl) -> StoreConfig {
        self.keystore_url = Some(url);
        self
    }

    /// The same settings with envelope encryption on or off, decided by
    /// the caller (nothing recorded or checked).
    pub fn with_envelope(mut self, on: bool) -> StoreConfig {
        self.envelope = on;
        self.envelope_setting = None;
        self
    }

    /// The same settings with the envelope mode resolved against the
    /// store's recorded mode (see [`EnvelopeSetting`]).
    pub fn with_envelope_setting(mut self, setting: EnvelopeSetting) -> StoreConfig {
        self.envelope_setting = Some(setting);
        self
    }

    /// The same settings with another wait for a connection.
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> StoreConfig {
        self.acquire_timeout = timeout;
        self
    }

    /// The same settings with another pool size.
    pub fn with_max_connections(mut self, n: NonZeroU32) -> StoreConfig {
        self.max_connections = Some(n.get());
        self
    }

    /// Tests: every SQLite connection gets `PRAGMA max_page_count = limit`
    /// when it opens and whenever it is handed out, so a test can make the
    /// database full (SQLITE_FULL) and give it room again without root.
    #[cfg(feature = "test-util")]
    pub fn with_sqlite_page_limit(
        mut self,
        limit: std::sync::Arc<std::sync::atomic::AtomicU32>,
    ) -> StoreConfig {
        self.sqlite_page_limit = Some(limit);
        self
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_to_sqlite_atom_db() {
        let c = StoreConfig::from_lookup(env(&[])).unwrap();
        assert_eq!(c.database_url, DatabaseUrl::default());
        assert!(!c.plaintext_transition);
        assert_eq!(c.max_connections, None);
    }

    #[test]
    fn reads_the_variables() {
        let c = StoreConfig::from_lookup(env(&[
            (ENV_DATABASE_URL, "postgres://u:pw@h/db"),
            (ENV_PLAINTEXT_TRANSITION, "1"),
            (ENV_DB_MAX_CONNECTIONS, "3"),
            (ENV_DB_ACQUIRE_TIMEOUT_SECS, "2"),
            (ENV_KEYSTORE_URL, "sqlite:///var/lib/atom/keys.db"),
            (ENV_ENVELOPE, "1"),
        ]))
        .unwrap();
        assert!(c.envelope);
        assert_eq!(c.envelope_setting, Some(EnvelopeSetting::On));
        let unset = StoreConfig::from_lookup(env(&[])).unwrap();
        assert_eq!(unset.envelope_setting, Some(EnvelopeSetting::Auto));
        assert_eq!(
            c.keystore_url.as_ref().map(DatabaseUrl::backend),
            Some(crate::url::Backend::Sqlite)
        );
        assert_eq!(c.database_url.backend(), crate::url::Backend::Postgres);
        assert!(c.plaintext_transition);
        assert_eq!(c.max_connections, Some(3));
        assert_eq!(c.acquire_timeout, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_are_errors_that_name_the_variable() {
        for (k, v) in [
            (ENV_DATABASE_URL, "ftp://u:hunter2@h"),
            (ENV_PLAINTEXT_TRANSITION, "yes"),
            (ENV_DB_MAX_CONNECTIONS, "0"),
            (ENV_DB_ACQUIRE_TIMEOUT_SECS, "0"),
            (ENV_DB_ACQUIRE_TIMEOUT_SECS, "soon"),
            (ENV_KEYSTORE_URL, "ftp://u:hunter2@h"),
            (ENV_ENVELOPE, "maybe"),
        ] {
            let err = StoreConfig::from_lookup(env(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(k), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
