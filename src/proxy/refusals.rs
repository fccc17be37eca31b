//! Refusals a client cannot fix alone, logged where the operator sees them: at WARN, with the
//! fix, once per kind and host (or upstream) per minute.
//!
//! A load tool hammering a host no upstream lists would otherwise either leave no trace at the
//! default level (the request log is DEBUG) or, logged per request, bury everything else.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::Error;

/// How often the same refusal (kind and host or upstream) is logged again.
const EVERY: Duration = Duration::from_secs(60);

/// Distinct refusals remembered at once; past it the memory is cleared, so a client inventing
/// host names can cost a log line per name and minute but no unbounded memory.
const MAX_REMEMBERED: usize = 1024;

static LAST: Mutex<Option<HashMap<(&'static str, String), Instant>>> = Mutex::new(None);

/// Logs `err` at WARN when it is a refusal worth an operator's attention and the same one was
/// not logged within the last minute. Only error responses come here, never the success path.
pub fn note(err: &Error, message: &str) {
    let (subject, fix) = match err {
        Error::ForbiddenHost { host } => (
            host.as_str(),
            "no upstream lists this host; add it to an upstream's hosts, or point the load tool \
             at a host that is listed",
        ),
        Error::InterceptNotConfigured { host } => (
            host.as_str(),
            "there is no CA to intercept with; add an intercept section (ca_cert, ca_key), give \
             pacer a state directory (PACER_STATE_DIR, XDG_DATA_HOME or HOME) for its own CA, or \
             set intercept: false on the upstream for a blind tunnel",
        ),
        Error::UpstreamUnreachable { upstream, .. } => (
            upstream.as_str(),
            "check the upstream's base_url, that the API (or mock) is running, and that this \
             machine can reach it",
        ),
        _ => return,
    };
    if first_in_a_while(err.code(), subject, Instant::now()) {
        let code = err.code();
        tracing::warn!(
            code,
            "refused: {message}; {fix} (logged once a minute per host or upstream)"
        );
    }
}

/// Whether (`code`, `subject`) was not seen within [`EVERY`] before `now`; records `now` if so.
fn first_in_a_while(code: &'static str, subject: &str, now: Instant) -> bool {
    let mut last = LAST.lock();
    let last = last.get_or_insert_with(HashMap::new);
    let key = (code, subject.to_owned());
    if last.get(&key).is_some_and(|&at| now < at + EVERY) {
        return false;
    }
    if last.len() >= MAX_REMEMBERED {
        last.clear();
    }
    last.insert(key, now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn once_per_subject_and_minute() {
        let t0 = Instant::now();
        let code = "pacer.test.refusals";
        assert!(first_in_a_while(code, "a.test", t0));
        assert!(!first_in_a_while(
            code,
            "a.test",
            t0 + Duration::from_secs(59)
        ));
        assert!(first_in_a_while(
            code,
            "b.test",
            t0 + Duration::from_secs(1)
        ));
        assert!(first_in_a_while(
            code,
            "a.test",
            t0 + Duration::from_secs(60)
        ));
    }
}
