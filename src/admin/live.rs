//! Live changes against the config file: what each limit's file says, what was changed through
//! the admin API since, and the way back (`DELETE /limits/{name}`).
//!
//! Kept here rather than in the limiters: a limiter knows only its values in force, and the
//! admin API is the one place that changes them, so it is the one place that can say which
//! values the file set and which a person changed.

use std::collections::HashMap;

use parking_lot::Mutex;
use serde::Serialize;

use crate::config::{Limit, Quota, Rate};
use crate::shape::{LimitUpdate, NO_CAP};

/// A limit's rate, burst, concurrency and quota.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Settings {
    rate: Option<Rate>,
    burst: u32,
    concurrency: Option<u32>,
    quota: Option<Quota>,
}

/// What changed live, field by field (`concurrency: Some(None)`: a cap removed).
#[derive(Debug, Clone, Copy, Default)]
struct Changed {
    rate: Option<Rate>,
    burst: Option<u32>,
    concurrency: Option<Option<u32>>,
    quota: Option<Quota>,
}

/// The file's values, the values in force, and which of them were changed live.
#[derive(Debug, Serialize)]
pub struct SideBySide {
    configured: SettingsDoc,
    current: SettingsDoc,
    changed_live: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
struct SettingsDoc {
    /// As in the config: `300/min`.
    rate: Option<String>,
    burst: u32,
    concurrency: Option<u32>,
    /// As in the config: `300/60s`.
    quota: Option<String>,
}

/// Every limit's file values and live changes.
#[derive(Debug, Default)]
pub struct Live {
    configured: HashMap<String, Settings>,
    changed: Mutex<HashMap<String, Changed>>,
}

// === impl Live ===

impl Live {
    pub fn new(limits: &[Limit]) -> Live {
        let configured = limits.iter().map(|l| {
            let settings = Settings {
                rate: l.rate,
                burst: l.burst.max(1),
                concurrency: l.concurrency,
                quota: l.quota,
            };
            (l.name.clone(), settings)
        });
        Live {
            configured: configured.collect(),
            changed: Mutex::default(),
        }
    }

    /// Refuses a change that `DELETE` could not take back: a rate (or quota) on a limit whose
    /// file has none.
    pub fn check(&self, name: &str, update: &LimitUpdate) -> Result<(), String> {
        let Some(file) = self.configured.get(name) else {
            return Ok(());
        };
        let added = [
            ("rate", file.rate.is_none() && update.rate.is_some()),
            ("quota", file.quota.is_none() && update.quota.is_some()),
        ];
        match added.iter().find(|a| a.1) {
            Some((field, _)) => Err(format!(
                "{field}: limit {name} has no {field} in the config, and a {field} added live \
                 could not be taken back; add one to the config instead"
            )),
            None => Ok(()),
        }
    }

    /// Notes a change the limiter accepted.
    pub fn record(&self, name: &str, update: &LimitUpdate) {
        let mut changed = self.changed.lock();
        let entry = changed.entry(name.to_owned()).or_default();
        entry.rate = update.rate.or(entry.rate);
        entry.burst = update.burst.or(entry.burst);
        entry.quota = update.quota.or(entry.quota);
        if let Some(cap) = update.concurrency {
            entry.concurrency = Some(Some(cap).filter(|&c| c != NO_CAP));
        }
    }

    /// The change that puts `name` back to its file's values (forgetting its live changes);
    /// None when the file's values are not known.
    pub fn restore(&self, name: &str) -> Option<LimitUpdate> {
        let file = self.configured.get(name)?;
        let mut changed = self.changed.lock();
        changed.remove(name);
        Some(LimitUpdate {
            rate: file.rate,
            burst: Some(file.burst),
            concurrency: Some(file.concurrency.unwrap_or(NO_CAP)),
            quota: file.quota,
        })
    }

    pub fn side_by_side(&self, name: &str) -> Option<SideBySide> {
        let file = *self.configured.get(name)?;
        let changed = self.changed.lock();
        let live = changed.get(name).copied().unwrap_or_default();
        let current = Settings {
            rate: live.rate.or(file.rate),
            burst: live.burst.unwrap_or(file.burst),
            concurrency: live.concurrency.unwrap_or(file.concurrency),
            quota: live.quota.or(file.quota),
        };
        let fields = [
            ("rate", live.rate.is_some()),
            ("burst", live.burst.is_some()),
            ("concurrency", live.concurrency.is_some()),
            ("quota", live.quota.is_some()),
        ];
        Some(SideBySide {
            configured: file.into(),
            current: current.into(),
            changed_live: fields.iter().filter(|f| f.1).map(|f| f.0).collect(),
        })
    }
}

impl From<Settings> for SettingsDoc {
    fn from(s: Settings) -> SettingsDoc {
        SettingsDoc {
            rate: s.rate.map(|r| r.to_string()),
            burst: s.burst,
            concurrency: s.concurrency,
            quota: s.quota.map(|q| q.to_string()),
        }
    }
}
