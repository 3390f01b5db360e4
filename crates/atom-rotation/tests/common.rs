//! The test harness: a fixture with key files, a secrets file and a
//! credential table holding current, older-key, legacy and plaintext
//! values, on a fresh database per test.
//!
//! The databases are `atom_credentials::test_util::TestDb`: SQLite always,
//! PostgreSQL and MariaDB when `.ci/run`'s variables name their servers,
//! otherwise a printed SKIPPED notice.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use atom_audit::{Auditor, MemorySink};
use atom_credentials::{CredentialStore, DatabaseUrl, Provider, StoreConfig, UserId};
use atom_crypto::{
    Context, ENV_KEY_FILE, ENV_PREVIOUS_KEYS_FILE, ExposeSecret, Key, Keyring, Protection,
};
use atom_rotation::{KeyFiles, Keys, RotateOptions};
use atom_secrets_file::{SecretValue, SecretsDir};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

pub(crate) use atom_credentials::Backend as Kind;
pub(crate) use atom_credentials::test_util::{TestDb, random_u64};

/// One test's world: key files (old primary, an older decrypt-only key),
/// a secrets file and a credential table with values of every kind.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) db: TestDb,
    pub(crate) files: KeyFiles,
    pub(crate) secrets_dir: PathBuf,
    pub(crate) old: Key,
    pub(crate) older: Key,
    /// Secret name -> value (string values only).
    pub(crate) secrets: BTreeMap<String, String>,
    /// (user, provider) -> token.
    pub(crate) credentials: BTreeMap<(String, String), String>,
    /// The audit chain's key, for runs of the binary.
    audit: Key,
}

pub(crate) const PROVIDER: &str = "github";

impl Fixture {
    /// A fixture with `rows` current credentials plus a few older-key,
    /// legacy and plaintext rows. `None` when the backend is not configured.
    pub(crate) async fn new(kind: Kind, test: &str, rows: usize) -> Option<Fixture> {
        let db = TestDb::new(kind, test).await?;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let secrets_dir = dir.path().join("secrets");
        std::fs::create_dir(&secrets_dir).unwrap();
        let files = KeyFiles::new(keys.join("encryption.key"), keys.join("previous.keys"));
        let old = Key::generate().unwrap();
        let older = Key::generate().unwrap();
        std::fs::write(&files.primary, format!("{}\n", &*old.expose_base64())).unwrap();
        std::fs::write(
            &files.previous,
            format!("# keys that still decrypt\n{}\n", &*older.expose_base64()),
        )
        .unwrap();
        let keyring = Keyring::new(old.clone(), [older.clone()]).unwrap();
        let older_ring = Keyring::new(older.clone(), []).unwrap();

        // secrets.enc: current, older-key, legacy, plaintext and non-string.
        let mut secrets = BTreeMap::new();
        let mut json = serde_json::Map::new();
        for (name, value, form) in [
            ("API_TOKEN", "sk-current-1", "current"),
            ("DB_PASSWORD", "hunter2-older", "older"),
            ("LEGACY_TOKEN", "legacy-fernet-value", "legacy"),
            ("PLAIN_VALUE", "plain text value", "plain"),
        ] {
            let stored = match form {
                "current" => keyring.seal(&Context::secret(name), value).into_string(),
                "older" => older_ring.seal(&Context::secret(name), value).into_string(),
                "legacy" => keyring.seal_legacy(value).into_string(),
                _ => value.to_owned(),
            };
            json.insert(name.to_owned(), serde_json::Value::String(stored));
            secrets.insert(name.to_owned(), value.to_owned());
        }
        json.insert("PORT".to_owned(), serde_json::json!(8080));
        std::fs::write(
            secrets_dir.join("secrets.enc"),
            serde_json::to_vec_pretty(&serde_json::Value::Object(json)).unwrap(),
        )
        .unwrap();

        // Credentials: current rows through the store, the rest raw.
        let store = store(&db.url, keyring.clone()).await;
        let mut credentials = BTreeMap::new();
        for i in 0..rows {
            let (user, token) = (format!("user_{i}"), format!("tok-{i}-{:x}", random_u64()));
            store
                .put(
                    &UserId::parse(&user).unwrap(),
                    &Provider::parse(PROVIDER).unwrap(),
                    &token.clone().into(),
                )
                .await
                .unwrap();
            credentials.insert((user, PROVIDER.to_owned()), token);
        }
        store.close().await.unwrap();
        let conn = db.connect().await;
        for i in 0..5 {
            let user = format!("legacy_{i}");
            let token = format!("legacy-token-{i}");
            insert_raw(
                &conn,
                &user,
                PROVIDER,
                &keyring.seal_legacy(&token).into_string(),
                None,
            )
            .await;
            credentials.insert((user, PROVIDER.to_owned()), token);
            let user = format!("plain_{i}");
            let token = format!("plain-token-{i}");
            insert_raw(&conn, &user, PROVIDER, &token, None).await;
            credentials.insert((user, PROVIDER.to_owned()), token);
            let user = format!("older_{i}");
            let token = format!("older-token-{i}");
            let sealed = older_ring.seal(&Context::credential(&user, PROVIDER), &token);
            insert_raw(
                &conn,
                &user,
                PROVIDER,
                sealed.as_str(),
                Some(older.id().to_string()),
            )
            .await;
            credentials.insert((user, PROVIDER.to_owned()), token);
        }
        conn.close().await.unwrap();
        Some(Fixture {
            dir,
            db,
            files,
            secrets_dir,
            old,
            older,
            secrets,
            credentials,
            audit: Key::generate().unwrap(),
        })
    }

    /// The audit key (`ATOM_AUDIT_KEY`) for runs of the binary.
    #[allow(dead_code)] // used by the binary's tests, which share this file
    pub(crate) fn audit_key(&self) -> String {
        self.audit.expose_base64().to_string()
    }

    /// Rotation options for this fixture, with `--yes`.
    #[allow(dead_code)] // the binary's tests, which share this file, pass flags
    pub(crate) fn options(&self) -> RotateOptions {
        let mut o = RotateOptions::new(Keys::Files(self.files.clone()));
        o.secrets_dir = Some(self.secrets_dir.clone());
        o.database_url = Some(self.db.url.clone());
        o.workers = NonZeroU32::new(2).unwrap();
        o.batch_size = NonZeroU32::new(7).unwrap();
        // The fixture holds plaintext values on purpose.
        o.seal_plaintext = true;
        o.yes = true;
        o
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.files.dir().join(atom_rotation::STATE_FILE)
    }

    /// The keyring the key files configure, read as an app reads it.
    pub(crate) fn keyring_from_files(&self) -> Keyring {
        keyring_from_files(&self.files).unwrap()
    }

    /// Every value equals what was stored, and every one is sealed under
    /// `new` alone (legacy, plaintext and older-key values upgraded).
    pub(crate) async fn assert_all_under(&self, new: &Key) {
        let only_new = Keyring::new(new.clone(), []).unwrap();
        let dir = SecretsDir::new(&self.secrets_dir);
        for (name, value) in &self.secrets {
            match dir.get(&only_new, name).unwrap() {
                SecretValue::Secret(s) => assert_eq!(s.expose_secret(), value, "{name}"),
                _ => panic!("{name} is not a secret"),
            }
        }
        let status = dir.status(Some(&only_new)).unwrap();
        assert_eq!(atom_crypto::KeyCount::ids(&status.by_key), vec![new.id()]);
        assert_eq!(
            (
                status.legacy_secrets,
                status.plaintext_secrets,
                status.other_values
            ),
            (0, 0, 1)
        );

        let store = store(&self.db.url, only_new).await;
        for ((user, provider), token) in &self.credentials {
            let got = store
                .get(
                    &UserId::parse(user).unwrap(),
                    &Provider::parse(provider).unwrap(),
                )
                .await
                .unwrap_or_else(|e| panic!("{user}: {e}"));
            assert_eq!(got.expose_secret(), token, "{user}");
        }
        let status = store.status().await.unwrap();
        assert_eq!(status.total, self.credentials.len() as u64);
        assert_eq!(status.by_key.len(), 1, "{status:?}");
        assert_eq!(status.by_key[0].key_id, new.id());
        assert_eq!(
            (status.legacy, status.plaintext, status.malformed),
            (0, 0, 0)
        );
        store.close().await.unwrap();
    }

    /// The key files after a finished rotation to `new`.
    pub(crate) fn assert_retired(&self, new: &Key) {
        let keyring = self.keyring_from_files();
        assert_eq!(keyring.primary_id(), new.id());
        assert!(!keyring.contains(self.old.id()), "old key not retired");
        assert!(
            keyring.contains(self.older.id()),
            "older key was not ours to retire"
        );
        let text = std::fs::read_to_string(&self.files.previous).unwrap();
        assert!(text.contains("# keys that still decrypt"), "comment lost");
        assert!(!text.contains(&self.old.id().to_string()));
        // Retired, never destroyed: the old key is kept in the retired-keys
        // file, which no app loads, and still opens what it sealed.
        let retired = std::fs::read_to_string(&self.files.retired).unwrap();
        assert!(
            retired.contains(&*self.old.expose_base64()),
            "the old key is not in the retired-keys file"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for f in [
                &self.files.primary,
                &self.files.previous,
                &self.files.retired,
            ] {
                let mode = std::fs::metadata(f).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", f.display());
            }
        }
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.state_path()).unwrap()).unwrap();
        assert_eq!(state["phase"], "finished");
        assert_eq!(state["new_key_id"], new.id().to_string());
        let state_text = std::fs::read_to_string(self.state_path()).unwrap();
        assert!(
            !state_text.contains(&*new.expose_base64()),
            "a key in the state file"
        );
    }

    /// Every stored token, by row id.
    pub(crate) async fn raw_tokens(&self) -> BTreeMap<i64, String> {
        let conn = self.db.connect().await;
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT id, encrypted_token FROM user_credentials",
            ))
            .await
            .unwrap();
        conn.close().await.unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.try_get::<i64>("", "id").unwrap(),
                    r.try_get::<String>("", "encrypted_token").unwrap(),
                )
            })
            .collect()
    }
}

pub(crate) fn keyring_from_files(files: &KeyFiles) -> Result<Keyring, atom_crypto::CryptoError> {
    let primary = files.primary.display().to_string();
    let previous = files.previous.display().to_string();
    let protection = atom_crypto::protection_from(
        |name| match name {
            ENV_KEY_FILE => Some(primary.clone()),
            ENV_PREVIOUS_KEYS_FILE => Some(previous.clone()),
            _ => None,
        },
        true,
    )?;
    Ok(protection.keyring().unwrap().clone())
}

pub(crate) async fn store(url: &str, keyring: Keyring) -> CredentialStore {
    let config = StoreConfig::new(DatabaseUrl::parse(url).unwrap());
    let (store, _) = CredentialStore::open(
        &config,
        Protection::Encrypted(keyring),
        Auditor::new(MemorySink::new()),
    )
    .await
    .unwrap();
    store
}

pub(crate) async fn insert_raw(
    conn: &DatabaseConnection,
    user: &str,
    provider: &str,
    token: &str,
    key_id: Option<String>,
) {
    let backend = conn.get_database_backend();
    let now = chrono::Utc::now().naive_utc();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO user_credentials (user_id, provider, encrypted_token, key_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)"
        }
        _ => {
            "INSERT INTO user_credentials (user_id, provider, encrypted_token, key_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        }
    };
    let values: Vec<Value> = vec![
        user.into(),
        provider.into(),
        token.into(),
        key_id.into(),
        now.into(),
        now.into(),
    ];
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
}

pub(crate) async fn set_token(conn: &DatabaseConnection, id: i64, token: &str) {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "UPDATE user_credentials SET encrypted_token = $1 WHERE id = $2",
        _ => "UPDATE user_credentials SET encrypted_token = ? WHERE id = ?",
    };
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        vec![token.into(), id.into()],
    ))
    .await
    .unwrap();
}

/// Writes a key file (one key, one line).
pub(crate) fn write_key(path: &Path, key: &Key) {
    std::fs::write(path, format!("{}\n", &*key.expose_base64())).unwrap();
}

/// Runs the async test body once per backend.
macro_rules! per_backend {
    ($name:ident) => {
        mod $name {
            use super::Kind;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Kind::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Kind::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mariadb() {
                super::$name(Kind::MySql).await
            }
        }
    };
}
