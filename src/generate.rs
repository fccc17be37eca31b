//! `pacer generate`: the built-in load generator.
//!
//! It runs a [`Scenario`] (phases of open- or closed-model load, a weighted mix of requests)
//! against a target, directly or through a forward proxy such as pacer, and returns a
//! [`Report`] with status counts, errors and HDR latency quantiles overall, per request name,
//! per phase and per second.
//!
//! - Open model: every arrival's intended start is computed from its index (`schedule`); each
//!   worker thread sends its share of them on schedule to its lanes (`lanes`), one keep-alive
//!   connection each. Latency counts from the intended start, so a slow target cannot make the
//!   generator politely wait (no coordinated omission). In-flight requests are capped by
//!   `max_in_flight`; an arrival over the cap is not sent and counts as `dropped`.
//! - Closed model: each user sends on its own connection, waits for the answer, thinks, and
//!   goes again.
//! - OAuth: one token for the run, renewed by one task before expiry (`auth`).
//!
//! Module map: [`scenario`] (YAML), `schedule`, `engine` (phases, users, schedulers; the
//! once-a-second timeline in `engine/timeline`), `workers` (a runtime per core), `lanes`,
//! `link` (a connection driven by the task that sends on it), `client` (the proxy-aware rustls
//! connector with its trust: webpki roots, `SSL_CERT_FILE`, `tls.ca_file`; hyper-util's pooled
//! client for OAuth), `tunnel` (CONNECT), `cause` (failures in words), `auth`, `mix`,
//! [`record`] (sharded counters), [`report`] (JSON and the summary table), [`verdict`]
//! (thresholds, pass or fail), [`html`] (the page and its SVG charts), `progress`.

mod auth;
mod cause;
mod client;
mod engine;
pub mod html;
mod lanes;
mod link;
mod mix;
mod progress;
pub mod record;
pub mod report;
pub mod scenario;
mod schedule;
mod tunnel;
pub mod verdict;
mod workers;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use self::auth::AuthError;
pub use self::client::ClientError;
pub use self::report::{ErrorCause, Latency, PhaseSummary, Report, Second, Summary};
pub use self::scenario::{Load, Phase, RequestSpec, Scenario, Thresholds};

/// Connecting takes at most this long, or the request timeout when that is shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run a scenario.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// An `http://host:port` forward proxy to send everything through.
    pub proxy: Option<String>,
    /// Draw the live progress line on stderr (only ever when stderr is a terminal).
    pub progress: bool,
}

/// Why a run could not start. Failed requests are not errors: they are counted in the report.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("OAuth: {0}")]
    Auth(#[from] AuthError),
    #[error("cannot start the generator's threads: {0}")]
    Threads(std::io::Error),
}

/// Runs `scenario` to the end and reports what happened.
pub async fn run(scenario: Scenario, options: &Options) -> Result<Report, GenerateError> {
    let connect_timeout = scenario.timeout.min(CONNECT_TIMEOUT);
    let ca_file = scenario.ca_file.as_deref();
    let connector = client::Connector::new(options.proxy.as_deref(), connect_timeout, ca_file)?;
    let tokens = match &scenario.auth {
        Some(auth) => {
            let client = client::HttpClient::new(connector.clone());
            Some(auth::Tokens::start(auth, &client).await?)
        }
        None => None,
    };
    let workers = workers::Workers::start().map_err(GenerateError::Threads)?;
    let engine = Arc::new(engine::Engine::new(scenario, connector, tokens, workers));
    let progress = progress::Progress::new(engine.scenario().duration(), options.progress);
    // Wall-clock time for the report's reader; the run itself keeps time with tokio's clock.
    let started_at = std::time::SystemTime::now();
    let run = engine.run(progress).await;
    let totals = engine.recorder.totals();
    Ok(Report::build(
        engine.scenario(),
        started_at,
        options.proxy.as_deref(),
        run.elapsed,
        &totals,
        &run.phases,
        engine.recorder.causes(),
        run.timeline,
    ))
}

/// Writes the JSON report to `out` and the HTML report to `html`, where given.
pub fn write_reports(
    report: &Report,
    out: Option<&Path>,
    html: Option<&Path>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(path) = out {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = html {
        std::fs::write(path, html::render(report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
