//! Tokens from an identity provider: RS256, ES256 and EdDSA keys the tests
//! make (the RSA one is a committed fixture, see fixtures/make_idp_rsa.py),
//! published as a JWKS by a real HTTP server in the test, rotated there,
//! and forged in the ways attackers forge tokens.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atom_audit::Action;
use atom_server::{Authenticator, IdentityError, JwksSource, ProviderConfig, ProviderVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, now, sqlite_url};

const ISSUER: &str = "https://idp.test.example/";
const AUDIENCE: &str = "atom-api";

/// A signing key of the provider, with its public JWK.
struct Signer {
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

impl Signer {
    fn ed25519(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        Signer {
            kid: kid.to_owned(),
            algorithm: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(&pair.serialize_der()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
                        "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw())}),
        }
    }

    fn p256(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        // Uncompressed point: 0x04, then x and y.
        let raw = pair.public_key_raw();
        assert_eq!((raw.len(), raw[0]), (65, 4));
        Signer {
            kid: kid.to_owned(),
            algorithm: Algorithm::ES256,
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
                        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
                        "y": URL_SAFE_NO_PAD.encode(&raw[33..])}),
        }
    }

    fn rsa(kid: &str) -> Signer {
        let mut jwk: Value =
            serde_json::from_str(include_str!("fixtures/idp-rsa-2048.jwk.json")).unwrap();
        jwk["kid"] = json!(kid);
        Signer {
            kid: kid.to_owned(),
            algorithm: Algorithm::RS256,
            key: EncodingKey::from_rsa_der(include_bytes!("fixtures/idp-rsa-2048.der")),
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.algorithm, &self.kid, claims)
    }

    fn sign_as(&self, algorithm: Algorithm, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// Claims of a good token for `user`.
fn claims(user: &str) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": user, "iat": now(), "exp": now() + 600})
}

/// The identity provider's JWKS endpoint: a real HTTP server whose key set
/// the test changes, counting fetches.
struct Provider {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    async fn start(signers: &[&Signer]) -> Provider {
        let keys = Arc::new(Mutex::new(Vec::new()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (k, f) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (k, f) = (k.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({ "keys": *k.lock().unwrap() }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let provider = Provider { url, keys, fetches };
        provider.publish(signers);
        provider
    }

    fn publish(&self, signers: &[&Signer]) {
        *self.keys.lock().unwrap() = signers.iter().map(|s| s.jwk.clone()).collect();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn config(&self) -> ProviderConfig {
        let mut config = ProviderConfig::new(JwksSource::url(&self.url).unwrap(), ISSUER, AUDIENCE);
        // Unknown key ids fetch again at once (the rate limit has a test
        // of its own).
        config.min_refetch = Duration::ZERO;
        config
    }
}

async fn server_for(dir: &std::path::Path, config: ProviderConfig) -> TestServer {
    let verifier = ProviderVerifier::load(config).await.unwrap();
    TestServer::start_authenticating(dir, &sqlite_url(dir), Authenticator::from(verifier)).await
}

/// PUT then GET `user`'s github token with `bearer`; the statuses.
async fn put_then_get(s: &TestServer, bearer: &str, user: &str) -> (StatusCode, StatusCode) {
    let c = Client::new();
    let path = s.url(&format!("/api/users/{user}/credentials/github"));
    let put = c
        .put(&path)
        .bearer_auth(bearer)
        .json(&json!({"token": format!("gho_{user}")}))
        .send()
        .await
        .unwrap()
        .status();
    let get = c.get(&path).bearer_auth(bearer).send().await.unwrap();
    let status = get.status();
    if status == StatusCode::OK {
        let body: Value = get.json().await.unwrap();
        assert_eq!(body["token"], json!(format!("gho_{user}")));
    }
    (put, status)
}

fn denied(s: &TestServer) -> usize {
    s.events
        .events()
        .iter()
        .filter(|e| matches!(e.action, Action::AccessDenied { .. }))
        .count()
}

#[tokio::test]
async fn tokens_of_each_algorithm_are_accepted_and_admins_come_from_a_scope() {
    let (rsa, ec, ed) = (
        Signer::rsa("rsa-1"),
        Signer::p256("ec-1"),
        Signer::ed25519("ed-1"),
    );
    let idp = Provider::start(&[&rsa, &ec, &ed]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = idp.config();
    config.admin_claim = "scope".to_owned();
    config.admin_value = Some("atom:admin".to_owned());
    let s = server_for(dir.path(), config).await;

    for (signer, user) in [(&rsa, "alice"), (&ec, "bob"), (&ed, "carol")] {
        let token = signer.sign(&claims(user));
        assert_eq!(
            put_then_get(&s, &token, user).await,
            (StatusCode::NO_CONTENT, StatusCode::OK),
            "{:?}",
            signer.algorithm
        );
    }
    let c = Client::new();
    let alices = s.url("/api/users/alice/credentials/github");
    // A scope that holds atom:admin among others makes an administrator...
    let mut admin = claims("ops");
    admin["scope"] = json!("openid profile atom:admin");
    let resp = c
        .get(&alices)
        .bearer_auth(ed.sign(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // ...a scope without it, or `admin: true` (not the configured claim), does not.
    let mut not_admin = claims("mallory");
    not_admin["scope"] = json!("openid atom:administrator");
    not_admin["admin"] = json!(true);
    let resp = c
        .get(&alices)
        .bearer_auth(rsa.sign(&not_admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(idp.fetches(), 1, "one fetch at start-up served every token");
    s.stop().await;
}

#[tokio::test]
async fn the_user_can_come_from_another_claim() {
    let ed = Signer::ed25519("ed-1");
    let idp = Provider::start(&[&ed]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = idp.config();
    config.user_claim = "preferred_username".to_owned();
    let s = server_for(dir.path(), config).await;
    let mut named = claims("opaque-subject-1234");
    named["preferred_username"] = json!("dana");
    assert_eq!(
        put_then_get(&s, &ed.sign(&named), "dana").await,
        (StatusCode::NO_CONTENT, StatusCode::OK)
    );
    // `sub` no longer names the user; a token without the claim is refused.
    let (put, _) = put_then_get(&s, &ed.sign(&claims("dana")), "dana").await;
    assert_eq!(put, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn a_key_rotated_in_at_the_provider_is_picked_up_at_once() {
    let (old, new) = (Signer::ed25519("2026-11"), Signer::ed25519("2026-12"));
    let idp = Provider::start(&[&old]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = idp.config();
    // No timed refresh during the test: the new key comes by its kid.
    config.refresh = Duration::from_secs(3600);
    let s = server_for(dir.path(), config).await;
    let old_token = old.sign(&claims("erin"));
    let new_token = new.sign(&claims("erin"));
    assert_eq!(put_then_get(&s, &old_token, "erin").await.1, StatusCode::OK);

    // Signed with a key the provider does not publish yet: refused, audited.
    let before = denied(&s);
    assert_eq!(
        put_then_get(&s, &new_token, "erin").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(denied(&s) > before, "the refusal is audited");

    // The provider rotates: both keys published. The new kid is fetched
    // at once, without waiting for the refresh.
    idp.publish(&[&old, &new]);
    let fetches = idp.fetches();
    assert_eq!(
        put_then_get(&s, &new_token, "erin").await,
        (StatusCode::NO_CONTENT, StatusCode::OK)
    );
    assert_eq!(idp.fetches(), fetches + 1);

    s.stop().await;
}

/// A key withdrawn at the provider is refused from the first request after
/// the refresh interval has passed and the timed fetch has completed: the
/// set is refreshed on a timer, not by the first request after the
/// interval (which used to be judged by the old keys once more).
#[tokio::test]
async fn a_key_withdrawn_at_the_provider_is_refused_after_the_timed_refresh() {
    let (old, new) = (Signer::ed25519("2026-11"), Signer::ed25519("2026-12"));
    let idp = Provider::start(&[&old, &new]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = idp.config();
    config.refresh = Duration::from_millis(200);
    let verifier = Arc::new(ProviderVerifier::load(config).await.unwrap());
    let s = TestServer::start_authenticating(
        dir.path(),
        &sqlite_url(dir.path()),
        Authenticator::refreshing(Arc::clone(&verifier)),
    )
    .await;
    let old_token = old.sign(&claims("erin"));
    let new_token = new.sign(&claims("erin"));
    assert_eq!(put_then_get(&s, &old_token, "erin").await.1, StatusCode::OK);

    idp.publish(&[&new]);
    // No request in between: the timer alone refreshes the set. Wait for
    // a fetch that started after the withdrawal to complete.
    let fetches = idp.fetches();
    let done = verifier.refreshes();
    for _ in 0..500 {
        if idp.fetches() > fetches && verifier.refreshes() > done + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        verifier.refreshes() > done + 1,
        "the timer refreshed the set"
    );
    let c = Client::new();
    let path = s.url("/api/users/erin/credentials/github");
    let first = c.get(&path).bearer_auth(&old_token).send().await.unwrap();
    assert_eq!(
        first.status(),
        StatusCode::UNAUTHORIZED,
        "the first request after the refresh is refused"
    );
    let status = c
        .get(&path)
        .bearer_auth(&new_token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn invented_key_ids_do_not_make_the_server_hammer_the_provider() {
    let ed = Signer::ed25519("ed-1");
    let idp = Provider::start(&[&ed]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = idp.config();
    config.min_refetch = Duration::from_secs(3600);
    let s = server_for(dir.path(), config).await;
    for i in 0..20 {
        let token = ed.sign_as(Algorithm::EdDSA, &format!("invented-{i}"), &claims("frank"));
        assert_eq!(
            put_then_get(&s, &token, "frank").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(idp.fetches(), 1, "only the start-up fetch");
    s.stop().await;
}

#[tokio::test]
async fn forged_and_misdirected_tokens_are_refused_and_audited() {
    let (rsa, ed) = (Signer::rsa("rsa-1"), Signer::ed25519("ed-1"));
    let idp = Provider::start(&[&rsa, &ed]).await;
    let dir = tempfile::tempdir().unwrap();
    let s = server_for(dir.path(), idp.config()).await;
    let impostor = Signer::ed25519("ed-1");
    let rsa_public_n = rsa.jwk["n"].as_str().unwrap().to_owned();

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("grace");
        f(&mut c);
        c
    };
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"ed-1"}"#),
        URL_SAFE_NO_PAD.encode(claims("grace").to_string())
    );
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".to_owned());
        let key = EncodingKey::from_secret(rsa_public_n.as_bytes());
        jsonwebtoken::encode(&header, &claims("grace"), &key).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            ed.sign(&with(&|c| c["iss"] = json!("https://evil.example/"))),
            "issuer",
        ),
        (
            "issuer as an array holding ours (RFC 7519: a string)",
            ed.sign(&with(&|c| {
                c["iss"] = json!([ISSUER, "https://evil.example/"])
            })),
            "`iss`",
        ),
        (
            "issuer as a one-element array",
            ed.sign(&with(&|c| c["iss"] = json!([ISSUER]))),
            "`iss`",
        ),
        (
            "issued-at as a string",
            ed.sign(&with(&|c| c["iat"] = json!("yesterday"))),
            "`iat`",
        ),
        (
            "wrong audience",
            ed.sign(&with(&|c| c["aud"] = json!("another-api"))),
            "audience",
        ),
        (
            "audience list without ours",
            ed.sign(&with(&|c| c["aud"] = json!(["a", "b"]))),
            "audience",
        ),
        (
            "no audience",
            ed.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            })),
            "`aud`",
        ),
        (
            "expired",
            ed.sign(&with(&|c| c["exp"] = json!(now() - 3600))),
            "expired",
        ),
        (
            "not yet valid",
            ed.sign(&with(&|c| c["nbf"] = json!(now() + 3600))),
            "not valid yet",
        ),
        (
            "issued in the future",
            ed.sign(&with(&|c| c["iat"] = json!(now() + 3600))),
            "future",
        ),
        (
            "unknown kid",
            ed.sign_as(Algorithm::EdDSA, "ed-9", &claims("grace")),
            "does not publish",
        ),
        (
            "no kid",
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims("grace"), &ed.key)
                .unwrap(),
            "`kid`",
        ),
        (
            "signed by an impostor under a known kid",
            impostor.sign(&claims("grace")),
            "signature",
        ),
        (
            "HS256 with the RSA public key as secret",
            hs256_with_public_key,
            "HS256",
        ),
        ("alg none", unsigned, "malformed"),
        (
            "another key's algorithm",
            rsa.sign_as(Algorithm::RS256, "ed-1", &claims("grace")),
            "not that of its key",
        ),
        (
            "user id not a string",
            ed.sign(&with(&|c| c["sub"] = json!(42))),
            "not a string",
        ),
        (
            "user id with a control character",
            ed.sign(&with(&|c| c["sub"] = json!("gr\u{7}ace"))),
            "not a user id",
        ),
    ];
    let c = Client::new();
    let path = s.url("/api/users/grace/credentials/github");
    for (name, token, says) in &cases {
        let before = denied(&s);
        let resp = c.get(&path).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{name}");
        let body: Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{name}: {message}");
        assert!(
            !message.contains(token.as_str()),
            "{name}: the token is not echoed"
        );
        assert_eq!(denied(&s), before + 1, "{name}: audited");
    }
    println!("forged-token table: {} cases", cases.len());
    // The good token still works after all that.
    let good = rsa.sign(&claims("grace"));
    assert_eq!(put_then_get(&s, &good, "grace").await.1, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn the_server_does_not_start_without_usable_provider_keys() {
    // Nothing listens.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = ProviderConfig::new(
        JwksSource::url(&format!("http://{closed}/jwks")).unwrap(),
        ISSUER,
        AUDIENCE,
    );
    let err = ProviderVerifier::load(config).await.unwrap_err();
    assert!(matches!(err, IdentityError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("http://{closed}/jwks")),
        "{err}"
    );
    assert!(err.to_string().contains("cannot connect"), "{err}");

    // Only keys this server will not use: a shared secret and a P-384 key.
    let idp = Provider::start(&[]).await;
    *idp.keys.lock().unwrap() = vec![
        json!({"kty": "oct", "kid": "hs", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}),
        json!({"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"}),
    ];
    let err = ProviderVerifier::load(idp.config()).await.unwrap_err();
    assert!(matches!(err, IdentityError::NoUsableKey { .. }), "{err:?}");
    assert!(err.to_string().contains("symmetric"), "{err}");

    // An empty issuer would accept any issuer: refused.
    let ed = Signer::ed25519("ed-1");
    idp.publish(&[&ed]);
    let mut config = idp.config();
    config.issuer = " ".to_owned();
    let err = ProviderVerifier::load(config).await.unwrap_err();
    assert!(err.to_string().contains("ATOM_JWT_ISSUER"), "{err}");
}

#[tokio::test]
async fn keys_from_a_file_are_read_again_for_a_new_key_id() {
    let (first, second) = (Signer::p256("first"), Signer::ed25519("second"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, json!({"keys": [first.jwk]}).to_string()).unwrap();
    let mut config = ProviderConfig::new(JwksSource::File(file.clone()), ISSUER, AUDIENCE);
    config.min_refetch = Duration::ZERO;
    let s = server_for(dir.path(), config).await;
    assert_eq!(
        put_then_get(&s, &first.sign(&claims("heidi")), "heidi")
            .await
            .1,
        StatusCode::OK
    );
    std::fs::write(&file, json!({"keys": [first.jwk, second.jwk]}).to_string()).unwrap();
    assert_eq!(
        put_then_get(&s, &second.sign(&claims("heidi")), "heidi")
            .await
            .1,
        StatusCode::OK
    );
    s.stop().await;
}
