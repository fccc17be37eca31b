//! `/__mock/*`: helpers for tests and rehearsals. They are never rate-limited and never counted,
//! so checking on the mock does not change what it reports.

use std::time::Duration;

use http::header::{HeaderValue, RETRY_AFTER};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::responses::{self as resp, Body};
use super::service::{Digest, State};

/// The longest `/__mock/delay/{ms}` honoured, so a typo cannot park a connection for days.
const MAX_DELAY: Duration = Duration::from_secs(600);

/// Dispatches one `/__mock/...` request.
pub(crate) async fn handle(state: &State, parts: &Parts, digest: Option<Digest>) -> Response<Body> {
    let rest = parts.uri.path().trim_start_matches("/__mock/");
    let (name, arg) = rest.split_once('/').unwrap_or((rest, ""));
    match (name, &parts.method) {
        ("echo", _) => echo(parts, digest),
        ("delay", _) => delay(arg).await,
        ("status", _) => status(arg, parts.uri.query()),
        ("stats", &Method::GET) => value(StatusCode::OK, state.stats.snapshot()),
        ("reset", &Method::POST) => {
            let now = Instant::now();
            state.limits.reset();
            state.stats.reset(now);
            value(StatusCode::OK, json!({ "reset": true }))
        }
        ("stats", _) | ("reset", _) => message(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET for stats, POST for reset",
        ),
        _ => message(StatusCode::NOT_FOUND, "no such mock helper"),
    }
}

/// Everything the mock received: method, URI, every header (credentials too: it is a mock) and
/// the body's length and SHA-256.
fn echo(parts: &Parts, digest: Option<Digest>) -> Response<Body> {
    let mut headers: Map<String, Value> = Map::new();
    for (name, value) in &parts.headers {
        let value = Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match headers.get_mut(name.as_str()) {
            Some(Value::Array(values)) => values.push(value),
            _ => {
                headers.insert(name.as_str().to_owned(), Value::Array(vec![value]));
            }
        }
    }
    let digest = digest.unwrap_or_else(|| Digest {
        bytes: 0,
        sha256_hex: super::service::hex(&<sha2::Sha256 as sha2::Digest>::digest(b"")),
    });
    value(
        StatusCode::OK,
        json!({
            "method": parts.method.as_str(),
            "uri": parts.uri.to_string(),
            "headers": headers,
            "body_bytes": digest.bytes,
            "body_sha256": digest.sha256_hex,
        }),
    )
}

async fn delay(arg: &str) -> Response<Body> {
    let Ok(ms) = arg.parse::<u64>() else {
        return message(StatusCode::BAD_REQUEST, "use /__mock/delay/{milliseconds}");
    };
    let wait = Duration::from_millis(ms).min(MAX_DELAY);
    tokio::time::sleep(wait).await;
    value(
        StatusCode::OK,
        json!({ "delayed_ms": wait.as_millis() as u64 }),
    )
}

/// Answers `code`; `?retry_after=VALUE` adds that `Retry-After` header verbatim.
fn status(arg: &str, query: Option<&str>) -> Response<Body> {
    let code = arg.parse::<u16>().ok().filter(|c| (200..=599).contains(c));
    let Some(code) = code.and_then(|c| StatusCode::from_u16(c).ok()) else {
        return message(StatusCode::BAD_REQUEST, "use /__mock/status/{200..599}");
    };
    let mut response = value(
        code,
        json!({
            "message": format!("Mock status {}", code.as_u16()),
            "code": "mock.status",
            "status": code.as_u16(),
            "contextId": resp::uuid().to_string(),
            "details": [],
            "errors": [],
        }),
    );
    let retry_after = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "retry_after")
            .and_then(|(_, v)| HeaderValue::from_str(&v).ok())
    });
    if let Some(v) = retry_after {
        response.headers_mut().insert(RETRY_AFTER, v);
    }
    // These statuses cannot carry a body in HTTP/1.1.
    if matches!(code, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
        *response.body_mut() = Body::default();
    }
    response
}

fn value(status: StatusCode, body: Value) -> Response<Body> {
    resp::json(status, body.to_string())
}

fn message(status: StatusCode, text: &str) -> Response<Body> {
    value(
        status,
        json!({ "message": text, "status": status.as_u16() }),
    )
}
