//! One request's way through the mock: read the body, then answer as the platform would.
//!
//! The whole body is read (and hashed) before any decision, 429s included, so every connection
//! stays reusable and the digest headers describe exactly what arrived.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use super::config::MockConfig;
use super::limits::Limits;
use super::responses::{self as resp, Body};
use super::stats::Stats;
use super::{basic, helpers};

/// The key requests without a bearer token share.
const ANONYMOUS: &str = "anonymous";
/// The largest `/oauth/token` form the mock reads.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Everything a request may touch, shared by all connections.
pub(crate) struct State {
    pub config: MockConfig,
    pub limits: Limits,
    pub stats: Stats,
}

/// What arrived as a request body: its length and SHA-256.
#[derive(Debug, Clone)]
pub(crate) struct Digest {
    pub bytes: u64,
    pub sha256_hex: String,
}

// === impl State ===

impl State {
    pub fn new(config: MockConfig) -> State {
        State {
            limits: Limits::new(&config),
            stats: Stats::new(Instant::now()),
            config,
        }
    }
}

/// The hyper service function.
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if path.starts_with("/__mock/") {
        return Ok(match digest(body).await {
            Ok(digest) => helpers::handle(&state, &parts, digest).await,
            Err(response) => response,
        });
    }
    let _in_flight = state.stats.begin();
    if path == "/oauth/token" {
        return Ok(oauth(&state, &parts, body).await);
    }
    let digest = match digest(body).await {
        Ok(digest) => digest,
        Err(response) => return Ok(response),
    };
    if path == "/api/v2" || path.starts_with("/api/v2/") {
        return Ok(api(&state, &parts, digest).await);
    }
    state
        .stats
        .record(&parts.method, path, false, Instant::now());
    Ok(resp::platform_error(
        StatusCode::NOT_FOUND,
        "not.found",
        "HTTP 404 Not Found",
    ))
}

/// `/api/v2/**`: auth, limits, latency, then an entity list.
async fn api(state: &State, parts: &Parts, digest: Option<Digest>) -> Response<Body> {
    let config = &state.config;
    let (method, path) = (&parts.method, parts.uri.path());
    let token = bearer(&parts.headers);
    if config.require_auth && token.is_none() {
        state.stats.record(method, path, false, Instant::now());
        return resp::platform_error(
            StatusCode::UNAUTHORIZED,
            "bad.credentials",
            "No authentication bearer token specified in authorization header.",
        );
    }
    let route = config.route(method, path);
    let now = Instant::now();
    let admitted = match state
        .limits
        .check(route.map(|(i, _)| i), token.unwrap_or(ANONYMOUS), now)
    {
        Ok(admitted) => admitted,
        Err(throttled) => {
            state.stats.record(method, path, true, now);
            let mut response = resp::too_many(throttled.retry_after, config.retry_after);
            resp::add_rate_status(
                response.headers_mut(),
                throttled.status,
                config.ratelimit_headers,
            );
            return response;
        }
    };
    state.stats.record(method, path, false, now);
    let latency = route.and_then(|(_, r)| r.latency).unwrap_or(config.latency);
    pause(latency).await;
    let mut response = resp::entity_list();
    resp::add_rate_status(
        response.headers_mut(),
        admitted.status,
        config.ratelimit_headers,
    );
    if let Some(d) = digest {
        resp::add_digest(response.headers_mut(), d.bytes, &d.sha256_hex);
    }
    // The concurrency slot is held until here, through the latency.
    drop(admitted);
    response
}

/// `POST /oauth/token` with client credentials: any well-formed client id and secret pass.
async fn oauth(state: &State, parts: &Parts, body: Incoming) -> Response<Body> {
    state
        .stats
        .record(&parts.method, parts.uri.path(), false, Instant::now());
    if parts.method != Method::POST {
        return resp::oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "use POST",
        );
    }
    let form = match Limited::new(body, MAX_FORM_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return resp::oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "unreadable form body",
            )
        }
    };
    if basic::client_id(&parts.headers).is_none() {
        return resp::oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client not found",
        );
    }
    match grant_type(&form).as_deref() {
        Some("client_credentials") => {}
        None => {
            return resp::oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            )
        }
        Some(_) => {
            return resp::oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant type not supported",
            )
        }
    }
    pause(state.config.latency).await;
    state.stats.token_issued();
    resp::token(&Alphanumeric.sample_string(&mut rand::rng(), 64))
}

fn grant_type(form: &Bytes) -> Option<String> {
    url::form_urlencoded::parse(form)
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned())
}

/// The token of `Authorization: Bearer <token>`, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Reads and hashes the whole body; None when the request had none.
pub(crate) async fn digest(mut body: Incoming) -> Result<Option<Digest>, Response<Body>> {
    if body.is_end_stream() {
        return Ok(None);
    }
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            resp::platform_error(
                StatusCode::BAD_REQUEST,
                "bad.request",
                "The request body could not be read.",
            )
        })?;
        if let Some(data) = frame.data_ref() {
            hasher.update(data);
            bytes += data.len() as u64;
        }
    }
    Ok(Some(Digest {
        bytes,
        sha256_hex: hex(&hasher.finalize()),
    }))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

async fn pause(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}
