//! Helpers for the load generator's tests: a bounded run ([`super::open_mock`] is the mock
//! without limits they use).

use std::time::Duration;

use pacer::generate::{self, Options, Report, Scenario};

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

/// Parses a scenario in which `{target}` stands for `target`; no environment.
pub fn scenario(yaml: &str, target: &str) -> Scenario {
    let yaml = yaml.replace("{target}", target);
    Scenario::parse_with_env(&yaml, |_| None)
        .unwrap_or_else(|e| panic!("test scenario is invalid:\n{e}\n---\n{yaml}"))
}
