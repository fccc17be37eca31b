//! Rules across fields: what is missing, what does not go together, names that repeat. Every
//! problem is collected, so one run of `pacer generate` lists them all.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

use super::raw::{RawAuth, RawPhase, RawRequest, RawScenario, RawThresholds};
use super::{Auth, ItemLines, Load, Phase, RequestSpec, Scenario, Thresholds};
use crate::config::{ConfigError, ConfigErrors};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_IN_FLIGHT: usize = 1000;
const MAX_USERS: u32 = 100_000;
/// Weights are kept small so the mix can be a precomputed sequence (see `mix.rs`).
const MAX_WEIGHT_TOTAL: u64 = 100_000;

/// Problems found so far.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, line: Option<u64>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, line, message));
    }
}

pub(super) fn validate(raw: RawScenario, lines: ItemLines) -> Result<Scenario, ConfigErrors> {
    let mut problems = Problems::default();
    if raw.target.is_none() {
        problems.add("target", None, "required: the base URL requests go to");
    }
    let max_in_flight = raw.max_in_flight.map_or(DEFAULT_MAX_IN_FLIGHT, |n| n.0);
    let timeout = raw.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
    let phases = phases(raw.phases.unwrap_or_default(), &lines.phases, &mut problems);
    let headers = raw.headers.map(|h| h.0).unwrap_or_default();
    let headers: HeaderMap = headers.into_iter().collect();
    let requests = match &raw.target {
        Some(target) => requests(
            raw.requests.unwrap_or_default(),
            &target.0,
            &headers,
            &lines.requests,
            &mut problems,
        ),
        None => Vec::new(),
    };
    let thresholds = thresholds(raw.thresholds, &phases, &mut problems);
    let ca_file = raw.tls.and_then(|t| t.ca_file).and_then(|f| f.0);
    match (problems.0.is_empty(), raw.target) {
        (true, Some(target)) => Ok(Scenario {
            name: raw.name.map(|n| n.0),
            target: target.0,
            auth: raw.auth.map(auth),
            headers,
            timeout,
            max_in_flight,
            phases,
            requests,
            ca_file,
            thresholds,
        }),
        _ => Err(ConfigErrors(problems.0)),
    }
}

fn auth(raw: RawAuth) -> Auth {
    Auth {
        token_url: raw.token_url.0,
        client_id: raw.client_id.0,
        client_secret: raw.client_secret.0,
    }
}

fn thresholds(raw: Option<RawThresholds>, phases: &[Phase], problems: &mut Problems) -> Thresholds {
    let Some(raw) = raw else {
        return Thresholds::default();
    };
    let open = phases.iter().any(|p| matches!(p.load, Load::Open { .. }));
    if raw.rate_achieved.is_some() && !open {
        let message =
            "rate_achieved applies to open-model phases (rate:), and this scenario has none";
        problems.add("thresholds.rate_achieved", None, message);
    }
    Thresholds {
        p50: raw.p50.map(|d| d.0),
        p90: raw.p90.map(|d| d.0),
        p99: raw.p99.map(|d| d.0),
        max: raw.max.map(|d| d.0),
        error_rate: raw.error_rate.map(|p| p.0),
        rate_achieved: raw.rate_achieved.map(|p| p.0),
    }
}

fn phases(raw: Vec<RawPhase>, lines: &[u64], problems: &mut Problems) -> Vec<Phase> {
    if raw.is_empty() {
        problems.add("phases", None, "at least one phase is needed");
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let path = format!("phases[{i}]");
        let line = lines.get(i).copied();
        let name = p.name.clone().unwrap_or_else(|| format!("phase-{}", i + 1));
        if !names.insert(name.clone()) {
            problems.add(&path, line, format!("the name {name:?} is used twice"));
        }
        match phase(p, name) {
            Ok(phase) => out.push(phase),
            Err(message) => problems.add(path, line, message),
        }
    }
    out
}

fn phase(p: RawPhase, name: String) -> Result<Phase, String> {
    let duration = match p.duration {
        Some(d) if !d.0.is_zero() => d.0,
        Some(_) => return Err("duration must be more than 0".into()),
        None => return Err("duration is required, e.g. duration: 30s".into()),
    };
    let load = match (p.rate, p.users) {
        (Some(_), Some(_)) => {
            return Err(
                "a phase has either rate (open model) or users (closed model), not both".into(),
            )
        }
        (None, None) => {
            return Err("a phase needs rate (e.g. rate: 50/s) or users (e.g. users: 20)".into())
        }
        (Some(rate), None) => {
            if p.think.is_some() {
                return Err("think applies to users, not to a rate".into());
            }
            let to = p.to.map_or(rate.0, |t| t.0);
            if rate.0 == 0.0 && to == 0.0 {
                return Err("rate and to cannot both be 0".into());
            }
            Load::Open { rate: rate.0, to }
        }
        (None, Some(users)) => {
            if p.to.is_some() {
                return Err("to ramps a rate; a closed-model phase has users instead".into());
            }
            if users == 0 || users > MAX_USERS {
                return Err(format!("users must be 1 to {MAX_USERS}"));
            }
            let think = p.think.map_or(Duration::ZERO, |t| t.0);
            Load::Closed { users, think }
        }
    };
    Ok(Phase {
        name,
        duration,
        load,
    })
}

fn requests(
    raw: Vec<RawRequest>,
    target: &url::Url,
    headers: &HeaderMap,
    lines: &[u64],
    problems: &mut Problems,
) -> Vec<RequestSpec> {
    if raw.is_empty() {
        problems.add("requests", None, "at least one request is needed");
    }
    let mut names = HashSet::new();
    let mut total_weight = 0u64;
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let path = format!("requests[{i}]");
        let line = lines.get(i).copied();
        match request(r, target, headers) {
            Ok(spec) => {
                if !names.insert(spec.name.clone()) {
                    let message = format!("the name {:?} is used twice", spec.name);
                    problems.add(&path, line, message);
                }
                total_weight += u64::from(spec.weight);
                out.push(spec);
            }
            Err(message) => problems.add(path, line, message),
        }
    }
    if total_weight > MAX_WEIGHT_TOTAL {
        let message =
            format!("the weights add up to more than {MAX_WEIGHT_TOTAL}; scale them down");
        problems.add("requests", None, message);
    }
    out
}

fn request(r: RawRequest, target: &url::Url, base: &HeaderMap) -> Result<RequestSpec, String> {
    let method = r.method.map_or(Method::GET, |m| m.0);
    let Some(path) = r.path.map(|p| p.0) else {
        return Err("path is required, e.g. path: /api/v2/users".into());
    };
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with /"));
    }
    let weight = r.weight.unwrap_or(1);
    if weight == 0 {
        return Err("weight must be 1 or more".into());
    }
    let uri = join(target, &path)?;
    let mut headers = base.clone();
    for (name, value) in r.headers.map(|h| h.0).unwrap_or_default() {
        headers.insert(name, value);
    }
    Ok(RequestSpec {
        name: r.name.unwrap_or_else(|| format!("{method} {path}")),
        weight,
        method,
        uri,
        body: r.body.map_or_else(Bytes::new, |b| Bytes::from(b.0)),
        headers,
    })
}

/// The target's scheme and authority, its path (without a trailing `/`) and then `path`.
fn join(target: &url::Url, path: &str) -> Result<Uri, String> {
    let base = target.as_str().trim_end_matches('/');
    format!("{base}{path}")
        .parse::<Uri>()
        .map_err(|e| format!("path {path:?} does not make a valid URI: {e}"))
}
