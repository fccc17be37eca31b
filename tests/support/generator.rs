//! Helpers for the load generator's tests: the mock without limits, a bounded run.

use std::time::Duration;

use pacer::generate::{self, Options, Report, Scenario};
use pacer::mock::MockConfig;

use super::{start_mock, Running};

/// The mock without its limits: only the generator is under test.
pub async fn open_mock() -> Running {
    start_mock(MockConfig {
        default_limit: None,
        ..Default::default()
    })
    .await
}

/// Runs `scenario` (through `proxy`, when given) without a progress line; at most 60 s.
pub async fn run(scenario: Scenario, proxy: Option<String>) -> Report {
    let options = Options {
        proxy,
        progress: false,
    };
    tokio::time::timeout(Duration::from_secs(60), generate::run(scenario, &options))
        .await
        .expect("the run ends within 60 s")
        .expect("the run starts")
}
