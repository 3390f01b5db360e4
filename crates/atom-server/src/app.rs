//! The router: routes, authentication and the mapping of requests to the
//! library crates.

use std::sync::Arc;

use atom_audit::{Action, Actor, Auditor, DenialReason, Subject};
use atom_credentials::{CredentialStore, Provider, UserId};
use atom_crypto::{ExposeSecret as _, Protection, SecretString};
use atom_secrets_file::SecretsDir;
use std::net::IpAddr;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse as _;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Authenticator, Principal};
use crate::denials::{DenialLimits, Denials, Gate};
use crate::error::ApiError;

/// The largest request body accepted, in bytes: a token plus JSON framing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    denials: Arc<Denials>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The rotation state file whose progress `/metrics` exports.
    rotation_state: Option<Arc<std::path::Path>>,
    /// The primary key's age and the rotation policy, for `/metrics`.
    key_policy: Option<Arc<crate::metrics::KeyPolicy>>,
}

struct Inner {
    store: CredentialStore,
    protection: Protection,
    secrets: SecretsDir,
    auth: Authenticator,
    auditor: Auditor,
}

impl AppState {
    /// State over an open store. Bearer tokens are checked by `auth` (a
    /// [`crate::JwtKeys`] or a [`crate::ProviderVerifier`]); `auditor`
    /// records authentication denials; the store records its own operations.
    pub fn new(
        store: CredentialStore,
        protection: Protection,
        secrets: SecretsDir,
        auth: impl Into<Authenticator>,
        auditor: Auditor,
    ) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store,
                protection,
                secrets,
                auth: auth.into(),
                auditor,
            }),
            denials: Arc::new(Denials::new(DenialLimits::default())),
            metrics: crate::metrics::handle(),
            rotation_state: None,
            key_policy: None,
        }
    }

    /// The same state exporting the age of `primary` (introduced as the
    /// key ages file `ages` says, if there is one) against a policy of
    /// `max_age_days`.
    pub fn with_key_policy(
        mut self,
        primary: atom_crypto::KeyId,
        ages: Option<&std::path::Path>,
        max_age_days: u32,
    ) -> AppState {
        self.key_policy = Some(Arc::new(crate::metrics::KeyPolicy {
            primary,
            ages: ages.map(std::path::Path::to_path_buf),
            max_age_days,
        }));
        self
    }

    /// The same state exporting the progress of the rotation whose state
    /// file is `path` (`.atom-rotation.json` next to the primary key file).
    pub fn with_rotation_state(mut self, path: &std::path::Path) -> AppState {
        self.rotation_state = Some(Arc::from(path));
        self
    }

    /// The same state with other limits on refused requests.
    pub fn with_denial_limits(mut self, limits: DenialLimits) -> AppState {
        self.denials = Arc::new(Denials::new(limits));
        self
    }

    /// Records the count of refused requests of every window that has
    /// ended (`all`: of every window), one event per source. Run it every
    /// window ([`AppState::record_denials_every_window`]) and at shutdown.
    pub async fn record_denials(&self, all: bool) -> Result<(), atom_audit::AuditError> {
        for action in self.denials.sweep(all) {
            self.inner.auditor.record(action).await?;
        }
        Ok(())
    }

    /// Runs [`AppState::record_denials`] once a window, for ever.
    pub async fn record_denials_every_window(self) {
        let mut tick = tokio::time::interval(self.denials.window());
        loop {
            tick.tick().await;
            if let Err(e) = self.record_denials(false).await {
                tracing::error!(error = %e, "could not record the count of refused requests");
            }
        }
    }

    /// The auditor, to flush at shutdown.
    pub fn auditor(&self) -> &Auditor {
        &self.inner.auditor
    }
}

/// How long `/readyz` waits for each check: its answer comes within about
/// this, below the 2 s an orchestrator's probe is commonly given.
pub(crate) const READY_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1500);

/// The largest request head accepted (request line and headers), in bytes;
/// a larger one gets 431.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// The most headers a request may have; more get 431.
pub const MAX_HEADERS: usize = 100;

/// The application's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(limit_headers))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see the README for the API")
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on this path; see the README for the API"),
    )
}

/// 431 for a request whose head is larger than [`MAX_HEADER_BYTES`].
async fn limit_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let head: usize = req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    let count = req.headers().len();
    if head > MAX_HEADER_BYTES || count > MAX_HEADERS {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {count} headers of {head} bytes with its request line; at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes are accepted"
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// Liveness: the process answers. Nothing else is checked.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and the audit sink can record (the
/// file sink is not poisoned and its path still names the open log). 503
/// with the failing checks otherwise; nothing is read, written or audited.
async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    let (database, audit) = readiness(&state).await;
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    let checks = json!({ "database": word(database.is_ok()), "audit": word(audit.is_ok()) });
    if database.is_ok() && audit.is_ok() {
        return Json(json!({ "status": "ready", "checks": checks })).into_response();
    }
    if let Err(e) = &database {
        tracing::warn!(error = %e, "not ready: the database does not answer");
    }
    if let Err(e) = &audit {
        tracing::warn!(error = %e, "not ready: the audit sink cannot record");
    }
    let failing: Vec<&str> = [("database", database.is_err()), ("audit", audit.is_err())]
        .into_iter()
        .filter_map(|(name, failed)| failed.then_some(name))
        .collect();
    // The error shape of every answer, with the checks beside it.
    let body = json!({
        "error": {
            "code": "not_ready",
            "message": format!("not ready: {} failing; the server log says why", failing.join(" and ")),
        },
        "checks": checks,
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// The readiness checks, each under its deadline (the answer comes within
/// the time an orchestrator's probe waits, whatever the database does);
/// they also set the `atom_ready` gauges.
async fn readiness(state: &AppState) -> (Result<(), String>, Result<(), String>) {
    let deadline = |what: &'static str| {
        move |_| {
            format!(
                "no answer within {} ms ({what})",
                READY_DEADLINE.as_millis()
            )
        }
    };
    let (database, audit) = tokio::join!(
        async {
            tokio::time::timeout(READY_DEADLINE, state.inner.store.ping())
                .await
                .map_err(deadline("database"))
                .and_then(|r| r.map_err(|e| e.to_string()))
        },
        async {
            tokio::time::timeout(READY_DEADLINE, state.inner.auditor.check())
                .await
                .map_err(deadline("audit"))
                .and_then(|r| r.map_err(|e| e.to_string()))
        },
    );
    crate::metrics::record_readiness(database.is_ok(), audit.is_ok());
    (database, audit)
}

/// The metrics in Prometheus text format (see the `metrics` module for
/// what is counted; nothing secret, no user ids).
async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    let Some(handle) = &state.metrics else {
        return ApiError::unavailable(
            "metrics are off: this process had another metrics recorder installed",
        )
        .into_response();
    };
    crate::metrics::record_pool(state.inner.store.pool_usage());
    // The readiness checks, so that an alert sees a failing check without
    // anyone calling /readyz (nothing is written or audited).
    let _ = readiness(&state).await;
    if let Some(path) = &state.rotation_state {
        crate::metrics::record_rotation(path);
    }
    if let Some(policy) = &state.key_policy {
        crate::metrics::record_key_age(policy);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Who sent a request: its source address (for counting refusals) and its
/// `Authorization` header.
struct Caller {
    source: Option<IpAddr>,
    authorization: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, Self::Rejection> {
        Ok(Caller {
            source: crate::serve::peer(parts).map(|a| a.ip()),
            authorization: parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

/// Authenticates the request; a failure is a refusal of `subject`.
async fn authenticate(
    state: &AppState,
    caller: &Caller,
    subject: impl FnOnce() -> Subject,
) -> Result<Principal, ApiError> {
    match state
        .inner
        .auth
        .authenticate(caller.authorization.as_deref())
        .await
    {
        Ok(principal) => Ok(principal),
        Err(err) => {
            deny(
                state,
                caller,
                None,
                subject(),
                DenialReason::NotAuthenticated,
            )
            .await?;
            Err(ApiError::unauthorized(err.to_string()))
        }
    }
}

/// Counts a refusal of `caller` and audits it: the first of its window as
/// an event of its own, the rest as one count per window (see
/// [`crate::denials`]). Past the limit the answer is 429; if the refusal
/// cannot be recorded it is 503.
async fn deny(
    state: &AppState,
    caller: &Caller,
    principal: Option<&Principal>,
    subject: Subject,
    reason: DenialReason,
) -> Result<(), ApiError> {
    let auditor = match principal {
        Some(p) => state.inner.auditor.acting_as(actor(p)),
        None => state.inner.auditor.clone(),
    };
    let unavailable = |e: atom_audit::AuditError| {
        tracing::error!(error = %e, "could not record an access denial");
        ApiError::unavailable("the audit log is unavailable; try again later")
    };
    metrics::counter!("atom_requests_refused_total", "reason" => reason.as_str()).increment(1);
    let (gate, ended) = state.denials.refused(caller.source);
    if let Some(aggregate) = ended {
        state
            .inner
            .auditor
            .record(aggregate)
            .await
            .map_err(unavailable)?;
    }
    match gate {
        Gate::Record => auditor
            .record(Action::AccessDenied { subject, reason })
            .await
            .map_err(unavailable),
        Gate::Count => Ok(()),
        Gate::Refuse => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_denials",
            "too many refused requests from this address; wait a few seconds",
        )),
    }
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
    caller: &Caller,
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
    let principal = authenticate(state, caller, subject).await?;
    // One rule for ids, the library's: the CLI and the Python package
    // parse them the same way.
    let user_id = UserId::parse(user).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let provider = provider
        .map(Provider::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !principal.may_act_on(user_id.as_str()) {
        deny(
            state,
            caller,
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
    caller: &Caller,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<(Principal, UserId, Provider), ApiError> {
    let (user, provider) = path(p)?;
    match authorize(state, caller, &user, Some(&provider)).await? {
        (principal, user, Some(provider)) => Ok((principal, user, provider)),
        // Invariant: authorize parses the provider it is given.
        _ => Err(ApiError::internal("provider missing")),
    }
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(t)| t)
        .map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))
}

async fn configuration(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let subject = || Subject::Endpoint {
        path: "/api/security/configuration".to_owned(),
    };
    let principal = authenticate(&state, &caller, subject).await?;
    if !principal.admin {
        deny(
            &state,
            &caller,
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

/// The PUT body: a JSON object `{"token": "..."}` and nothing else. A JSON
/// array would deserialize into the struct by position; it is refused.
fn put_body(body: Result<Json<Value>, JsonRejection>) -> Result<PutBody, ApiError> {
    const SHAPE: &str = "send {\"token\": \"...\"} as application/json";
    let Json(value) = body.map_err(|e| {
        let (code, what) = match &e {
            JsonRejection::MissingJsonContentType(_) => (
                "unsupported_media_type",
                "the body is not declared as JSON (content-type: application/json)".to_owned(),
            ),
            JsonRejection::JsonSyntaxError(_) => {
                ("invalid_json", "the body is not valid JSON".to_owned())
            }
            JsonRejection::JsonDataError(_) => (
                "invalid_body",
                "the body is not the expected JSON".to_owned(),
            ),
            _ if e.status() == StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            ),
            _ => ("bad_request", "the body cannot be read".to_owned()),
        };
        ApiError::new(e.status(), code, format!("{what}; {SHAPE}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the body must be a JSON object; {SHAPE}"),
        ));
    }
    serde_json::from_value(value).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the body must hold exactly one field, a string \"token\"; {SHAPE}"),
        )
    })
}

async fn put_credential(
    State(state): State<AppState>,
    caller: Caller,
    p: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let (principal, user, provider) = authorize_credential(&state, &caller, p).await?;
    let body = put_body(body)?;
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
    caller: Caller,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let (principal, user, provider) = authorize_credential(&state, &caller, p).await?;
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
    caller: Caller,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = path(p)?;
    let (principal, user, _) = authorize(&state, &caller, &user, None).await?;
    let items = store_for(&state, &principal).list(&user).await?;
    Ok(Json(atom_app::credential_list(&user, &items)))
}

async fn delete_credential(
    State(state): State<AppState>,
    caller: Caller,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let (principal, user, provider) = authorize_credential(&state, &caller, p).await?;
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
    caller: Caller,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = path(p)?;
    let (principal, user, _) = authorize(&state, &caller, &user, None).await?;
    let report = store_for(&state, &principal).erase_user(&user).await?;
    let removed: Vec<&str> = report.removed.iter().map(|c| c.provider.as_str()).collect();
    Ok(Json(json!({
        "user": user.as_str(),
        "removed": removed,
        "archived_removed": report.archived_removed,
    })))
}
