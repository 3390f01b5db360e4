//! A value that does not open stops the rotation at plan, before anything
//! changed, naming the bad values.

use atom_audit::{Auditor, MemorySink};
use atom_crypto::{Context, Key, Keyring};
use atom_rotation::{Outcome, exit, rotate_keys};

use crate::common::{Fixture, Kind, set_token};

async fn bad_values_stop_at_plan(kind: Kind) {
    let Some(fx) = Fixture::new(kind, "bad_values_stop_at_plan", 12).await else {
        return;
    };
    // A token copied into another user's row (fails authentication), and
    // a secret sealed under a key nobody configured.
    let tokens = fx.raw_tokens().await;
    let ids: Vec<i64> = tokens.keys().copied().collect();
    let (victim, donor) = (ids[3], ids[4]);
    let conn = fx.db.connect().await;
    set_token(&conn, victim, &tokens[&donor]).await;
    conn.close().await.unwrap();
    let stranger = Keyring::new(Key::generate().unwrap(), []).unwrap();
    let path = fx.secrets_dir.join("secrets.enc");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["STRANGER"] = stranger
        .seal(&Context::secret("STRANGER"), "nobody's")
        .into_string()
        .into();
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();

    let tokens = fx.raw_tokens().await;
    let files_before = (
        std::fs::read(&fx.files.primary).unwrap(),
        std::fs::read(&fx.files.previous).unwrap(),
        std::fs::read(&path).unwrap(),
    );
    let report = rotate_keys(&fx.options(), &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::ValuesDoNotOpen,
        "{}",
        report.to_text()
    );
    assert_eq!(report.exit_code, exit::VALUES_DO_NOT_OPEN);
    assert_eq!(report.bad_values_total, 2, "{}", report.to_text());
    assert!(
        report
            .bad_values
            .iter()
            .any(|b| b.name.as_deref() == Some("STRANGER"))
    );
    let row = report
        .bad_values
        .iter()
        .find(|b| b.id == Some(victim))
        .unwrap_or_else(|| panic!("row {victim} not named: {}", report.to_text()));
    assert!(row.user.is_some() && row.provider.is_some());
    let text = report.to_text();
    assert!(
        text.contains("STRANGER") && text.contains(&format!("id {victim}")),
        "{text}"
    );
    assert!(!text.contains("nobody's"));

    // Nothing changed: key files, secrets file, rows; no state file.
    assert_eq!(std::fs::read(&fx.files.primary).unwrap(), files_before.0);
    assert_eq!(std::fs::read(&fx.files.previous).unwrap(), files_before.1);
    assert_eq!(std::fs::read(&path).unwrap(), files_before.2);
    assert_eq!(fx.raw_tokens().await, tokens);
    assert!(!fx.state_path().exists());
}
per_backend!(bad_values_stop_at_plan);

/// A dry run changes nothing: pointed at a database that does not exist
/// yet, it says so instead of creating it (and its tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_does_not_create_the_database() {
    let fx = Fixture::new(Kind::Sqlite, "dry_run_creates_nothing", 3)
        .await
        .unwrap();
    let missing = fx.dir.path().join("not-yet.db");
    let mut options = fx.options();
    options.database_url = Some(format!("sqlite://{}", missing.display()));
    options.dry_run = true;
    let report = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::DryRun, "{}", report.to_text());
    assert!(
        report.notes.iter().any(|n| n.contains("does not exist")),
        "{:?}",
        report.notes
    );
    assert!(
        !missing.exists(),
        "the dry run created {}",
        missing.display()
    );
    assert!(!fx.state_path().exists());
}
