//! Discovery: pacer run once with no limits in front of an API limited three ways (see
//! `support/limited.rs`) reports each limit, writes a config `pacer check` accepts, and that
//! config, run again, draws no 429 from the API. Paused tokio time: 20 s of load take moments
//! and the API's windows are exact.

use std::time::Duration;

use http_body_util::Full;
use pacer::app::{App, DiscoverOut};
use tokio::time::Instant;

use crate::support::limited::{start_limited, Limited, ANALYTICS_CAP, SCRIPTS, USERS};
use crate::support::proc;
use crate::support::*;

/// One route with a limit that only observes; every other request is grouped by its path.
const OBSERVE: &str = "
upstreams:
  api: { base_url: 'http://{api}' }
limits:
  watch: { concurrency: 1000, mode: observe }
routes:
  - { match: 'GET /api/v2/analytics/**', limits: [watch] }
";

const LOAD: Duration = Duration::from_secs(20);

/// Twice each limit for `LOAD`: users at 10/s (5/s allowed), scripts at 4/s (2/s allowed), and
/// 8 closed-loop clients of analytics (4 allowed in flight), each on its own ids.
async fn offer(pacer: &Running) {
    let client = client();
    let base = pacer.url("");
    let start = Instant::now();
    let mut tasks = Vec::new();
    let get = move |path: String| {
        let req = request("GET", &format!("{base}{path}"))
            .header("authorization", "Bearer agent-1")
            .body(Full::default())
            .unwrap();
        let client = client.clone();
        async move { send(&client, req).await.0 }
    };
    for worker in 0..2 * ANALYTICS_CAP {
        let get = get.clone();
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < LOAD {
                let status = get(format!("/api/v2/analytics/{}", 1000 + worker)).await;
                if status != 200 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n = 0u32;
    while start.elapsed() < LOAD {
        tick.tick().await;
        let user = get(format!("/api/v2/users/{}", n % 7));
        tasks.push(tokio::spawn(async move {
            user.await;
        }));
        if n % 5 == 0 || n % 5 == 2 {
            let script = get(format!(
                "/api/v2/scripts/6f1e2c3a-4b5d-4e6f-8a9b-{:012x}",
                n
            ));
            tasks.push(tokio::spawn(async move {
                script.await;
            }));
        }
        n += 1;
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn group<'a>(report: &'a serde_json::Value, route: &str) -> &'a serde_json::Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["route"] == route)
        .unwrap_or_else(|| panic!("no group {route}: {report:#}"))
}

fn within_5_percent(found: f64, truth: f64, what: &str) {
    assert!(
        (found - truth).abs() <= truth * 0.05,
        "{what}: found {found}, the API's is {truth}"
    );
}

fn quota_of(g: &serde_json::Value) -> (f64, f64) {
    let q = &g["discovered"]["limit"]["quota"];
    (
        q["count"].as_f64().unwrap(),
        q["window_s"].as_f64().unwrap(),
    )
}

/// The first run: pacer records, and writes `limits.yaml` when it stops.
async fn discover(api: &Limited, out: &std::path::Path) -> serde_json::Value {
    let yaml = OBSERVE.replace("{api}", &api.addr.to_string());
    let config = pacer::Config::parse(&yaml, std::path::Path::new(".")).unwrap();
    let discover = DiscoverOut {
        file: Some(out.to_owned()),
        base: yaml,
    };
    let app = App::discovering(config, discover).unwrap();
    let (pacer, _, admin) = start_app_admin(app).await;
    offer(&pacer).await;
    let (status, _, body) = get(&client(), &format!("http://{admin}/discovered")).await;
    assert_eq!(status, 200);
    pacer.stop().await.unwrap();
    json(&body)
}

#[tokio::test(start_paused = true)]
async fn a_mixed_run_finds_each_limit_and_the_written_config_draws_no_429() {
    let api = start_limited().await;
    let dir = temp_dir("discover");
    let out = dir.join("limits.yaml");
    let report = discover(&api, &out).await;

    // Advertised: the quota and (from the longest reset) the window, per token.
    let users = group(&report, "GET /api/v2/users/{id}");
    assert_eq!(users["configured"], false);
    let (count, window) = quota_of(users);
    within_5_percent(count, USERS.0.into(), "users quota");
    within_5_percent(window, USERS.1.as_secs_f64(), "users window");
    assert_eq!(users["discovered"]["key"], "token", "{users:#}");
    assert_eq!(users["advertised"]["family"], "inin-ratelimit-*");
    assert_eq!(users["advertised"]["lowest_remaining"], 0);

    // Concurrency: 429s only with the cap already in flight.
    let analytics = group(&report, "GET /api/v2/analytics/**");
    assert_eq!(analytics["configured"], true);
    let cap = analytics["discovered"]["limit"]["concurrency"]
        .as_f64()
        .unwrap_or_else(|| panic!("{analytics:#}"));
    within_5_percent(cap, ANALYTICS_CAP.into(), "analytics concurrency");
    assert_eq!(analytics["in_flight_at_lowest_429"], ANALYTICS_CAP);
    assert_eq!(analytics["retry_after"]["min_s"], 1.0);
    assert_eq!(analytics["retry_after"]["max_s"], 1.0);

    // Retry-After only: quota and window from the runs between 429s; the range as sent.
    let scripts = group(&report, "GET /api/v2/scripts/{id}");
    assert!(scripts["advertised"].is_null(), "{scripts:#}");
    let (count, window) = quota_of(scripts);
    within_5_percent(count, SCRIPTS.0.into(), "scripts quota");
    within_5_percent(window, SCRIPTS.1.as_secs_f64(), "scripts window");
    let sent = api.answered("scripts").retry_after.unwrap();
    assert_eq!(
        scripts["retry_after"]["min_s"], sent.0 as f64,
        "{scripts:#}"
    );
    assert_eq!(
        scripts["retry_after"]["max_s"], sent.1 as f64,
        "{scripts:#}"
    );
    let said = scripts["discovered"]["from"].as_str().unwrap();
    assert!(said.contains("Retry-After only"), "{said}");

    // The written file: valid for `pacer check`, with a comment per limit.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        !text.contains("watch"),
        "the observing limit is replaced:\n{text}"
    );
    for learned_from in [
        "quota from inin-ratelimit-*",
        "concurrency from in-flight",
        "quota from Retry-After only",
    ] {
        assert!(
            text.contains(learned_from),
            "no {learned_from:?} in:\n{text}"
        );
    }
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["check", "--config"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "pacer check refused:\n{}\n{text}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The second run, with the written config: the API refuses nothing.
    api.reset();
    let config = pacer::Config::load(&out).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let pacer = start_pacer_with(config).await;
    offer(&pacer).await;
    for endpoint in ["users", "analytics", "scripts"] {
        let a = api.answered(endpoint);
        assert_eq!(a.throttled, 0, "{endpoint}: {a:?}\n{text}");
        assert!(a.ok > 0, "{endpoint}: nothing went through");
    }
    pacer.stop().await.unwrap();
}

/// Without `--discover-out`, `/discovered` says how to turn discovery on.
#[tokio::test]
async fn discovered_is_404_when_discovery_is_off() {
    let api = start_limited().await;
    let yaml = OBSERVE.replace("{api}", &api.addr.to_string());
    let (pacer, admin) = start_pacer_admin(&yaml, api.addr).await;
    let (status, _, body) = get(&client(), &format!("http://{admin}/discovered")).await;
    assert_eq!(status, 404);
    assert_eq!(json(&body)["code"], "pacer.admin.discovery_off");
    pacer.stop().await.unwrap();
}

// === the README's walkthrough ===

/// README, "Let pacer find the limits": the mock, pacer with examples/discover/observe.yaml and
/// `--discover-out`, the plan (shortened) through it, `/discovered`, SIGTERM, `pacer check` of
/// the written file, and pacer started with it. The real binary, real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_writes_a_config_that_runs() {
    let dir = temp_dir("discover-readme");
    let (_mock, mock_url) = proc::mock(None).await;
    let mock_addr = mock_url.trim_start_matches("http://");
    let config = proc::config_for_mock("examples/discover/observe.yaml", mock_addr, &dir);
    let text = std::fs::read_to_string(&config).unwrap();
    let admin = text
        .lines()
        .find_map(|l| l.strip_prefix("admin: "))
        .unwrap()
        .trim()
        .to_owned();
    let out = dir.join("limits.yaml");
    let args = [
        "proxy",
        "--config",
        config.to_str().unwrap(),
        "--discover-out",
        out.to_str().unwrap(),
    ];
    let mut pacer = proc::Proc::spawn(&args, &[]);
    let listen = pacer.field_of_line("pacer proxy started", "listen").await;

    let plan = proc::shortened("examples/discover/plan.yaml", &dir);
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .arg("generate")
        .arg("--scenario")
        .arg(&plan)
        .args(["--proxy", &format!("http://{listen}")])
        .env("PACER_TARGET", &mock_url)
        .env("GC_TOKEN_URL", format!("{mock_url}/oauth/token"))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the plan runs within a minute")
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let (status, _, body) = get(&client(), &format!("http://{admin}/discovered")).await;
    assert_eq!(status, 200);
    let report = json(&body);
    for route in ["GET /api/v2/users/me", "GET /api/v2/scripts"] {
        let g = group(&report, route);
        assert_eq!(quota_of(g), (300.0, 60.0), "{g:#}");
        assert_eq!(g["discovered"]["key"], "token");
    }

    assert!(pacer.terminate().await, "{}", pacer.output());
    let logged = pacer.output();
    assert!(logged.contains("discovered limit"), "{logged}");
    let written = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{e}: {logged}"));
    // The platform's one budget per token: one limit both routes share.
    assert_eq!(
        written.matches("{ quota: 300/60s, key: token }").count(),
        1,
        "{written}"
    );

    let check = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["check", "--config"])
        .arg(&out)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}\n{written}");
    for route in ["GET /api/v2/scripts", "GET /api/v2/users/me"] {
        assert!(
            said.contains(&format!("route {route}: limits per-token\n")),
            "{said}"
        );
    }
    let (again, _) = proc::proxy(&out).await;
    again.stop().await;
}
