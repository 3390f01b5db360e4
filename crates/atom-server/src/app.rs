//! The router: routes, authentication and the mapping of requests to the
//! library crates.

use std::sync::Arc;

use atom_audit::{Action, Actor, Auditor, DenialReason, Subject};
use atom_credentials::{CredentialStore, Provider, UserId};
use atom_crypto::{ExposeSecret as _, Protection, SecretString};
use atom_secrets_file::SecretsDir;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{JwtKeys, Principal};
use crate::error::ApiError;

/// The largest request body accepted, in bytes: a token plus JSON framing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: CredentialStore,
    protection: Protection,
    secrets: SecretsDir,
    jwt: JwtKeys,
    auditor: Auditor,
}

impl AppState {
    /// State over an open store. `auditor` records authentication denials;
    /// the store records its own operations.
    pub fn new(
        store: CredentialStore,
        protection: Protection,
        secrets: SecretsDir,
        jwt: JwtKeys,
        auditor: Auditor,
    ) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store,
                protection,
                secrets,
                jwt,
                auditor,
            }),
        }
    }

    /// The auditor, to flush at shutdown.
    pub fn auditor(&self) -> &Auditor {
        &self.inner.auditor
    }
}

/// The application's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/security/configuration", get(configuration))
        .route(
            "/api/users/{user}/credentials",
            get(list_credentials).delete(erase_user),
        )
        .route(
            "/api/users/{user}/credentials/{provider}",
            get(get_credential)
                .put(put_credential)
                .delete(delete_credential),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see the README for the API")
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Authenticates the request; a failure is audited as a denial of `subject`.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    subject: impl FnOnce() -> Subject,
) -> Result<Principal, ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.inner.jwt.authenticate(header) {
        Ok(principal) => Ok(principal),
        Err(err) => {
            deny(state, None, subject(), DenialReason::NotAuthenticated).await?;
            Err(ApiError::unauthorized(err.to_string()))
        }
    }
}

/// Records a denial; if even that cannot be recorded the answer is 503.
async fn deny(
    state: &AppState,
    principal: Option<&Principal>,
    subject: Subject,
    reason: DenialReason,
) -> Result<(), ApiError> {
    let auditor = match principal {
        Some(p) => state.inner.auditor.acting_as(actor(p)),
        None => state.inner.auditor.clone(),
    };
    auditor
        .record(Action::AccessDenied { subject, reason })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not record an access denial");
            ApiError::unavailable("the audit log is unavailable; try again later")
        })
}

/// `admin:<sub>` or `user:<sub>`: the role is the prefix, so no `sub` can
/// make a user look like an administrator in the trail.
fn actor(principal: &Principal) -> Actor {
    let role = if principal.admin { "admin" } else { "user" };
    Actor::new(format!("{role}:{}", principal.user))
}

/// An identifier from the request path as it may enter an audit event
/// before it is validated: at most 64 characters, control characters
/// escaped, so unauthenticated requests cannot write large or forged
/// lines into the trail.
fn bounded(id: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = id.chars().take(MAX).flat_map(char::escape_debug).collect();
    if id.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

/// The store acting as `principal`, so its events name who asked.
fn store_for(state: &AppState, principal: &Principal) -> CredentialStore {
    state
        .inner
        .store
        .clone()
        .with_auditor(state.inner.store.auditor().acting_as(actor(principal)))
}

/// Authenticates, parses the path's ids and checks that the caller may act
/// on that user.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    user: &str,
    provider: Option<&str>,
) -> Result<(Principal, UserId, Option<Provider>), ApiError> {
    let subject = || match provider {
        Some(p) => Subject::Credential {
            user: bounded(user),
            provider: bounded(p),
        },
        None => Subject::User {
            user: bounded(user),
        },
    };
    let principal = authenticate(state, headers, subject).await?;
    for id in std::iter::once(user).chain(provider) {
        if looks_like_a_path(id) {
            return Err(ApiError::bad_request(format!(
                "{id:?} looks like a file path; user ids and providers may not contain '/' or '\\' or be '.' or '..'"
            )));
        }
    }
    let user_id = UserId::parse(user).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let provider = provider
        .map(Provider::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !principal.may_act_on(user_id.as_str()) {
        deny(
            state,
            Some(&principal),
            subject(),
            DenialReason::NotPermitted,
        )
        .await?;
        return Err(ApiError::forbidden(
            "this token may act only on its own user's credentials",
        ));
    }
    Ok((principal, user_id, provider))
}

/// [`authorize`] for a path naming one credential (user and provider).
async fn authorize_credential(
    state: &AppState,
    headers: &HeaderMap,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<(Principal, UserId, Provider), ApiError> {
    let (user, provider) = path(p)?;
    match authorize(state, headers, &user, Some(&provider)).await? {
        (principal, user, Some(provider)) => Ok((principal, user, provider)),
        // Invariant: authorize parses the provider it is given.
        _ => Err(ApiError::internal("provider missing")),
    }
}

/// A path segment that a file-minded layer could read as traversal.
fn looks_like_a_path(id: &str) -> bool {
    id == "." || id == ".." || id.contains(['/', '\\'])
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(t)| t)
        .map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))
}

async fn configuration(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let subject = || Subject::SecretsFile {
        file: state.inner.secrets.encrypted_path().display().to_string(),
    };
    let principal = authenticate(&state, &headers, subject).await?;
    if !principal.admin {
        deny(
            &state,
            Some(&principal),
            subject(),
            DenialReason::NotPermitted,
        )
        .await?;
        return Err(ApiError::forbidden(
            "the security configuration is for administrators (a token with admin: true)",
        ));
    }
    let doc = atom_app::security_configuration(
        &state.inner.protection,
        &state.inner.secrets,
        Some(&state.inner.store),
    )
    .await?;
    Ok(Json(
        serde_json::to_value(doc).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    token: String,
}

async fn put_credential(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<PutBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let (principal, user, provider) = authorize_credential(&state, &headers, p).await?;
    let Json(body) = body.map_err(|e| {
        ApiError::new(
            e.status(),
            "bad_request",
            format!(
                "{}; send {{\"token\": \"...\"}} as application/json (at most {MAX_BODY_BYTES} bytes)",
                e.body_text()
            ),
        )
    })?;
    if body.token.is_empty() {
        return Err(ApiError::bad_request("the token is empty"));
    }
    let token = SecretString::from(body.token);
    store_for(&state, &principal)
        .put(&user, &provider, &token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_credential(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let (principal, user, provider) = authorize_credential(&state, &headers, p).await?;
    let token = store_for(&state, &principal).get(&user, &provider).await?;
    // A token must not be kept by caches between here and the client.
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "user": user.as_str(),
            "provider": provider.as_str(),
            "token": token.expose_secret(),
        })),
    ))
}

async fn list_credentials(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = path(p)?;
    let (principal, user, _) = authorize(&state, &headers, &user, None).await?;
    let items = store_for(&state, &principal).list(&user).await?;
    Ok(Json(atom_app::credential_list(&user, &items)))
}

async fn delete_credential(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let (principal, user, provider) = authorize_credential(&state, &headers, p).await?;
    if store_for(&state, &principal)
        .delete(&user, &provider)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no credential is stored for user {user} and provider {provider}"
        )))
    }
}

async fn erase_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = path(p)?;
    let (principal, user, _) = authorize(&state, &headers, &user, None).await?;
    let report = store_for(&state, &principal).erase_user(&user).await?;
    let removed: Vec<&str> = report.removed.iter().map(|c| c.provider.as_str()).collect();
    Ok(Json(json!({
        "user": user.as_str(),
        "removed": removed,
        "archived_removed": report.archived_removed,
    })))
}
