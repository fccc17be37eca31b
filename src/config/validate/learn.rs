//! `learn:` on limits: pace to the API's advertised limits (see `crate::ratelimit`).

use std::collections::BTreeMap;

use super::{join, Errors};
use crate::config::raw::{Named, RawLearn, RawLimit, RawShare};
use crate::config::Learn;

/// The largest headroom: above it a learned rate would waste most of what the API allows.
const MAX_HEADROOM: f64 = 0.5;

/// Whether a raw limit has learning on.
pub(super) fn learns(raw: &RawLimit) -> bool {
    matches!(
        raw.learn,
        Some(RawLearn::Enabled(true) | RawLearn::Settings(_))
    )
}

/// The limits with learning on, by name.
pub(super) fn learn(
    errs: &mut Errors,
    limits: Option<&Named<RawLimit>>,
) -> BTreeMap<String, Learn> {
    let entries = limits.map(|n| n.entries.as_slice()).unwrap_or_default();
    let mut out = BTreeMap::new();
    for (name, raw) in entries {
        if !learns(raw) {
            continue;
        }
        let path = join(&join("limits", &name.value), "learn");
        if raw.shared.as_ref().is_some_and(|s| s.value) {
            let msg = "a shared limit does not learn yet; learn on a local limit, or set the rate the API advertises";
            errs.add(&path, name.line, msg);
        }
        let mut learn = Learn::default();
        if let Some(RawLearn::Settings(settings)) = &raw.learn {
            if let Some(h) = &settings.headroom {
                match headroom(&h.value) {
                    Ok(share) => learn.headroom = share,
                    Err(msg) => errs.at(join(&path, "headroom"), h, msg),
                }
            }
        }
        out.insert(name.value.clone(), learn);
    }
    out
}

/// `5%` or `0.05`, from 0 to [`MAX_HEADROOM`].
fn headroom(raw: &RawShare) -> Result<f64, String> {
    let share = match raw {
        RawShare::Fraction(f) => *f,
        RawShare::Percent(text) => crate::config::parse_percent(text)?,
    };
    // Written so that NaN fails the comparison.
    if (0.0..=MAX_HEADROOM).contains(&share) {
        Ok(share)
    } else {
        Err(format!(
            "must be from 0% to {}% (e.g. 5%, or 0.05)",
            MAX_HEADROOM * 100.0
        ))
    }
}
