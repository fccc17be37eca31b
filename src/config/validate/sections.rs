//! The small sections: `listen`, `admin`, `retry`, `server`, `intercept` and `proxy_auth`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::{duration, number, positive_duration, Errors};
use crate::config::raw::{RawBackoff, RawIntercept, RawProxyAuth, RawRetry, RawServer, Text};
use crate::config::{Intercept, On5xx, ProxyAuth, Retry, Server};

/// Loopback, so that a config without `listen` never exposes the proxy to the network.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

const DEFAULT_RETRY: Retry = Retry {
    max_attempts: 5,
    max_retry_after: Duration::from_secs(60),
    max_pause: Duration::from_secs(60),
    backoff_base: Duration::from_millis(500),
    backoff_max: Duration::from_secs(10),
    on_5xx: On5xx::Idempotent,
    max_body: 512_000,
};

const DEFAULT_SERVER: Server = Server {
    max_header_bytes: 64 * 1024,
    max_body_bytes: 16 * 1024 * 1024,
    drain_timeout: Duration::from_secs(30),
    body_timeout: Duration::from_secs(30),
    backlog: None,
};

/// Above this many attempts a retry loop is hiding a real problem rather than riding out a
/// burst of 429s.
const MAX_ATTEMPTS: u64 = 20;

/// Smaller than this and ordinary requests with a few cookies or a long bearer token fail.
const MIN_HEADER_BYTES: u64 = 1024;

pub(super) fn listen(errs: &mut Errors, raw: Option<&Text>) -> SocketAddr {
    raw.and_then(|raw| socket_addr(errs, "listen", raw))
        .unwrap_or(DEFAULT_LISTEN)
}

pub(super) fn admin(
    errs: &mut Errors,
    raw: Option<&Text>,
    listen: SocketAddr,
) -> Option<SocketAddr> {
    let raw = raw?;
    let addr = socket_addr(errs, "admin", raw)?;
    if addr == listen {
        errs.at(
            "admin",
            raw,
            format!("{addr} is also the proxy's listen address; use another port"),
        );
    }
    Some(addr)
}

fn socket_addr(errs: &mut Errors, path: &str, raw: &Text) -> Option<SocketAddr> {
    let text = raw.value.trim();
    text.parse()
        .map_err(|_| {
            let msg = format!("{text:?} is not an IP address and port; write e.g. 127.0.0.1:8080 (a host name is not accepted here)");
            errs.at(path, raw, msg);
        })
        .ok()
}

pub(super) fn retry(errs: &mut Errors, raw: Option<&RawRetry>) -> Retry {
    let Some(raw) = raw else {
        return DEFAULT_RETRY;
    };
    let d = DEFAULT_RETRY;
    let attempts = number(
        errs,
        "retry.max_attempts",
        raw.max_attempts.as_ref(),
        d.max_attempts.into(),
        1..=MAX_ATTEMPTS,
    );
    let (backoff_base, backoff_max) = backoff(errs, raw.backoff.as_ref());
    let max_body = number(
        errs,
        "retry.max_body",
        raw.max_body.as_ref(),
        d.max_body as u64,
        0..=u64::MAX,
    );
    let max_retry_after = duration(
        errs,
        "retry.max_retry_after",
        raw.max_retry_after.as_ref(),
        d.max_retry_after,
    );
    // A zero pause would let the retry's probe go before the API's window turns.
    let max_pause = positive_duration(
        errs,
        "retry.max_pause",
        raw.max_pause.as_ref(),
        max_retry_after.max(Duration::from_millis(1)),
    );
    Retry {
        max_attempts: attempts as u32,
        max_retry_after,
        max_pause,
        backoff_base,
        backoff_max,
        on_5xx: on_5xx(errs, raw.on_5xx.as_ref()),
        max_body: usize::try_from(max_body).unwrap_or(usize::MAX),
    }
}

/// Backoff `base` and `max`, with base no larger than max.
fn backoff(errs: &mut Errors, raw: Option<&RawBackoff>) -> (Duration, Duration) {
    let d = DEFAULT_RETRY;
    let base_raw = raw.and_then(|b| b.base.as_ref());
    let max_raw = raw.and_then(|b| b.max.as_ref());
    // A zero base would turn backoff into an immediate retry loop against a throttling API.
    let base = positive_duration(errs, "retry.backoff.base", base_raw, d.backoff_base);
    let max = duration(errs, "retry.backoff.max", max_raw, d.backoff_max);
    if base > max {
        let line = max_raw.or(base_raw).and_then(super::line);
        let (base_s, max_s) = (base.as_secs_f64(), max.as_secs_f64());
        let msg = format!("base ({base_s}s) must not exceed max ({max_s}s)");
        errs.add("retry.backoff", line, msg);
    }
    (base, max)
}

fn on_5xx(errs: &mut Errors, raw: Option<&Text>) -> On5xx {
    match raw.map(|r| (r, r.value.trim())) {
        None | Some((_, "idempotent")) => On5xx::Idempotent,
        Some((_, "never")) => On5xx::Never,
        Some((raw, other)) => {
            errs.at(
                "retry.on_5xx",
                raw,
                format!("unknown value {other:?}; use never or idempotent"),
            );
            On5xx::Idempotent
        }
    }
}

pub(super) fn server(errs: &mut Errors, raw: Option<&RawServer>) -> Server {
    let Some(raw) = raw else {
        return DEFAULT_SERVER;
    };
    let d = DEFAULT_SERVER;
    let header = number(
        errs,
        "server.max_header_bytes",
        raw.max_header_bytes.as_ref(),
        d.max_header_bytes as u64,
        MIN_HEADER_BYTES..=u64::MAX,
    );
    Server {
        max_header_bytes: usize::try_from(header).unwrap_or(usize::MAX),
        max_body_bytes: number(
            errs,
            "server.max_body_bytes",
            raw.max_body_bytes.as_ref(),
            d.max_body_bytes,
            0..=u64::MAX,
        ),
        drain_timeout: duration(
            errs,
            "server.drain_timeout",
            raw.drain_timeout.as_ref(),
            d.drain_timeout,
        ),
        body_timeout: positive_duration(
            errs,
            "server.body_timeout",
            raw.body_timeout.as_ref(),
            d.body_timeout,
        ),
        // Linux caps a listen backlog at somaxconn anyway; 65535 is the kernel's own ceiling.
        backlog: raw
            .backlog
            .as_ref()
            .map(|b| number(errs, "server.backlog", Some(b), 0, 1..=65535) as u32),
    }
}

/// The CA files need not exist yet: pacer creates them on first start, so only their names are
/// checked here.
pub(super) fn intercept(
    errs: &mut Errors,
    raw: Option<&RawIntercept>,
    base: &Path,
) -> Option<Intercept> {
    let raw = raw?;
    let mut file = |field: &str, text: &Text| {
        if text.value.trim().is_empty() {
            errs.at(format!("intercept.{field}"), text, "must not be empty");
        }
        base.join(&text.value)
    };
    Some(Intercept {
        ca_cert: file("ca_cert", &raw.ca_cert),
        ca_key: file("ca_key", &raw.ca_key),
    })
}

/// The password is never part of a message, not even when it is what is wrong.
pub(super) fn proxy_auth(errs: &mut Errors, raw: Option<&RawProxyAuth>) -> Option<ProxyAuth> {
    let raw = raw?;
    for (field, text) in [("username", &raw.username), ("password", &raw.password)] {
        if text.value.is_empty() {
            errs.at(format!("proxy_auth.{field}"), text, "must not be empty");
        }
    }
    if raw.username.value.contains(':') {
        let msg = "must not contain ':', which separates user and password in Basic credentials";
        errs.at("proxy_auth.username", &raw.username, msg);
    }
    Some(ProxyAuth {
        username: raw.username.value.clone(),
        password: raw.password.value.clone(),
    })
}
