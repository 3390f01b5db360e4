//! Envelope encryption by default where no door closes, and recorded in
//! the database (`atom_store_settings`, `envelope = on | off`), so that
//! instances and commands configured differently cannot silently
//! disagree.
//!
//! - A store that holds no credential yet starts in envelope mode (`atom:v2`
//!   values under per-user data keys): there is no older binary to roll
//!   back to, so nothing is given up.
//! - A store that holds credentials when its mode is first recorded keeps
//!   writing `atom:v1` until the operator turns envelopes on
//!   (`ATOM_ENVELOPE_ENCRYPTION=1`): a binary of an earlier release reads v1
//!   and not v2. Such a store carries a notice saying how, and what it
//!   means, which the server and `atom status` show.
//! - A process configured explicitly against the recorded mode is refused
//!   at start-up, naming the setting. A process left unset follows the
//!   record.

use sea_orm::ConnectionTrait;

use crate::config::{ENV_ENVELOPE, EnvelopeSetting};
use crate::error::CredentialError;
use crate::keystore::location::SETTINGS_TABLE;
use crate::sql::statement;

/// The setting's name in `atom_store_settings`.
const ENVELOPE: &str = "envelope";

/// What an open decided: whether new values are enveloped, and the notice
/// to show when envelopes are off for a store that holds older rows.
#[derive(Debug, Clone)]
pub(crate) struct Mode {
    pub(crate) envelope: bool,
    pub(crate) notice: Option<String>,
}

/// The notice of a store whose envelopes are off.
pub(crate) fn off_notice() -> String {
    format!(
        "envelope encryption is off for this credential store (recorded in the database; stores that held credentials before envelopes became the default keep writing atom:v1, which a binary of an earlier release can read). Once every instance runs this release, set {ENV_ENVELOPE}=1 on all of them and rewrap the credentials: each user then gets a data key of their own, erasing a user shreds their rows in every backup, and a master key rotation rewraps one key per user (docs/OPERATIONS.md)"
    )
}

async fn recorded(conn: &impl ConnectionTrait) -> Result<Option<bool>, CredentialError> {
    let row = conn
        .query_one_raw(statement(
            conn.get_database_backend(),
            &format!("SELECT value FROM {SETTINGS_TABLE} WHERE name = ?"),
            vec![ENVELOPE.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get::<String>("", "value")? == "on"),
        None => None,
    })
}

async fn holds_credentials(conn: &impl ConnectionTrait) -> Result<bool, CredentialError> {
    Ok(conn
        .query_one_raw(statement(
            conn.get_database_backend(),
            "SELECT 1 AS one FROM user_credentials LIMIT 1",
            vec![],
        ))
        .await?
        .is_some())
}

async fn record(
    conn: &impl ConnectionTrait,
    on: bool,
    replace: bool,
) -> Result<(), CredentialError> {
    let value = if on { "on" } else { "off" };
    crate::keystore::location::write_setting(conn, ENVELOPE, value, replace).await
}

/// The mode of the store in `conn` for a process configured with
/// `setting`. With `may_record` (an open that migrates) the mode is
/// recorded when it is not yet, or changed when the operator turned
/// envelopes on; otherwise nothing is written.
pub(crate) async fn resolve(
    conn: &impl ConnectionTrait,
    setting: EnvelopeSetting,
    may_record: bool,
) -> Result<Mode, CredentialError> {
    let decided = match (recorded(conn).await?, setting) {
        (Some(true), EnvelopeSetting::Off) => {
            return Err(CredentialError::Config(format!(
                "{ENV_ENVELOPE} is 0, but this credential store is in envelope mode (recorded in the database): an instance writing atom:v1 beside others writing atom:v2 would undo what erasure guarantees. Unset {ENV_ENVELOPE} (the store's mode is then used) or set it to 1"
            )));
        }
        (Some(recorded), EnvelopeSetting::Auto) => recorded,
        (Some(false), EnvelopeSetting::On) => {
            // The operator turns envelopes on: from now on, recorded.
            if may_record {
                record(conn, true, true).await?;
                tracing::warn!(
                    "envelope encryption turned on for this credential store ({ENV_ENVELOPE}=1); restart every other instance so that they follow, and rewrap the credentials to upgrade the older rows"
                );
            }
            true
        }
        (Some(on), _) => on,
        (None, setting) => {
            let on = match setting {
                EnvelopeSetting::On => true,
                EnvelopeSetting::Off => false,
                EnvelopeSetting::Auto => !holds_credentials(conn).await?,
            };
            if may_record {
                record(conn, on, false).await?;
                // Two first starts at once: the one recorded first stands.
                if let Some(stood) = recorded(conn).await? {
                    return Ok(Mode {
                        envelope: stood,
                        notice: (!stood).then(off_notice),
                    });
                }
            }
            on
        }
    };
    Ok(Mode {
        envelope: decided,
        notice: (!decided).then(off_notice),
    })
}
