//! Interoperability with pyca/cryptography both ways.
//!
//! Python -> Rust: tests/data/interop/python_values.json was made by
//! make_fixtures.py (committed beside it) and must open here.
//! Rust -> Python: what Rust seals, the documented snippet
//! (tests/data/interop/atom_value.py, shown in docs/COMPATIBILITY.md) opens.
//! That half runs python3 when it has pyca/cryptography and says so when not.

use std::io::Write as _;
use std::process::{Command, Stdio};

use atom_crypto::{Context, DataKey, ExposeSecret, Key, Keyring};
use serde::Deserialize;

use crate::common::data_path;

#[derive(Deserialize)]
struct Fixture {
    key: String,
    key_id: String,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    domain: String,
    parts: Vec<String>,
    plaintext: String,
    sealed: String,
    legacy: String,
}

fn context(domain: &str, parts: &[String]) -> Context {
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    Context::from_parts(domain, &parts)
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(data_path("interop/python_values.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn values_made_by_python_open_in_rust() {
    let f = fixture();
    let key = Key::parse(&f.key).unwrap();
    assert_eq!(
        key.id().to_string(),
        f.key_id,
        "key ids agree between implementations"
    );
    let ring = Keyring::new(key, []).unwrap();
    assert!(f.items.len() >= 5);
    for it in &f.items {
        let ctx = context(&it.domain, &it.parts);
        assert_eq!(
            ring.open(&ctx, &it.sealed).unwrap().expose_secret(),
            it.plaintext
        );
        assert_eq!(
            ring.open(&ctx, &it.legacy).unwrap().expose_secret(),
            it.plaintext
        );
        // Python's sealed value is bound to its context here too.
        let other = Context::from_parts(&it.domain, &["someone else"]);
        assert!(ring.open(&other, &it.sealed).is_err());
    }
}

fn python_with_cryptography() -> bool {
    Command::new("python3")
        .args(["-c", "import cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn values_sealed_by_rust_open_with_the_documented_python_snippet() {
    if !python_with_cryptography() {
        // Straight to stderr: the test harness captures eprintln!.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED values_sealed_by_rust_open_with_the_documented_python_snippet: python3 with pyca/cryptography is not available (pip install cryptography)"
        );
        return;
    }
    let key = Key::generate().unwrap();
    let ring = Keyring::new(key.clone(), []).unwrap();
    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "credential",
            vec!["user_1".into(), "slack".into()],
            "xoxb-".to_owned() + &"a1".repeat(40),
        ),
        (
            "credential",
            vec!["ü".into(), "gøøgle".into()],
            "ünïcødé 🔑".into(),
        ),
        ("secret", vec!["empty".into()], String::new()),
        ("secret", vec!["big".into()], "x".repeat(100_000)),
    ];
    let mut items = Vec::new();
    let mut expected = Vec::new();
    for (domain, parts, pt) in &cases {
        let ctx = context(domain, parts);
        items.push(serde_json::json!({"domain": domain, "parts": parts, "stored": ring.seal(&ctx, pt).as_str()}));
        expected.push(pt.clone());
    }
    // The legacy form opens with plain Fernet.
    items.push(serde_json::json!({"domain": "secret", "parts": ["legacy"], "stored": ring.seal_legacy("old style").as_str()}));
    expected.push("old style".into());
    // The enveloped form opens from the master key and the wrapped data key.
    for (owner, provider, pt) in [
        ("user_1", "github", "gho_v2"),
        ("ü", "gøøgle", "ünïcødé 🔑"),
    ] {
        let data_key = DataKey::generate().unwrap();
        let stored = ring.seal_enveloped(&data_key, &Context::credential(owner, provider), pt);
        items.push(serde_json::json!({
            "domain": "credential", "parts": [owner, provider], "stored": stored,
            "owner": owner, "wrapped": ring.wrap_data_key(owner, &data_key).as_str(),
        }));
        expected.push(pt.to_owned());
    }

    let request = serde_json::json!({"key": key.expose_base64().as_str(), "items": items});
    let mut child = Command::new("python3")
        .arg(data_path("interop/atom_value.py"))
        .arg("open")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<String> = serde_json::from_value(got["plaintexts"].clone()).unwrap();
    assert_eq!(got, expected);
}
