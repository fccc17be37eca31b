//! `upstreams` and `default_upstream`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::{check_name, join, line, list, number, positive_duration, Errors};
use crate::config::raw::{Name, Named, RawTimeouts, RawUpstream, Text};
use crate::config::{region_base_url, RetryAfterUnit, Upstream, REGIONS};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Like the header-read timeout: an API streaming a large answer sends something far more often.
const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per upstream and worker thread: enough for the concurrency a limited
/// API sees, few enough that a burst of clients does not leave thousands open for `IDLE`.
const DEFAULT_MAX_IDLE: u64 = 128;

/// Which upstream already claimed each host, so a host listed twice is caught: pacer picks the
/// upstream by host, and two owners would make that choice depend on file order.
type HostOwners = HashMap<String, String>;

pub(super) fn upstreams(
    errs: &mut Errors,
    raw: Option<&Named<RawUpstream>>,
    base: &Path,
) -> Vec<Upstream> {
    let Some(named) = raw.filter(|n| !n.entries.is_empty()) else {
        errs.add(
            "upstreams",
            raw.and_then(|n| n.line),
            "at least one upstream is required, e.g. `upstreams: {genesys: {region: us-east-1}}`",
        );
        return Vec::new();
    };
    let mut owners = HostOwners::new();
    let mut out = Vec::new();
    for (name, raw) in &named.entries {
        let path = join("upstreams", &name.value);
        check_name(errs, &path, name);
        if let Some(upstream) = upstream(errs, &path, name, raw, base, &mut owners) {
            out.push(upstream);
        }
    }
    out
}

fn upstream(
    errs: &mut Errors,
    path: &str,
    name: &Name,
    raw: &RawUpstream,
    base: &Path,
    owners: &mut HostOwners,
) -> Option<Upstream> {
    let base_url = base_url(errs, path, name, raw);
    let hosts = hosts(errs, path, name, raw, base_url.as_ref(), owners);
    let ca_file = raw.tls.as_ref().and_then(|tls| tls.ca_file.as_ref());
    let ca_file = ca_file.and_then(|f| readable_file(errs, &join(path, "tls.ca_file"), f, base));
    let timeouts = raw.timeouts.as_ref();
    let mut timeout = |key: &str, field: fn(&RawTimeouts) -> Option<&Text>, default| {
        let raw = timeouts.and_then(field);
        positive_duration(errs, &join(path, &format!("timeouts.{key}")), raw, default)
    };
    let connect_timeout = timeout("connect", |t| t.connect.as_ref(), DEFAULT_CONNECT_TIMEOUT);
    let request_timeout = timeout("request", |t| t.request.as_ref(), DEFAULT_REQUEST_TIMEOUT);
    let body_idle_timeout = timeout(
        "body_idle",
        |t| t.body_idle.as_ref(),
        DEFAULT_BODY_IDLE_TIMEOUT,
    );
    let max_idle = number(
        errs,
        &join(path, "max_idle"),
        raw.max_idle.as_ref(),
        DEFAULT_MAX_IDLE,
        0..=100_000,
    ) as usize;
    Some(Upstream {
        name: name.value.clone(),
        base_url: base_url?,
        hosts,
        ca_file,
        connect_timeout,
        request_timeout,
        body_idle_timeout,
        max_idle,
        intercept: raw.intercept.unwrap_or(true),
        retry_after_unit: retry_after_unit(errs, path, raw.retry_after_unit.as_ref()),
    })
}

fn retry_after_unit(errs: &mut Errors, path: &str, raw: Option<&Text>) -> RetryAfterUnit {
    match raw.map(|t| t.value.trim()) {
        None | Some("seconds") => RetryAfterUnit::Seconds,
        Some("milliseconds") => RetryAfterUnit::Milliseconds,
        Some(other) => {
            let msg = format!("unknown unit {other:?}; use seconds or milliseconds");
            errs.at(
                join(path, "retry_after_unit"),
                raw.expect("matched Some"),
                msg,
            );
            RetryAfterUnit::Seconds
        }
    }
}

/// The base URL from exactly one of `region` and `base_url`.
fn base_url(errs: &mut Errors, path: &str, name: &Name, raw: &RawUpstream) -> Option<Url> {
    match (&raw.region, &raw.base_url) {
        (Some(_), Some(_)) => {
            errs.add(
                path,
                name.line,
                "set either region or base_url, not both (a region is a preset base_url)",
            );
            None
        }
        (None, None) => {
            errs.add(
                path,
                name.line,
                "set region (e.g. us-east-1) or base_url (e.g. https://api.mypurecloud.com)",
            );
            None
        }
        (Some(region), None) => match region_base_url(&region.value) {
            Some(preset) => Url::parse(preset).ok(),
            None => {
                let valid = list(REGIONS.iter().map(|(r, _)| *r));
                let msg = format!("unknown region {:?}; valid regions: {valid}", region.value);
                errs.at(join(path, "region"), region, msg);
                None
            }
        },
        (None, Some(text)) => parse_base_url(&text.value)
            .map_err(|msg| errs.at(join(path, "base_url"), text, msg))
            .ok(),
    }
}

/// An origin only: scheme, host, optional port. The URL itself is never echoed, since it could
/// carry credentials.
fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| {
        format!("not a valid URL ({e}); write scheme and host, e.g. https://api.mypurecloud.com")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials (user:password@)".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host, e.g. https://api.mypurecloud.com".into());
    }
    if url.path() != "/" {
        return Err(format!(
            "must not have a path (found {}); routes match request paths, the base URL is only scheme, host and port",
            url.path()
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query (?...) or fragment (#...)".into());
    }
    Ok(url)
}

/// The hosts clients may address this upstream by; the base URL's host when not listed.
fn hosts(
    errs: &mut Errors,
    path: &str,
    name: &Name,
    raw: &RawUpstream,
    base_url: Option<&Url>,
    owners: &mut HostOwners,
) -> Vec<String> {
    let path = join(path, "hosts");
    let Some(listed) = &raw.hosts else {
        // The default comes from region or base_url; point there when it clashes.
        let origin = raw.region.as_ref().or(raw.base_url.as_ref());
        let host = base_url.and_then(Url::host_str).map(str::to_owned);
        let line = origin.and_then(line).or(name.line);
        let hosts: Vec<String> = host.into_iter().collect();
        for host in &hosts {
            claim(errs, &path, line, host, &name.value, owners);
        }
        return hosts;
    };
    if listed.is_empty() {
        let msg = "list at least one host, or leave hosts out to use the base URL's host";
        errs.add(&path, name.line, msg);
    }
    let mut hosts = Vec::new();
    for text in listed {
        let host = text.value.trim().to_ascii_lowercase();
        if !valid_host(&host) {
            let msg = format!("{:?} is not a host name; write only the host, without scheme, port or path, e.g. api.mypurecloud.com", text.value);
            errs.at(&path, text, msg);
        } else if hosts.contains(&host) {
            errs.at(&path, text, format!("host {host} is listed twice"));
        } else {
            claim(errs, &path, line(text), &host, &name.value, owners);
            hosts.push(host);
        }
    }
    hosts
}

/// Records that `upstream` serves `host`, or an error when another upstream already does.
fn claim(
    errs: &mut Errors,
    path: &str,
    line: Option<u64>,
    host: &str,
    upstream: &str,
    owners: &mut HostOwners,
) {
    match owners.get(host) {
        Some(other) => errs.add(
            path,
            line,
            format!("host {host} is also served by upstream {other}; each host may belong to one upstream only"),
        ),
        None => {
            owners.insert(host.to_owned(), upstream.to_owned());
        }
    }
}

/// A DNS name (letters, digits, hyphens; labels of 1 to 63 characters) or an IP address.
fn valid_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.parse::<IpAddr>().is_ok() {
        return true;
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    host.len() <= 253 && host.split('.').all(label_ok)
}

/// A file that must exist now, resolved against the config file's directory.
pub(super) fn readable_file(
    errs: &mut Errors,
    path: &str,
    raw: &Text,
    base: &Path,
) -> Option<PathBuf> {
    if raw.value.trim().is_empty() {
        errs.at(path, raw, "must not be empty");
        return None;
    }
    let file = base.join(&raw.value);
    let checked = std::fs::metadata(&file).and_then(|meta| {
        if meta.is_file() {
            std::fs::File::open(&file).map(drop)
        } else {
            Err(std::io::Error::other("not a regular file"))
        }
    });
    match checked {
        Ok(()) => Some(file),
        Err(e) => {
            errs.at(path, raw, format!("cannot read {}: {e}", file.display()));
            None
        }
    }
}

/// The upstream origin-form requests go to: the named one, or the only one.
pub(super) fn default_upstream(
    errs: &mut Errors,
    raw: Option<&Text>,
    upstreams: &Option<Named<RawUpstream>>,
) -> Option<usize> {
    let names: Vec<&str> = upstreams
        .iter()
        .flat_map(|u| &u.entries)
        .map(|(name, _)| name.value.as_str())
        .collect();
    let Some(wanted) = raw else {
        return (names.len() == 1).then_some(0);
    };
    let found = names.iter().position(|n| *n == wanted.value);
    if found.is_none() {
        let msg = format!(
            "unknown upstream {:?}; defined upstreams: {}",
            wanted.value,
            list(names.iter().copied())
        );
        errs.at("default_upstream", wanted, msg);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(valid_host("api.mypurecloud.com"));
        assert!(valid_host("localhost"));
        assert!(valid_host("127.0.0.1"));
        assert!(valid_host("[::1]"));
        assert!(!valid_host(""));
        assert!(!valid_host("api.mypurecloud.com:443"));
        assert!(!valid_host("https://api.mypurecloud.com"));
        assert!(!valid_host("a..b"));
        assert!(!valid_host("-a.com"));
        assert!(!valid_host("a_b.com"));
    }

    #[test]
    fn base_urls() {
        assert!(parse_base_url("https://api.mypurecloud.com").is_ok());
        assert!(parse_base_url("https://api.mypurecloud.com/").is_ok());
        assert!(parse_base_url("http://127.0.0.1:9000").is_ok());
        let err = |s| parse_base_url(s).unwrap_err();
        assert!(err("api.mypurecloud.com").contains("not a valid URL"));
        assert!(err("ftp://x.com").contains("http or https"));
        assert!(err("https://x.com/api/v2").contains("/api/v2"));
        assert!(err("https://x.com/?a=1").contains("query"));
        assert!(err("https://x.com/#f").contains("fragment"));
        let creds = err("https://user:hunter2@x.com");
        assert!(creds.contains("credentials") && !creds.contains("hunter2"));
    }
}
