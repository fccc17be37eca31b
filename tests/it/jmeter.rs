//! Real Apache JMeter through pacer: the seed plans of `examples/jmeter/`, unmodified, in
//! non-GUI mode with only JMeter's own flags (`-H/-P` make pacer its HTTP proxy; `-J`, `-q`,
//! `-l`), in front of the mock limited like the platform at test scale.
//!
//! The mock allows 5 requests per second per token (the platform's 300 per minute, shrunk),
//! needs a bearer token, and serves one analytics query at a time. pacer is set to fit: 3/s per
//! token with a burst of 1, one analytics query at a time. A shaped run must end with every
//! sample 200 and the mock never having throttled; a control run through pacer without limits
//! shows that the same load does draw 429s. Plans with a body get a response assertion added
//! (in a copy) that fails the sample unless the mock received the plan's body byte for byte.
//! One run uses `https://` samplers: JMeter tunnels them with CONNECT, pacer intercepts them with
//! a CA it makes in the run's scratch directory, and they are shaped like the plain ones.
//!
//! JMeter runs one at a time (its JVM start costs seconds); each run takes 5 to 10 s. Without
//! JMeter the tests skip loudly, or fail under `PACER_REQUIRE_EXTERNAL=1`. `tests/it/jmeter/run.rs`
//! says where the JMeter launcher is looked for.

mod run;

use pacer::mock::MockConfig;
use run::Sample;

use crate::support::*;

/// JMeter runs, with their mock and pacer, never overlap: each gets the machine to itself.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const HOST: &str = "api.mypurecloud.com";
const TOKEN: &str = "jmeter-test-token";
const FLOW_ID: &str = "3f1c2a9e-5d7b-4c1e-9a0f-2b6d8e4c7a15";
const ANALYTICS: &str = "/api/v2/analytics/conversations/details/query";

const MOCK: &str = "
default_limit: { requests: 5, window: 1s }
require_auth: true
routes:
  - match: POST /api/v2/analytics/conversations/details/query
    concurrency: 1
    latency: 500ms
";

/// At most 1 + 3 requests in any second per token, and one analytics query at a time.
const SHAPED: &str = "
upstreams:
  mock: { base_url: 'http://{mock}', hosts: [api.mypurecloud.com] }
limits:
  per-token: { rate: 3/s, burst: 1, key: token, queue: { max_wait: 30s } }
  analytics-query: { concurrency: 1, queue: { max_wait: 30s } }
routes:
  - match: POST /api/v2/analytics/conversations/details/query
    limits: [analytics-query, per-token]
  - { match: '* /api/v2/**', limits: [per-token] }
";

/// No limits and no retries: the load reaches the mock as JMeter sends it.
const UNSHAPED: &str = "
upstreams:
  mock: { base_url: 'http://{mock}', hosts: [api.mypurecloud.com] }
retry: { max_attempts: 1 }
";

/// What a run produced: JMeter's samples and the mock's counters afterwards.
struct Outcome {
    samples: Vec<Sample>,
    stats: serde_json::Value,
}

/// One JMeter run of a seed plan through pacer.
struct Run {
    /// Names the scratch directory under `target/tmp/jmeter/`.
    name: &'static str,
    /// The seed plan in `examples/jmeter/`.
    plan: &'static str,
    pacer: &'static str,
    /// `-J` properties after the common ones (host, protocol, token).
    props: &'static [(&'static str, &'static str)],
    /// Run a copy with the body assertion added (see `run::with_body_check`).
    body_check: bool,
    /// `https://` samplers: JMeter opens CONNECT tunnels that pacer intercepts with its own CA.
    https: bool,
}

/// Runs `r` through pacer in front of the limited mock. None when JMeter is missing (the skip
/// has been announced).
async fn through_pacer(r: Run) -> Option<Outcome> {
    let tool = run::jmeter()?;
    let _alone = ONE_AT_A_TIME.lock().await;
    let protocol = if r.https { "https" } else { "http" };
    let mut props = vec![("host", HOST), ("protocol", protocol), ("token", TOKEN)];
    props.extend_from_slice(r.props);
    let dir = run::scratch(r.name);
    let mut pacer_yaml = r.pacer.to_owned();
    if r.https {
        // pacer makes its CA here on start; JMeter's HttpClient4 accepts any certificate.
        let ca = |file: &str| dir.join(file).display().to_string();
        let (cert, key) = (ca("pacer-ca.pem"), ca("pacer-ca-key.pem"));
        pacer_yaml.push_str(&format!(
            "intercept: {{ ca_cert: '{cert}', ca_key: '{key}' }}\n"
        ));
    }
    let plan = match r.body_check {
        true => run::with_body_check(&run::plan(r.plan), &props, &dir),
        false => run::plan(r.plan),
    };
    let mock = start_mock(MockConfig::from_yaml(MOCK).unwrap()).await;
    let pacer = start_pacer(&pacer_yaml, mock.addr).await;
    let samples = run::run(&tool, &plan, pacer.addr, &props, &dir).await;
    let stats = mock_stats(&mock).await;
    Some(Outcome { samples, stats })
}

/// Every sample is a 200 for `label`, and the mock answered each exactly once, never a 429.
fn assert_all_ok(o: &Outcome, label: &str, expected: usize) {
    assert_eq!(o.samples.len(), expected, "samples: {:#?}", o.samples);
    for s in &o.samples {
        assert!(s.code == "200" && s.success, "a sample failed: {s:?}");
        assert_eq!(s.label, label);
    }
    assert_eq!(o.stats["requests_total"], expected, "{}", o.stats);
    assert_eq!(
        o.stats["throttled_total"], 0,
        "the mock throttled: {}",
        o.stats
    );
}

/// 4 agents x 4 polls, 50 ms apart: far over the mock's 5 per second when nothing paces them.
const POLL: &[(&str, &str)] = &[("threads", "4"), ("loops", "4"), ("think_ms", "50")];

#[tokio::test]
async fn poll_scripts_through_pacer_gets_only_200s() {
    let run = Run {
        name: "poll-shaped",
        plan: "poll-scripts.jmx",
        pacer: SHAPED,
        props: POLL,
        body_check: false,
        https: false,
    };
    let Some(o) = through_pacer(run).await else {
        return;
    };
    assert_all_ok(&o, "GET /api/v2/scripts", 16);
    for s in &o.samples {
        assert_eq!(s.url, format!("http://{HOST}/api/v2/scripts"));
    }
    assert_eq!(o.stats["routes"]["GET /api/v2/scripts"]["requests"], 16);
}

#[tokio::test]
async fn https_samplers_are_intercepted_and_shaped_the_same() {
    let run = Run {
        name: "update-flow-https",
        plan: "update-flow.jmx",
        pacer: SHAPED,
        props: &[("threads", "4"), ("loops", "3"), ("flowId", FLOW_ID)],
        body_check: true,
        https: true,
    };
    let Some(o) = through_pacer(run).await else {
        return;
    };
    assert_all_ok(&o, "PUT /api/v2/flows/{flowId}", 12);
    for s in &o.samples {
        assert_eq!(s.url, format!("https://{HOST}/api/v2/flows/{FLOW_ID}"));
        assert!(s.failure.is_empty(), "the body assertion failed: {s:?}");
    }
    let route = format!("PUT /api/v2/flows/{FLOW_ID}");
    assert_eq!(o.stats["routes"][&route]["requests"], 12, "{}", o.stats);
}

#[tokio::test]
async fn the_same_poll_without_limits_draws_429s() {
    let run = Run {
        name: "poll-unshaped",
        plan: "poll-scripts.jmx",
        pacer: UNSHAPED,
        props: POLL,
        body_check: false,
        https: false,
    };
    let Some(o) = through_pacer(run).await else {
        return;
    };
    assert_eq!(o.samples.len(), 16);
    let refused = o.samples.iter().filter(|s| s.code == "429").count();
    let ok = o.samples.iter().filter(|s| s.code == "200").count();
    assert!(
        refused > 0,
        "the load never hit the mock's limit: {}",
        o.stats
    );
    assert_eq!(refused + ok, 16, "only 200s and 429s: {:#?}", o.samples);
    assert_eq!(o.stats["throttled_total"], refused, "{}", o.stats);
}

#[tokio::test]
async fn update_flow_bodies_reach_the_api_unaltered() {
    let run = Run {
        name: "update-flow",
        plan: "update-flow.jmx",
        pacer: SHAPED,
        props: &[("threads", "4"), ("loops", "3"), ("flowId", FLOW_ID)],
        body_check: true,
        https: false,
    };
    let Some(o) = through_pacer(run).await else {
        return;
    };
    assert_all_ok(&o, "PUT /api/v2/flows/{flowId}", 12);
    for s in &o.samples {
        assert_eq!(s.url, format!("http://{HOST}/api/v2/flows/{FLOW_ID}"));
        assert!(s.failure.is_empty(), "the body assertion failed: {s:?}");
    }
    let route = format!("PUT /api/v2/flows/{FLOW_ID}");
    assert_eq!(o.stats["routes"][&route]["requests"], 12, "{}", o.stats);
}

#[tokio::test]
async fn analytics_queries_run_one_at_a_time_with_their_bodies() {
    let run = Run {
        name: "analytics-query",
        plan: "analytics-query.jmx",
        pacer: SHAPED,
        props: &[("threads", "4"), ("loops", "2")],
        body_check: true,
        https: false,
    };
    let Some(o) = through_pacer(run).await else {
        return;
    };
    assert_all_ok(&o, &format!("POST {ANALYTICS}"), 8);
    for s in &o.samples {
        assert_eq!(s.url, format!("http://{HOST}{ANALYTICS}"));
        assert!(s.failure.is_empty(), "the body assertion failed: {s:?}");
    }
    assert_eq!(o.stats["max_in_flight"], 1, "{}", o.stats);
}

/// Each plan's request, with its defaults, is shaped by the example config it is shown with.
#[test]
fn the_example_config_shapes_every_seed_plan() {
    let config = pacer::Config::load(&run::plan("pacer-mock.yaml")).expect("a valid config");
    let table = pacer::route::RouteTable::new(&config);
    let per_token = config.limits.iter().position(|l| l.name == "per-token");
    for file in ["poll-scripts.jmx", "update-flow.jmx", "analytics-query.jmx"] {
        let text = std::fs::read_to_string(run::plan(file)).unwrap();
        let prop = |name: &str| run::expand_props(&string_prop(&text, name), &[]);
        let (method, path) = (prop("HTTPSampler.method"), prop("HTTPSampler.path"));
        let host = prop("HTTPSampler.domain");
        assert!(config.upstreams.iter().any(|u| u.hosts.contains(&host)));
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let route = table
            .find(&method, &path)
            .map(|id| table.get(id))
            .unwrap_or_else(|| panic!("{file}: no route for {method} {path}"));
        let per_token = pacer::exchange::LimitId::new(per_token.unwrap());
        assert!(route.limits.contains(&per_token), "{file}");
        for header in ["Authorization", "Content-Type", "HttpClient4"] {
            assert!(text.contains(header), "{file} lacks {header}");
        }
    }
}

/// The text of `<stringProp name="NAME">` in a plan.
fn string_prop(plan: &str, name: &str) -> String {
    let open = format!(r#"<stringProp name="{name}">"#);
    let start = plan.find(&open).unwrap_or_else(|| panic!("no {name}")) + open.len();
    let end = start + plan[start..].find("</stringProp>").unwrap();
    plan[start..end].to_owned()
}

#[test]
fn jtl_fields_may_be_quoted() {
    let text = "label,responseCode,success,failureMessage,URL\n\
                a,200,true,,http://h/p\n\
                \"b, \"\"c\"\"\",429,false,\"Test failed:\nline two\",http://h/q\n";
    let samples = run::parse_jtl(text);
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1].label, "b, \"c\"");
    assert_eq!(samples[1].failure, "Test failed:\nline two");
    assert!(samples[0].success && !samples[1].success);
}
