//! The Authorization header of a request: any text, and structure-aware
//! tokens signed with the server's secret with hostile claims. Never a
//! panic; never accepted unless well formed and within its times.
#![no_main]

use arbitrary::Arbitrary;
use atom_server::JwtKeys;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-secret!";

#[derive(Arbitrary, Debug)]
enum Input {
    Header(String),
    Signed {
        alg: u8,
        sub: Option<String>,
        exp: Option<u64>,
        nbf: Option<u64>,
        iat: Option<u64>,
        admin: Option<bool>,
    },
}

fuzz_target!(|input: Input| {
    let keys = JwtKeys::new(SECRET).unwrap();
    match input {
        Input::Header(text) => {
            let _ = keys.authenticate(Some(&text));
        }
        Input::Signed { alg, sub, exp, nbf, iat, admin } => {
            let alg = match alg % 3 {
                0 => jsonwebtoken::Algorithm::HS256,
                1 => jsonwebtoken::Algorithm::HS384,
                _ => jsonwebtoken::Algorithm::HS512,
            };
            let mut claims = serde_json::Map::new();
            for (k, v) in [
                ("sub", sub.clone().map(serde_json::Value::from)),
                ("exp", exp.map(serde_json::Value::from)),
                ("nbf", nbf.map(serde_json::Value::from)),
                ("iat", iat.map(serde_json::Value::from)),
                ("admin", admin.map(serde_json::Value::from)),
            ] {
                if let Some(v) = v {
                    claims.insert(k.to_owned(), v);
                }
            }
            let token = jsonwebtoken::encode(
                &jsonwebtoken::Header::new(alg),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(SECRET),
            )
            .unwrap();
            if let Ok(principal) = keys.authenticate(Some(&format!("Bearer {token}"))) {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                assert_eq!(alg, jsonwebtoken::Algorithm::HS256);
                assert_eq!(Some(principal.user), sub);
                // Saturating: the claims may be anywhere up to u64::MAX.
                assert!(exp.is_some_and(|e| e.saturating_add(30) >= now));
                assert!(nbf.is_none_or(|n| n <= now.saturating_add(30)));
                assert!(iat.is_none_or(|i| i <= now.saturating_add(30)));
            }
        }
    }
});
