//! The Fernet specification's test vectors, copied from
//! shared/vectors/fernet into tests/data/fernet.

use std::time::Duration;

use atom_crypto::{Context, CryptoError, ExposeSecret, Key, Keyring};
use serde::Deserialize;

use crate::common::{clock_at, data_path};

#[derive(Deserialize)]
struct Vector {
    token: String,
    now: String,
    secret: String,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    ttl_sec: Option<u64>,
    #[serde(default)]
    desc: Option<String>,
    #[serde(default)]
    iv: Option<Vec<u8>>,
}

fn load(name: &str) -> Vec<Vector> {
    let text = std::fs::read_to_string(data_path(&format!("fernet/{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn unix(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp()
        .try_into()
        .unwrap()
}

fn keyring_for(v: &Vector) -> Keyring {
    let key = Key::parse(&v.secret).unwrap();
    Keyring::new(key, [])
        .unwrap()
        .with_clock(clock_at(unix(&v.now)))
        .with_max_age(v.ttl_sec.map(Duration::from_secs))
}

// A legacy token has no context; any context opens it.
fn any_context() -> Context {
    Context::secret("unused")
}

#[test]
fn verify_vectors_open() {
    let vectors = load("verify");
    assert!(!vectors.is_empty());
    for v in &vectors {
        let opened = keyring_for(v).open(&any_context(), &v.token).unwrap();
        assert_eq!(opened.expose_secret(), v.src.as_deref().unwrap());
    }
}

#[test]
fn generate_vectors_open_and_our_tokens_match_their_layout() {
    let vectors = load("generate");
    assert!(!vectors.is_empty());
    for v in &vectors {
        let ring = keyring_for(v);
        let src = v.src.as_deref().unwrap();
        assert_eq!(
            ring.open(&any_context(), &v.token).unwrap().expose_secret(),
            src
        );

        // The fernet crate draws its own IV, so the token cannot equal the
        // vector's byte for byte; the version and timestamp (the first 12
        // characters encode exactly those 9 bytes) and the length must.
        let ours = ring.seal_legacy(src);
        assert_eq!(
            &ours.as_str()[..12],
            &v.token[..12],
            "version and timestamp"
        );
        assert_eq!(ours.as_str().len(), v.token.len());
        assert_eq!(
            ring.open(&any_context(), ours.as_str())
                .unwrap()
                .expose_secret(),
            src
        );
        assert_eq!(v.iv.as_ref().map(Vec::len), Some(16));
    }
}

#[test]
fn every_invalid_vector_is_refused_with_the_right_reason() {
    let vectors = load("invalid");
    assert_eq!(vectors.len(), 8);
    for v in &vectors {
        let desc = v.desc.as_deref().unwrap();
        let err = keyring_for(v)
            .open(&any_context(), &v.token)
            .expect_err(desc);
        let ok = match desc {
            "incorrect mac" | "payload padding error" | "incorrect IV (causes padding error)" => {
                matches!(err, CryptoError::AuthenticationFailed { .. })
            }
            // Near a token but not a well-formed one: damaged ciphertext,
            // never plaintext.
            "too short" | "payload size not multiple of block size" | "invalid base64" => {
                matches!(err, CryptoError::Malformed(_))
            }
            "far-future TS (unacceptable clock skew)" => {
                matches!(err, CryptoError::FromTheFuture { .. })
            }
            "expired TTL" => matches!(err, CryptoError::Expired { .. }),
            other => panic!("unknown vector {other}"),
        };
        assert!(ok, "{desc}: got {err:?}");
    }
}

/// Every invalid vector of the Fernet spec, and each damaged further the
/// way hostile input arrives (characters no token has, inserted before,
/// inside or after it, or written over it), is ciphertext or damaged
/// ciphertext by structure: never plaintext, so never sealed as if it
/// were the secret (issue #20: a 104-character vector starting with `*`
/// was counted as plaintext).
#[test]
fn every_invalid_vector_and_its_damaged_forms_are_never_plaintext() {
    use atom_crypto::{Classification, classify};
    let vectors = load("invalid");
    let mut cases: Vec<(String, String)> = Vec::new();
    for v in &vectors {
        let desc = v.desc.clone().unwrap();
        let t = v.token.as_str();
        let half = t.len() / 2;
        cases.push((desc.clone(), t.to_owned()));
        cases.push((format!("{desc}, * before"), format!("*{t}")));
        cases.push((
            format!("{desc}, **** before (104 chars)"),
            format!("****{t}"),
        ));
        cases.push((format!("{desc}, * after"), format!("{t}***")));
        // Its first character overwritten: only a token's length of the
        // token alphabet tells (a short one is any 56 characters).
        if t.len() >= 97 {
            cases.push((format!("{desc}, * over the first"), format!("*{}", &t[1..])));
            cases.push((
                format!("{desc}, * over the first, 3 after"),
                format!("*{}***", &t[1..]),
            ));
        }
        cases.push((
            format!("{desc}, * inside"),
            format!("{}*%*{}", &t[..half], &t[half..]),
        ));
        cases.push((
            format!("{desc}, % over four"),
            t.char_indices()
                .map(|(i, c)| if i % 25 == 3 { '%' } else { c })
                .collect(),
        ));
    }
    assert_eq!(cases.len(), 8 * 6 + 6 * 2);
    for (what, text) in &cases {
        let class = classify(text);
        assert!(
            !matches!(class, Ok(Classification::Plaintext)),
            "{what} ({} chars) classified as plaintext",
            text.len()
        );
    }
    // Secrets that merely share the alphabet stay plaintext: a JWT, a
    // Google access token, GitHub and Slack tokens, a long password.
    let google = format!(
        "ya29.a0AfB_{}",
        "byCdEfGhIjKlMnOpQrStUvWxYz0123456789".repeat(4)
    );
    for plain in [
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        google.as_str(),
        "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "correct horse battery staple, and then some more words to make it long enough to look like a token's length!!",
    ] {
        assert_eq!(
            classify(plain).unwrap(),
            Classification::Plaintext,
            "{plain}"
        );
    }
}
