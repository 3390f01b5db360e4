//! Prometheus metrics (`GET /metrics`): what the server counts, and the
//! middleware that counts requests.
//!
//! | metric | labels |
//! | --- | --- |
//! | `atom_http_requests_total` | `route` (the path template), `method`, `status` |
//! | `atom_http_request_duration_seconds` (histogram) | `route`, `method` |
//! | `atom_http_requests_in_flight` (gauge) | |
//! | `atom_audit_records_total` (atom-audit) | `result`: `recorded`, `failed` |
//! | `atom_decrypt_failures_total` (atom-credentials) | `reason`: the audit log's reason names |
//! | `atom_requests_refused_total` | `reason`: the audit log's denial reasons |
//! | `atom_db_pool_connections` (gauge, read at each scrape) | `state`: `open`, `idle`, `max` |
//! | `atom_ready` (gauge, the `/readyz` checks, run at each scrape too) | `check`: `database`, `audit` |
//! | `atom_jwks_fetches_total` (identity provider keys) | `result`: `ok`, `failed` |
//! | `atom_rotation_phase` (gauge, from the rotation state file at each scrape) | `phase`: 1 for the phase reached, 0 for the others |
//! | `atom_rotation_rows_rewrapped`, `atom_rotation_secrets_rewrapped`, `atom_rotation_updated_timestamp_seconds` (gauges, likewise) | |
//! | `atom_key_max_age_seconds` (gauge): the rotation policy (`ATOM_KEY_MAX_AGE_DAYS`) | |
//! | `atom_primary_key_age_seconds` (gauge, read at each scrape from the key ages file beside the key files), `atom_primary_key_age_known` (1, or 0 for a key of unknown age) | |
//!
//! Every label value comes from a fixed set, never from the request or a
//! user: routes are path templates
//! (`/api/users/{user}/credentials/{provider}`), and a path that matches no
//! route is `unmatched`; methods are the nine of RFC 9110 and PATCH, any
//! other is `other`; statuses are those the server answers (the README's
//! table), any other is its class (`2xx`...). So no label holds a user id,
//! provider, token or address, and no client can grow the number of series.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's Prometheus recorder, installed on first use. `None` when
/// the process already has another metrics recorder (a host embedding this
/// crate with its own): `/metrics` then says so.
pub(crate) fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("atom_http_request_duration_seconds".to_owned()),
                    LATENCY_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    register_series();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics disabled: the process already has a metrics recorder");
                    None
                }
            }
        })
        .clone()
}

/// Every series an alert or the dashboard reads exists from the start, at
/// zero: `increase()` then sees the first failure, and a renamed metric
/// shows at once (deploy/prometheus, deploy/grafana).
fn register_series() {
    for result in ["recorded", "failed"] {
        metrics::counter!("atom_audit_records_total", "result" => result).increment(0);
    }
    for reason in atom_crypto::OpenFailure::ALL {
        metrics::counter!("atom_decrypt_failures_total", "reason" => reason.as_str()).increment(0);
    }
    for reason in atom_audit::DenialReason::ALL {
        metrics::counter!("atom_requests_refused_total", "reason" => reason.as_str()).increment(0);
    }
    for result in ["ok", "failed"] {
        metrics::counter!("atom_jwks_fetches_total", "result" => result).increment(0);
    }
    metrics::gauge!("atom_http_requests_in_flight").set(0.0);
}

/// The readiness gauges (`atom_ready{check}`: 1 ready, 0 failing), set by
/// `/readyz` and at each scrape.
pub(crate) fn record_readiness(database: bool, audit: bool) {
    for (check, ok) in [("database", database), ("audit", audit)] {
        metrics::gauge!("atom_ready", "check" => check).set(if ok { 1.0 } else { 0.0 });
    }
}

/// Counts every request by route template, method and status, and times it.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let started = Instant::now();
    let in_flight = metrics::gauge!("atom_http_requests_in_flight");
    in_flight.increment(1.0);
    let response = next.run(req).await;
    in_flight.decrement(1.0);
    let status = status_label(response.status());
    metrics::histogram!(
        "atom_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "atom_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status
    )
    .increment(1);
    response
}

/// The `method` label: a method of RFC 9110 (or PATCH) by name, any other
/// `other`. Methods are tokens of any length that a client may invent; as
/// labels they would make a series each.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The `status` label: a status the server answers by its number (the
/// README's table), any other by its class.
pub(crate) fn status_label(status: StatusCode) -> &'static str {
    const ANSWERED: [&str; 16] = [
        "200", "204", "400", "401", "403", "404", "405", "408", "409", "413", "415", "422", "429",
        "431", "500", "503",
    ];
    let code = status.as_str();
    if let Some(known) = ANSWERED.iter().find(|known| **known == code) {
        return known;
    }
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Sets the pool gauges from `usage` (read at each scrape).
pub(crate) fn record_pool(usage: atom_credentials::PoolUsage) {
    for (state, n) in [
        ("open", usage.open),
        ("idle", usage.idle),
        ("max", usage.max),
    ] {
        metrics::gauge!("atom_db_pool_connections", "state" => state).set(f64::from(n));
    }
}

/// The phases a rotation goes through, as `atom_rotation_phase` labels;
/// `none` when no rotation state file exists.
const PHASES: &[&str] = &[
    "none",
    "introduced",
    "promoting",
    "promoted",
    "rewrapped",
    "verified",
    "finished",
];

/// Rotation progress from the state file `atom keys rotate` writes (next to
/// the primary key file), read at each scrape: an operator watching the
/// server sees a rotation run by another process move. A file that cannot
/// be read leaves the gauges as they were and is logged.
pub(crate) fn record_rotation(state_file: &std::path::Path) {
    let state = match atom_rotation::RotationState::load(state_file) {
        Ok(state) => state,
        Err(e) => {
            tracing::warn!(error = %e, "rotation progress not exported");
            return;
        }
    };
    let current = state.as_ref().map_or("none", |s| s.phase.as_str());
    for phase in PHASES {
        let on = if *phase == current { 1.0 } else { 0.0 };
        metrics::gauge!("atom_rotation_phase", "phase" => *phase).set(on);
    }
    let (rows, secrets, updated) = state.map_or((0, false, 0), |s| {
        (
            s.rows_rewrapped,
            s.secrets_rewrapped,
            s.updated_at.timestamp(),
        )
    });
    // Counts far below 2^53: exact as f64.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("atom_rotation_rows_rewrapped").set(rows as f64);
    metrics::gauge!("atom_rotation_secrets_rewrapped").set(if secrets { 1.0 } else { 0.0 });
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("atom_rotation_updated_timestamp_seconds").set(updated as f64);
}

/// The primary key and where its introduction is recorded, against the
/// rotation policy.
#[derive(Debug)]
pub(crate) struct KeyPolicy {
    pub(crate) primary: atom_crypto::KeyId,
    pub(crate) ages: Option<std::path::PathBuf>,
    pub(crate) max_age_days: u32,
}

/// Sets the key age gauges (read at each scrape): a key of unknown age
/// (no record, keys from the environment) is exported as unknown, never
/// as new.
pub(crate) fn record_key_age(policy: &KeyPolicy) {
    metrics::gauge!("atom_key_max_age_seconds").set(f64::from(policy.max_age_days) * 86_400.0);
    let ages = match &policy.ages {
        Some(path) => match atom_rotation::KeyAges::load(path) {
            Ok(ages) => Some(ages),
            Err(e) => {
                tracing::warn!(error = %e, "key age not exported");
                None
            }
        },
        None => None,
    };
    let age = ages.and_then(|a| a.age(policy.primary, chrono::Utc::now()));
    match age {
        Some(age) => {
            // Seconds of a key's age: far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("atom_primary_key_age_seconds").set(age.num_seconds().max(0) as f64);
            metrics::gauge!("atom_primary_key_age_known").set(1.0);
        }
        None => metrics::gauge!("atom_primary_key_age_known").set(0.0),
    }
}
