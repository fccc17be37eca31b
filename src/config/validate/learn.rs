//! `learn:` on limits: pace to the API's advertised limits (see `crate::ratelimit`).

use std::collections::BTreeMap;

use super::{join, Errors};
use crate::config::raw::{Named, RawLearn, RawLimit};
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
                // Written so that NaN fails the comparison.
                if (0.0..=MAX_HEADROOM).contains(&h.value) {
                    learn.headroom = h.value;
                } else {
                    let msg =
                        format!("must be a fraction from 0 to {MAX_HEADROOM} (e.g. 0.05 for 5%)");
                    errs.at(join(&path, "headroom"), h, msg);
                }
            }
        }
        out.insert(name.value.clone(), learn);
    }
    out
}
