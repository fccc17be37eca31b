//! The HTML report rendered in a real headless Chromium: the page loads, every section is in
//! the DOM, and a screenshot is taken (kept under the system temp dir for a person to look at).

use std::path::Path;
use std::time::Duration;

use pacer::generate::{self, Options, Scenario};
use pacer::mock::MockConfig;

use crate::support::external;
use crate::support::*;

/// Runs Chromium headless on `page` with `mode` (`--dump-dom` or `--screenshot=...`); returns
/// its stdout.
async fn chromium(bin: &Path, profile: &Path, page: &Path, mode: &str) -> String {
    let out = tokio::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1000,3400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), out)
        .await
        .expect("chromium ends within 90 s")
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A run with everything the report can show: an open ramp that overflows `max_in_flight`
/// (dropped arrivals), a closed phase (users), two request names, a passed and a crossed
/// threshold.
async fn report_page(dir: &Path) -> std::path::PathBuf {
    let mock = start_mock(MockConfig {
        default_limit: None,
        latency: Duration::from_millis(30),
        ..Default::default()
    })
    .await;
    let yaml = format!(
        "name: report-check\ntarget: http://{}\nmax_in_flight: 4\n\
         phases:\n  - {{ name: ramp, duration: 2s, rate: 20/s, to: 300/s }}\n\
         \x20 - {{ name: agents, duration: 2s, users: 5, think: 50ms }}\n\
         requests:\n  - {{ name: users, weight: 3, path: /api/v2/users }}\n\
         \x20 - {{ name: scripts, path: /api/v2/scripts }}\n\
         thresholds: {{ p99: 10s, error_rate: 1%, rate_achieved: 99% }}\n",
        mock.addr
    );
    let scenario = Scenario::parse_with_env(&yaml, |_| None).unwrap();
    let report = generate::run(scenario, &Options::default()).await.unwrap();
    let dropped = report.total.error_kinds.get("dropped").copied();
    assert!(dropped.unwrap_or(0) > 0);
    let crossed: Vec<&str> = (report.thresholds.iter())
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect();
    assert_eq!(
        crossed,
        ["error_rate", "rate_achieved"],
        "dropped arrivals cross both"
    );
    let html = dir.join("report.html");
    generate::write_reports(&report, None, Some(&html)).unwrap();
    html
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_in_chromium() {
    let Some(bin) = external::tool("chromium", "apt-get install -y chromium") else {
        return;
    };
    let dir = temp_dir("gen-html");
    let page = report_page(&dir).await;
    let profile = dir.join("chromium-profile");

    let dom = chromium(&bin, &profile, &page, "--dump-dom").await;
    for id in generate::html::SECTIONS {
        assert!(dom.contains(&format!("<section id=\"{id}\">")), "no #{id}");
    }
    for text in [
        "report-check",
        "started",
        "GMT",
        "FAIL",
        "error_rate",
        "dropped",
        "max_in_flight (4)",
        "target",
        "scale-log",
    ] {
        assert!(dom.contains(text), "the page does not show {text:?}");
    }
    // Parsed as SVG: paths and rects inside, and the "agents" boundary on each time chart.
    assert!(dom.matches("<svg").count() >= 8);
    assert!(dom.matches(">agents</text>").count() >= 7);

    let shot = dir.join("report.png");
    chromium(
        &bin,
        &profile,
        &page,
        &format!("--screenshot={}", shot.display()),
    )
    .await;
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 20_000, "a blank page? {} bytes", png.len());
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("screenshot of the report: {}\n", shot.display()).as_bytes(),
    );
}
