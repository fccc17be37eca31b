//! `/status` and `/limits/{name}`: the limits' live state, and changing it.
//!
//! A change goes to [`Limiter::update`](crate::shape::Limiter::update), which applies it to every
//! key at once and wakes queued requests, so it governs traffic from the next decision on. The
//! answer is the limit's state after the change, the same document `/status` lists.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::live::{Live, SideBySide};
use super::{error, json, AdminResponse};
use crate::config::{Quota, Rate};
use crate::shape::layer::Limits;
use crate::shape::shared::SharedState;
use crate::shape::{LimitState, LimitUpdate, Limiter, NO_CAP};

/// A change is a few dozen bytes of JSON; anything much larger is a mistake.
const MAX_BODY: usize = 16 * 1024;

/// The body of `PUT /limits/{name}`; absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitChange {
    /// As in the config: `N/s`, `N/min` or `N/h`.
    rate: Option<String>,
    burst: Option<u32>,
    /// `null` removes the cap: absent and `null` must differ, hence the double option.
    #[serde(default, deserialize_with = "present")]
    concurrency: Option<Option<u32>>,
    /// As in the config: `N/s`, `N/min`, `N/h` or `N/<duration>`, with the default margin.
    quota: Option<String>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(de).map(Some)
}

#[derive(Serialize)]
struct Status {
    version: &'static str,
    draining: bool,
    limits: Vec<LimitStatus>,
}

/// A limit's state plus the wall-clock end of its pause, which a person can read at a glance,
/// and its file's values beside the current ones.
#[derive(Serialize)]
struct LimitStatus {
    #[serde(flatten)]
    state: LimitState,
    /// RFC 3339, UTC; absent when no key is paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    paused_until: Option<String>,
    #[serde(flatten)]
    live: Option<SideBySide>,
    /// For a limit shared through Redis: whether it is shared now or falling back.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<SharedState>,
}

impl LimitStatus {
    fn new(limiter: &dyn Limiter, state: LimitState, live: &Live) -> LimitStatus {
        let paused_until = state
            .paused_ms
            .filter(|&ms| ms > 0)
            .map(|ms| rfc3339(SystemTime::now() + Duration::from_millis(ms)));
        let live = live.side_by_side(&state.name);
        LimitStatus {
            state,
            paused_until,
            live,
            shared: limiter.shared(),
        }
    }
}

pub(super) fn status(limits: &Limits, live: &Live, draining: bool) -> AdminResponse {
    let doc = Status {
        version: env!("CARGO_PKG_VERSION"),
        draining,
        limits: limits
            .limiters()
            .iter()
            .map(|l| LimitStatus::new(l.as_ref(), l.state(), live))
            .collect(),
    };
    json(StatusCode::OK, &doc)
}

pub(super) fn get(limits: &Limits, live: &Live, name: &str) -> AdminResponse {
    match limits.by_name(name) {
        Some(limiter) => json(
            StatusCode::OK,
            &LimitStatus::new(limiter.as_ref(), limiter.state(), live),
        ),
        None => unknown(limits, name),
    }
}

/// `DELETE /limits/{name}`: back to the config file's values.
pub(super) fn restore(limits: &Limits, live: &Live, name: &str) -> AdminResponse {
    let Some(limiter) = limits.by_name(name) else {
        return unknown(limits, name);
    };
    let Some(update) = live.restore(name) else {
        return invalid(format!(
            "the config's values of limit {name} are not known here"
        ));
    };
    match limiter.update(update) {
        Ok(state) => {
            tracing::info!(
                limit = name,
                "limit back to the config's values through the admin API"
            );
            json(
                StatusCode::OK,
                &LimitStatus::new(limiter.as_ref(), state, live),
            )
        }
        Err(e) => invalid(e.to_string()),
    }
}

pub(super) async fn put(limits: &Limits, live: &Live, name: &str, body: Incoming) -> AdminResponse {
    let Some(limiter) = limits.by_name(name) else {
        return unknown(limits, name);
    };
    let update = read_change(body).await.and_then(parse_change);
    let update = match update.and_then(|u| live.check(name, &u).map(|()| u)) {
        Ok(update) => update,
        Err(msg) => return invalid(msg),
    };
    match limiter.update(update) {
        Ok(state) => {
            live.record(name, &update);
            let change = describe_update(&update);
            tracing::info!(limit = name, %change, "limit changed through the admin API");
            json(
                StatusCode::OK,
                &LimitStatus::new(limiter.as_ref(), state, live),
            )
        }
        Err(e) => invalid(e.to_string()),
    }
}

async fn read_change(body: Incoming) -> Result<LimitChange, String> {
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("cannot read the request body: {e}"))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| {
        format!("the body must be JSON like {{\"rate\": \"5/s\", \"burst\": 5, \"concurrency\": 4}} (any subset): {e}")
    })
}

fn parse_change(change: LimitChange) -> Result<LimitUpdate, String> {
    if change.rate.is_none()
        && change.burst.is_none()
        && change.concurrency.is_none()
        && change.quota.is_none()
    {
        return Err(
            "nothing to change: give at least one of rate, burst, concurrency, quota".into(),
        );
    }
    let quota = change
        .quota
        .as_deref()
        .map(|q| Quota::parse(q).map_err(|e| format!("quota: {e}")))
        .transpose()?;
    let rate = change
        .rate
        .as_deref()
        .map(|r| Rate::parse(r).map_err(|e| format!("rate: {e}")))
        .transpose()?;
    if change.burst == Some(0) {
        return Err("burst: must be at least 1".into());
    }
    let concurrency = match change.concurrency {
        Some(Some(0)) => {
            return Err("concurrency: must be at least 1 (null removes the cap)".into())
        }
        Some(Some(NO_CAP)) => return Err(format!("concurrency: must be below {NO_CAP}")),
        Some(cap) => Some(cap.unwrap_or(NO_CAP)),
        None => None,
    };
    Ok(LimitUpdate {
        rate,
        burst: change.burst,
        concurrency,
        quota,
    })
}

/// A live change in the words of the config (`rate 5/s, burst 5`), for the log.
fn describe_update(update: &LimitUpdate) -> String {
    let mut parts = Vec::new();
    if let Some(rate) = update.rate {
        parts.push(format!("rate {rate}"));
    }
    if let Some(burst) = update.burst {
        parts.push(format!("burst {burst}"));
    }
    match update.concurrency {
        Some(NO_CAP) => parts.push("no concurrency cap".to_owned()),
        Some(concurrency) => parts.push(format!("concurrency {concurrency}")),
        None => {}
    }
    if let Some(quota) = update.quota {
        parts.push(format!("quota {quota}"));
    }
    parts.join(", ")
}

fn unknown(limits: &Limits, name: &str) -> AdminResponse {
    let names: Vec<&str> = limits.limiters().iter().map(|l| l.name()).collect();
    error(
        StatusCode::NOT_FOUND,
        "pacer.admin.unknown_limit",
        format!(
            "no limit named {name:?}; the limits are {}",
            names.join(", ")
        ),
    )
}

fn invalid(message: String) -> AdminResponse {
    error(StatusCode::BAD_REQUEST, "pacer.admin.invalid", message)
}

/// `2024-05-01T12:34:56.789Z`. Written out rather than pulling in a date crate for one format.
fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_250);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.250Z");
    }

    #[test]
    fn changes_parse_and_validate() {
        let change = |json: &str| {
            serde_json::from_str::<LimitChange>(json)
                .map_err(|e| e.to_string())
                .and_then(parse_change)
        };
        let u = change(r#"{"rate": "5/s", "burst": 5}"#).unwrap();
        assert_eq!(u.rate.unwrap().per_second(), 5.0);
        assert_eq!((u.burst, u.concurrency), (Some(5), None));
        assert!(change(r#"{"rate": "5/d"}"#)
            .unwrap_err()
            .contains("unknown unit"));
        assert!(change(r#"{"burst": 0}"#)
            .unwrap_err()
            .contains("at least 1"));
        assert!(change(r#"{"concurrency": -1}"#).is_err());
        assert!(change(r#"{"rates": "5/s"}"#)
            .unwrap_err()
            .contains("unknown field"));
        assert!(change("{}").unwrap_err().contains("nothing to change"));
    }
}
