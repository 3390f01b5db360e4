//! Bearer JWT authentication: HS256 with a shared secret (development and
//! simple setups: `sub` is the user id, `admin: true` makes an
//! administrator), or tokens of an identity provider checked against its
//! JWKS ([`crate::identity`]). Administrators may read the status document
//! and act on other users.

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The HS256 secret, as text.
pub const ENV_JWT_SECRET: &str = "ATOM_JWT_SECRET";
/// A file holding the HS256 secret.
pub const ENV_JWT_SECRET_FILE: &str = "ATOM_JWT_SECRET_FILE";
/// The shortest secret accepted, in bytes (HS256 wants at least 256 bits).
pub const MIN_SECRET_LEN: usize = 32;
/// Clock skew allowed between the token's issuer and this server, in
/// seconds, for `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 30;

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id the token speaks for (required: a token without it is
    /// refused by name, not as malformed).
    #[serde(default)]
    pub sub: String,
    /// Expiry, seconds since the Unix epoch (required, likewise).
    #[serde(default)]
    pub exp: u64,
    /// Not before, seconds since the Unix epoch: refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the Unix epoch: a token issued in the
    /// future is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Administrators may read the status document and act on any user.
    #[serde(default)]
    pub admin: bool,
}

/// Who is calling, once the token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id from `sub`.
    pub user: String,
    /// Whether the token carries `admin: true`.
    pub admin: bool,
}

impl Principal {
    /// Whether this caller may act on `user`'s credentials.
    pub fn may_act_on(&self, user: &str) -> bool {
        self.admin || self.user == user
    }
}

/// Why a request is not authenticated. The message goes to the client; it
/// names the problem, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer ...` header.
    #[error("missing bearer token: send Authorization: Bearer <JWT>")]
    Missing,
    /// The token is not valid (bad signature, expired, malformed, wrong algorithm).
    #[error("invalid bearer token: {0}")]
    Invalid(String),
}

/// Signs and checks tokens with one HS256 secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys { .. }")
    }
}

impl JwtKeys {
    /// Keys from a secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Result<JwtKeys, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the JWT secret is {} bytes; HS256 needs at least {MIN_SECRET_LEN} random bytes",
                secret.len()
            ));
        }
        // Pinned to HS256: a token naming any other algorithm (none, RS256
        // with the secret as a public key...) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Ok(JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// Loads the secret from [`ENV_JWT_SECRET`] or [`ENV_JWT_SECRET_FILE`];
    /// with neither and `development` allowed, from (or, the first time,
    /// into) `default_file`, so a development server and `atom-server token`
    /// agree without setup. Without `development` (production settings),
    /// a missing secret is an error.
    pub fn from_env_or_file(default_file: &Path, development: bool) -> Result<JwtKeys, String> {
        let lookup = |name: &str| std::env::var(name).ok();
        let text = match atom_io::secret_from_env(&lookup, ENV_JWT_SECRET, ENV_JWT_SECRET_FILE)
            .map_err(|e| e.to_string())?
        {
            Some(secret) => secret.text,
            None if !development => {
                return Err(format!(
                    "{ENV_JWT_SECRET} (or {ENV_JWT_SECRET_FILE}) is not set, and production settings (ATOM_REQUIRE_ENCRYPTION) allow no development secret; set it to 32 or more random bytes"
                ));
            }
            None => {
                if !default_file.exists() {
                    write_new_secret(default_file)?;
                }
                tracing::warn!(
                    file = %default_file.display(),
                    "no {ENV_JWT_SECRET} set: using the development JWT secret file; anyone who can read it can mint tokens. Set {ENV_JWT_SECRET} or {ENV_JWT_SECRET_FILE} in production"
                );
                let path = default_file.display().to_string();
                atom_io::secret_from_env(
                    &|name: &str| (name == ENV_JWT_SECRET_FILE).then(|| path.clone()),
                    ENV_JWT_SECRET,
                    ENV_JWT_SECRET_FILE,
                )
                .map_err(|e| e.to_string())?
                .map(|s| s.text)
                .unwrap_or_default()
            }
        };
        JwtKeys::new(text.trim_end_matches(['\n', '\r']).as_bytes())
    }

    /// Issues a token for `user`, valid for `ttl_secs` from `now`.
    pub fn issue(
        &self,
        user: &str,
        admin: bool,
        now: u64,
        ttl_secs: u64,
    ) -> Result<String, String> {
        let claims = Claims {
            sub: user.to_owned(),
            exp: now.saturating_add(ttl_secs),
            nbf: None,
            iat: Some(now),
            admin,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| format!("cannot sign the token: {e}"))
    }

    /// Checks an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let token = bearer(header)?;
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
                .map_err(|e| refusal(token, e.kind(), "HS256"))?;
        check_claim_types(&data.claims)?;
        let claims: Claims = serde_json::from_value(Value::Object(data.claims))
            .map_err(|_| AuthError::Invalid("its `admin` claim is not true or false".into()))?;
        check_issued_at(claims.iat)?;
        check_user(&claims.sub, "sub")?;
        Ok(Principal {
            user: claims.sub,
            admin: claims.admin,
        })
    }
}

/// How the server checks bearer tokens: one of the two schemes, never both
/// (a server that trusts an identity provider does not also accept tokens
/// signed with a development secret).
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// HS256 tokens signed with the server's shared secret.
    SharedSecret(Box<JwtKeys>),
    /// Tokens of an identity provider, checked against its JWKS.
    Provider(Arc<crate::identity::ProviderVerifier>),
}

impl Authenticator {
    /// Checks an `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        match self {
            Authenticator::SharedSecret(keys) => keys.authenticate(header),
            Authenticator::Provider(verifier) => verifier.authenticate(header).await,
        }
    }
}

impl From<JwtKeys> for Authenticator {
    fn from(keys: JwtKeys) -> Authenticator {
        Authenticator::SharedSecret(Box::new(keys))
    }
}

impl Authenticator {
    /// Tokens of the identity provider `verifier` checks, with its key set
    /// refreshed on a timer of the current runtime while it lives.
    pub fn refreshing(verifier: Arc<crate::identity::ProviderVerifier>) -> Authenticator {
        verifier.refresh_on_a_timer();
        Authenticator::Provider(verifier)
    }
}

impl From<crate::identity::ProviderVerifier> for Authenticator {
    fn from(verifier: crate::identity::ProviderVerifier) -> Authenticator {
        Authenticator::refreshing(Arc::new(verifier))
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub(crate) fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)
}

/// Refuses a token whose registered claims (RFC 7519, section 4.1) are of
/// another type than the RFC gives them: `iss` and `sub` strings, `aud` a
/// string or an array of strings, `exp`, `nbf` and `iat` NumericDates
/// (non-negative numbers), `jti` a string. A verifier that accepted `iss`
/// as an array would let one token claim several issuers.
pub(crate) fn check_claim_types(claims: &Map<String, Value>) -> Result<(), AuthError> {
    let wrong = |claim: &str, should: &str| {
        Err(AuthError::Invalid(format!(
            "its `{claim}` claim is not {should} (RFC 7519, section 4.1)"
        )))
    };
    for (claim, value) in claims {
        match (claim.as_str(), value) {
            ("iss" | "sub" | "jti", Value::String(_)) => {}
            ("iss" | "sub" | "jti", _) => return wrong(claim, "a string"),
            ("aud", Value::String(_)) => {}
            ("aud", Value::Array(items)) if items.iter().all(Value::is_string) => {}
            ("aud", _) => return wrong(claim, "a string or an array of strings"),
            ("exp" | "nbf" | "iat", Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => {}
            ("exp" | "nbf" | "iat", _) => {
                return wrong(claim, "a NumericDate (seconds since 1970, a number)");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a token issued (`iat`) later than now plus the leeway.
pub(crate) fn check_issued_at(iat: Option<u64>) -> Result<(), AuthError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if iat.is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECS)) {
        return Err(AuthError::Invalid(
            "its `iat` (issued at) lies in the future; check the issuer's clock".into(),
        ));
    }
    Ok(())
}

/// Refuses a user id (from `claim`) that the credential store would refuse.
pub(crate) fn check_user(user: &str, claim: &str) -> Result<(), AuthError> {
    if atom_credentials::UserId::parse(user).is_err() {
        return Err(AuthError::Invalid(format!(
            "its `{claim}` is not a user id (1 to 255 bytes, no control characters or surrounding spaces)"
        )));
    }
    Ok(())
}

/// Why jsonwebtoken refused `token`, for the client: a registered claim of
/// the wrong type is named as such (jsonwebtoken reports it as missing),
/// else [`describe`]. The claims are read unverified, for the message only.
pub(crate) fn refusal(
    token: &str,
    kind: &jsonwebtoken::errors::ErrorKind,
    accepted: &str,
) -> AuthError {
    use base64::Engine as _;
    if matches!(
        kind,
        jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_)
    ) && let Some(payload) = token.split('.').nth(1)
        && let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)
        && let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(&bytes)
        && let Err(wrong_type) = check_claim_types(&claims)
    {
        return wrong_type;
    }
    AuthError::Invalid(describe(kind, accepted))
}

/// The client's message for a token jsonwebtoken refused; `accepted`
/// names the algorithms accepted.
pub(crate) fn describe(kind: &jsonwebtoken::errors::ErrorKind, accepted: &str) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "the token has expired; get a new one".into(),
        K::ImmatureSignature => "the token is not valid yet (its `nbf` lies in the future)".into(),
        K::InvalidSignature => "the signature does not match".into(),
        K::InvalidAlgorithm => format!("only {accepted} tokens are accepted"),
        K::InvalidIssuer => {
            "it was issued by another issuer than the one this server trusts".into()
        }
        K::InvalidAudience => "it is meant for another audience than this server".into(),
        K::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
        _ => "the token is malformed".into(),
    }
}

fn write_new_secret(path: &Path) -> Result<(), String> {
    use std::io::Write as _;
    let secret = random_secret()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        format!(
            "cannot create the development JWT secret {}: {}",
            path.display(),
            e.kind()
        )
    })?;
    file.write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {}", path.display(), e.kind()))
}

/// 32 random bytes as 64 hex characters.
fn random_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|_| "the operating system's random generator is unavailable".to_owned())?;
    Ok(atom_io::hex(&bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"a-secret-of-thirty-two-bytes-or-more!";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// Each registered claim of another type than RFC 7519 gives it, in an
    /// otherwise valid HS256 token: refused, naming the claim.
    #[test]
    fn registered_claims_of_the_wrong_type_are_refused() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let good = json!({"sub": "alice", "exp": now() + 600, "iat": now()});
        let cases: Vec<(&str, Value)> = vec![
            ("iss", json!(["https://a.example", "https://b.example"])),
            ("iss", json!(42)),
            ("iss", json!({"x": 1})),
            ("sub", json!(["alice"])),
            ("sub", json!(7)),
            ("sub", Value::Null),
            ("exp", json!("2100-01-01")),
            ("exp", json!(-5)),
            ("exp", json!([now() + 600])),
            ("nbf", json!(true)),
            ("nbf", json!("0")),
            ("iat", json!("now")),
            ("iat", json!({"t": 1})),
            ("aud", json!(5)),
            ("aud", json!(["ok", 5])),
            ("jti", json!(12)),
        ];
        let count = cases.len();
        for (claim, value) in cases {
            let mut claims = good.clone();
            claims[claim] = value.clone();
            let token = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap();
            let header = format!("Bearer {token}");
            let err = keys.authenticate(Some(&header)).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(&format!("`{claim}`")) || message.contains("malformed"),
                "{claim} = {value}: {message}"
            );
        }
        assert_eq!(count, 16);
        // The same claims of the right types pass.
        let mut claims = good.clone();
        claims["iss"] = json!("https://a.example");
        claims["nbf"] = json!(now() - 10);
        claims["jti"] = json!("id-1");
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let principal = keys.authenticate(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(principal.user, "alice");
    }

    #[test]
    fn claim_types_follow_rfc_7519() {
        let ok = |v: Value| check_claim_types(v.as_object().unwrap()).is_ok();
        assert!(ok(
            json!({"iss": "i", "sub": "s", "aud": "a", "exp": 1, "nbf": 0, "iat": 1.5})
        ));
        assert!(ok(json!({"aud": ["a", "b"], "custom": [1, 2]})));
        assert!(!ok(json!({"iss": ["i"]})));
        assert!(!ok(json!({"sub": 1})));
        assert!(!ok(json!({"exp": "1"})));
        assert!(!ok(json!({"nbf": null})));
        assert!(!ok(json!({"iat": -1})));
    }
}
