//! Discovery: what the API showed about its limits during a run, per route, as JSON
//! (`GET /discovered`) and as a config pacer can run with (`pacer proxy --discover-out FILE`).
//!
//! The [`layer::Discover`] layer sits just above the upstream client, so it sees every attempt
//! that reaches the API (retries included) and every answer's head. Requests are grouped by the
//! route they matched (its pattern as written) or, on no route, by method and [`group_path`]
//! (`GET /api/v2/users/{id}`), so a run with no limits at all still gets an answer.
//!
//! Per group: requests, 2xx and 429 answers; what the rate-limit headers advertised (family,
//! largest quota, window, longest reset, lowest remaining); the Retry-After values of 429s (min,
//! max); the in-flight count when the first 429 was sent and the lowest in-flight count of any
//! 429; the 2xx rate achieved. [`infer`] turns that into a limit and says why.
//!
//! A request counts as in flight from when it goes to the upstream client until its answer's
//! head arrives (or it fails, or is dropped): what an API's concurrency cap counts, give or take
//! the answer's way back.
//!
//! # Memory
//!
//! A group is at most about 1.8 KB (counters, two histograms of [`tally::LEVELS`] levels, the
//! last 32 runs and their intervals): about 2 MB at [`MAX_GROUPS`]. Configured routes have one
//! group each, found when the route's stack is built; groups of unmatched paths are capped at
//! [`MAX_GROUPS`], past which new paths count in one `other` group, which is reported but never
//! written as a route.
//!
//! # Cost
//!
//! Off unless asked for (`--discover-out`). On, each attempt takes its group's lock three
//! times (send, answer, and done) for a few counter updates, and an unmatched request's group
//! is found under a read lock after building its grouped path.

mod infer;
pub mod layer;
mod path;
mod tally;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::time::Instant;

use self::infer::infer;
pub use self::infer::{Finding, Limit, Source};
pub use self::path::{group_path, is_id};
use self::tally::Tally;
pub use self::write::{log_findings, write_config};
use crate::exchange::RouteId;

/// Distinct unmatched `(method, grouped path)` groups kept; later ones count in `other`.
pub const MAX_GROUPS: usize = 1000;

/// The name of the group past [`MAX_GROUPS`].
pub const OTHER: &str = "other";

type Group = Arc<Mutex<Tally>>;

/// Every group's tally, shared by the layer and the admin endpoint.
pub struct Discovery {
    started: Instant,
    /// Per configured route, its pattern and its group.
    routes: Vec<(String, Group)>,
    unmatched: RwLock<HashMap<String, Group>>,
    other: Group,
}

/// One group, as `/discovered` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// The route's pattern as written, or `METHOD /grouped/{id}/path` for requests on no
    /// route, or `other`.
    pub route: String,
    /// Whether `route` is a configured route.
    pub configured: bool,
    pub requests: u64,
    pub ok: u64,
    pub throttled: u64,
    /// Requests that carried `Authorization`.
    pub with_token: u64,
    /// 2xx answers per second from the first request sent to the last answer.
    pub rate_achieved: Option<f64>,
    pub max_in_flight: u32,
    pub advertised: Option<AdvertisedReport>,
    pub retry_after: Option<RetryAfterReport>,
    /// Requests already in flight when the first 429's request was sent.
    pub in_flight_at_first_429: Option<u32>,
    /// The fewest requests already in flight when any 429's request was sent.
    pub in_flight_at_lowest_429: Option<u32>,
    /// 2xx and 429 answers by the number of requests in flight when each was sent (itself
    /// included): index 1 is one in flight; the last index counts that many or more.
    pub ok_by_in_flight: Vec<u64>,
    pub throttled_by_in_flight: Vec<u64>,
    /// Quotas read from runs of 2xx between 429s (the last 32), and the seconds between the
    /// runs' starts.
    pub runs_between_429s: Vec<u32>,
    pub run_intervals_s: Vec<f64>,
    pub discovered: Option<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdvertisedReport {
    /// Which header family: `inin-ratelimit-*`, `RateLimit-Policy/RateLimit`, `RateLimit-*`,
    /// `X-RateLimit-*`.
    pub family: &'static str,
    pub quota: Option<u32>,
    pub window_s: Option<f64>,
    pub longest_reset_s: Option<f64>,
    pub lowest_remaining: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetryAfterReport {
    pub count: u64,
    pub min_s: f64,
    pub max_s: f64,
}

/// The `/discovered` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seconds since pacer started recording.
    pub recording_s: f64,
    pub max_groups: usize,
    pub groups: Vec<GroupReport>,
}

// === impl Discovery ===

impl Discovery {
    pub fn new(config: &crate::Config) -> Arc<Discovery> {
        Arc::new(Discovery {
            started: Instant::now(),
            routes: config
                .routes
                .iter()
                .map(|r| (r.name.clone(), Group::default()))
                .collect(),
            unmatched: RwLock::default(),
            other: Group::default(),
        })
    }

    /// The group of a configured route's requests, resolved once when its stack is built.
    fn route_group(&self, route: RouteId) -> Option<Group> {
        self.routes.get(route.index()).map(|(_, g)| g.clone())
    }

    /// The group of a request on no route: its method and grouped path's.
    fn unmatched_group(&self, method: &http::Method, path: &str) -> Group {
        let name = format!("{method} {}", group_path(path));
        let read = self.unmatched.read();
        if let Some(g) = read.get(&name) {
            return g.clone();
        }
        drop(read);
        let mut write = self.unmatched.write();
        if write.len() >= MAX_GROUPS && !write.contains_key(&name) {
            return self.other.clone();
        }
        write.entry(name).or_default().clone()
    }

    /// Every group that saw a request: configured routes in file order, then unmatched groups
    /// by name, then `other`.
    pub fn report(&self) -> Report {
        let mut groups = Vec::new();
        for (name, g) in &self.routes {
            push(&mut groups, name, true, g);
        }
        let unmatched = self.unmatched.read();
        let mut names: Vec<_> = unmatched.keys().collect();
        names.sort();
        for name in names {
            push(&mut groups, name, false, &unmatched[name]);
        }
        push(&mut groups, OTHER, false, &self.other);
        Report {
            recording_s: self.started.elapsed().as_secs_f64(),
            max_groups: MAX_GROUPS,
            groups,
        }
    }
}

fn push(out: &mut Vec<GroupReport>, name: &str, configured: bool, group: &Group) {
    let t = group.lock().clone();
    if t.requests > 0 {
        out.push(group_report(name, configured, &t));
    }
}

fn group_report(name: &str, configured: bool, t: &Tally) -> GroupReport {
    let secs = |d: std::time::Duration| d.as_secs_f64();
    GroupReport {
        route: name.to_owned(),
        configured,
        requests: t.requests,
        ok: t.ok,
        throttled: t.throttled,
        with_token: t.with_token,
        rate_achieved: t.rate_achieved(),
        max_in_flight: t.max_in_flight,
        advertised: t.advertised.map(|a| AdvertisedReport {
            family: a.family.as_str(),
            quota: a.quota,
            window_s: a.window.map(secs),
            longest_reset_s: a.longest_reset.map(secs),
            lowest_remaining: a.lowest_remaining,
        }),
        retry_after: t.retry_after.map(|(lo, hi, count)| RetryAfterReport {
            count,
            min_s: secs(lo),
            max_s: secs(hi),
        }),
        in_flight_at_first_429: t.in_flight_at_first_429,
        in_flight_at_lowest_429: t.lowest_throttled_level().map(|l| l.saturating_sub(1)),
        ok_by_in_flight: t.ok_levels.clone(),
        throttled_by_in_flight: t.throttled_levels.clone(),
        runs_between_429s: t.runs.lengths.clone(),
        run_intervals_s: t.runs.intervals.iter().map(|&d| secs(d)).collect(),
        discovered: (name != OTHER).then(|| infer(t)).flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery() -> Arc<Discovery> {
        let text = "upstreams: { a: { base_url: 'http://127.0.0.1:1' } }
limits: { l: { concurrency: 1 } }
routes: [{ match: 'GET /api/v2/scripts/**', limits: [l] }]";
        Discovery::new(&crate::Config::parse(text, std::path::Path::new(".")).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn groups_are_routes_then_grouped_paths_then_other_past_the_bound() {
        let d = discovery();
        let get = http::Method::GET;
        let count = |g: Group| g.lock().sent(Instant::now(), false);
        count(d.route_group(RouteId::new(0)).unwrap());
        count(d.unmatched_group(&get, "/api/v2/users/42"));
        assert_eq!(count(d.unmatched_group(&get, "/api/v2/users/43")), 2);
        for i in 0..MAX_GROUPS {
            count(d.unmatched_group(&get, &format!("/p{i}x/a")));
        }
        let names: Vec<_> = d.report().groups.into_iter().map(|g| g.route).collect();
        assert_eq!(names.len(), 1 + MAX_GROUPS + 1, "route, groups, other");
        assert_eq!(names[0], "GET /api/v2/scripts/**");
        assert!(names.contains(&"GET /api/v2/users/{id}".to_owned()));
        assert_eq!(names.last().unwrap(), OTHER);
        // An existing group still counts in itself past the bound.
        assert_eq!(count(d.unmatched_group(&get, "/api/v2/users/44")), 3);
    }
}
