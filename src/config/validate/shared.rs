//! `shared`: the Redis that shared limits keep their state in, and `shared: true` on limits.

use std::path::Path;
use std::time::Duration;

use super::upstream::readable_file;
use super::{number, positive_duration, Errors};
use crate::config::raw::{Named, RawLimit, RawShared, Text};
use crate::config::{OnUnavailable, SharedStore};

/// One Redis round trip on loopback or in one zone is well under a millisecond; 50 ms tells a
/// Redis that is gone from one that is busy without letting a request hang on it.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// The environment variable a password comes from when the URL has none.
pub const PASSWORD_ENV: &str = "PACER_REDIS_PASSWORD";

/// The section, with the names of the limits that use it; `shared: true` without it is an error.
pub(super) fn shared(
    errs: &mut Errors,
    raw: Option<&RawShared>,
    limits: Option<&Named<RawLimit>>,
    base: &Path,
) -> Option<SharedStore> {
    let names = shared_limits(errs, raw.is_some(), limits);
    let raw = raw?;
    let redis = redis_url(errs, raw);
    let key_prefix = match &raw.key_prefix {
        Some(p) if p.value.trim().is_empty() => {
            errs.at("shared.key_prefix", p, "must not be empty");
            String::new()
        }
        Some(p) => p.value.clone(),
        None => "pacer".to_owned(),
    };
    let key_secret = secret(errs, raw);
    let instances = number(
        errs,
        "shared.instances",
        raw.instances.as_ref(),
        1,
        1..=10_000,
    );
    let timeout = positive_duration(
        errs,
        "shared.timeout",
        raw.timeout.as_ref(),
        DEFAULT_TIMEOUT,
    );
    let on_unavailable = on_unavailable(errs, raw.on_unavailable.as_ref());
    let tls_ca = tls_ca(errs, raw, redis.as_ref(), base);
    Some(SharedStore {
        redis: redis?,
        key_prefix,
        key_secret: key_secret?,
        timeout,
        on_unavailable,
        instances: instances as u32,
        limits: names,
        tls_ca,
    })
}

/// The limits with `shared: true`, which need the `shared` section to know where their state
/// lives.
fn shared_limits(errs: &mut Errors, section: bool, raw: Option<&Named<RawLimit>>) -> Vec<String> {
    let mut names = Vec::new();
    for (name, limit) in raw.iter().flat_map(|n| &n.entries) {
        let Some(flag) = limit.shared.as_ref().filter(|s| s.value) else {
            continue;
        };
        if !section {
            let msg =
                "a shared limit needs the `shared:` section (redis, key_prefix, key_secret_env)";
            errs.at(format!("limits.{}.shared", name.value), flag, msg);
        }
        names.push(name.value.clone());
    }
    names
}

fn redis_url(errs: &mut Errors, raw: &RawShared) -> Option<url::Url> {
    let Some(text) = &raw.redis else {
        errs.add(
            "shared.redis",
            None,
            "is required, e.g. redis: redis://127.0.0.1:6379/0",
        );
        return None;
    };
    let mut url = match url::Url::parse(&text.value) {
        Ok(u) => u,
        Err(e) => {
            errs.at("shared.redis", text, format!("not a URL ({e})"));
            return None;
        }
    };
    match url.scheme() {
        "redis" | "rediss" if url.has_host() => {}
        _ => {
            errs.at(
                "shared.redis",
                text,
                "must be redis://HOST[:PORT][/DB] or rediss:// for TLS, e.g. redis://127.0.0.1:6379/0",
            );
            return None;
        }
    }
    if url.password().is_none() {
        if let Ok(password) = std::env::var(PASSWORD_ENV) {
            // Only fails for URLs that cannot have a password, which the scheme check excludes.
            let _ = url.set_password(Some(&password));
        }
    }
    Some(url)
}

/// `shared.tls.ca_file`: PEM certificates to check a `rediss://` Redis against (a private CA or
/// a self-signed certificate), read and checked now so a bad file is an error with its line.
fn tls_ca(
    errs: &mut Errors,
    raw: &RawShared,
    url: Option<&url::Url>,
    base: &Path,
) -> Option<Vec<u8>> {
    let text = raw.tls.as_ref()?.ca_file.as_ref()?;
    let path = "shared.tls.ca_file";
    if url.is_some_and(|u| u.scheme() != "rediss") {
        errs.at(
            path,
            text,
            "applies to TLS only; use a rediss:// URL in shared.redis",
        );
        return None;
    }
    let file = readable_file(errs, path, text, base)?;
    let pem = std::fs::read(&file).ok()?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<Vec<_>, _>>();
    match certs {
        Ok(c) if !c.is_empty() => Some(pem),
        Ok(_) => {
            let msg = format!("{} holds no PEM certificate", file.display());
            errs.at(path, text, msg);
            None
        }
        Err(e) => {
            errs.at(path, text, format!("{}: not PEM ({e})", file.display()));
            None
        }
    }
}

/// The secret itself is never part of a message.
fn secret(errs: &mut Errors, raw: &RawShared) -> Option<Vec<u8>> {
    let Some(var) = &raw.key_secret_env else {
        let msg = "is required: the environment variable holding the secret that keys in Redis are an HMAC with";
        errs.add("shared.key_secret_env", None, msg);
        return None;
    };
    match std::env::var(&var.value) {
        Ok(s) if s.len() >= 16 => Some(s.into_bytes()),
        Ok(_) => {
            let msg = format!("the secret in {} must be at least 16 bytes", var.value);
            errs.at("shared.key_secret_env", var, msg);
            None
        }
        Err(_) => {
            let msg = format!("environment variable {} is not set", var.value);
            errs.at("shared.key_secret_env", var, msg);
            None
        }
    }
}

fn on_unavailable(errs: &mut Errors, raw: Option<&Text>) -> OnUnavailable {
    match raw.map(|t| t.value.as_str()) {
        None | Some("local") => OnUnavailable::Local,
        Some("reject") => OnUnavailable::Reject,
        Some("allow") => OnUnavailable::Allow,
        Some(other) => {
            let msg = format!("unknown value {other:?}; use local, reject or allow");
            errs.at("shared.on_unavailable", raw.unwrap(), msg);
            OnUnavailable::Local
        }
    }
}
