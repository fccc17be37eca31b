//! Learning benchmark (run through `bench/learn.sh`): the mock enforcing fixed windows of N
//! requests per W per token and saying so in Genesys's `inin-ratelimit-*` headers on every
//! answer, each token offered twice its share, through four contenders in turn, each against a
//! fresh mock:
//!
//! - pacer with `learn: true` and no rate (it reads the limit from the headers),
//! - pacer with `quota: N/W` (the API's exact number, written by hand),
//! - pacer with `rate: N/W` (the same number as a rate, burst 1; written per minute),
//! - pacer with AIMD only: `rate: 2N/W, adaptive: true` (the offered rate, cut by 429s).
//!
//! Reports per contender: client 200s and 429s, API 429s, and the utilisation of the API's
//! limit: the 200s that came back while the load was offered, against what the API's windows
//! allowed in that time (the queues never empty meanwhile, so the limit binds throughout).
//! `BENCH_PER_WINDOW` and `BENCH_WINDOW_SECONDS` set N and W (the platform's 300 per 60 s by
//! default), `BENCH_TOKENS` the tokens (20), `BENCH_SECONDS` how long the load is offered (180)
//! and `BENCH_MAX_WAIT` the limits' `queue.max_wait` in seconds (30). A learning limit cannot
//! tell in advance that a queued request will miss its deadline (the API's next answer may
//! change the budget), so it holds each to its deadline where a quota or rate refuses it at
//! once: at twice the limit and 60 s, 20 tokens hold about 12,000 client connections and as many
//! of pacer's, past this process's file limit on the development machine (20,000), and requests
//! failed for it.

mod common;

use std::time::Duration;

use common::{env_u64, mock_stats, offer, start_mock, start_pacer, Contract};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let api = Contract {
        per_window: u32::try_from(env_u64("BENCH_PER_WINDOW", 300))?,
        window: Duration::from_secs(env_u64("BENCH_WINDOW_SECONDS", 60)),
    };
    let run_for = Duration::from_secs(env_u64("BENCH_SECONDS", 180));
    let tokens = env_u64("BENCH_TOKENS", 20) as usize;
    let (n, w) = (api.per_window, api.window.as_secs());
    println!(
        "API: {n} per {w}s per token (fixed windows, 20 ms latency, inin-ratelimit-* headers); \
         {tokens} tokens offered {:.2}/s each for {run_for:?}",
        2.0 * f64::from(n) / api.window.as_secs_f64()
    );
    println!("contender                      client 200  client 429  API 429  utilisation  run");
    let contenders = [
        ("pacer learn: true".to_owned(), "learn: true".to_owned()),
        (format!("pacer quota: {n}/{w}s"), format!("quota: {n}/{w}s")),
        (
            format!("pacer rate: {}", rate(n, w)),
            format!("rate: {}", rate(n, w)),
        ),
        (
            format!("pacer rate: {} adaptive", rate(2 * n, w)),
            format!("rate: {}, adaptive: true", rate(2 * n, w)),
        ),
    ];
    // `BENCH_ONLY=learn` runs only the contenders whose name contains it.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for (name, limit) in contenders.into_iter().filter(|c| c.0.contains(&only)) {
        let mock = start_mock(api, pacer::mock::HeaderFamily::Genesys).await?;
        let max_wait = Duration::from_secs(env_u64("BENCH_MAX_WAIT", 30));
        let url = start_pacer(&limit, max_wait, mock).await?;
        let (answers, took) = offer(&url, api, tokens, run_for).await;
        let in_time = answers
            .iter()
            .filter(|a| a.0 == 200 && a.1 <= run_for)
            .count();
        let stats = mock_stats(mock).await?;
        let ok = answers.iter().filter(|a| a.0 == 200).count();
        let refused = answers.iter().filter(|a| a.0 == 429).count();
        let mut other: Vec<u16> = answers
            .iter()
            .map(|a| a.0)
            .filter(|&s| s != 200 && s != 429)
            .collect();
        other.sort_unstable();
        other.dedup();
        let allowed = tokens as f64 * f64::from(n) * run_for.as_secs_f64() / w as f64;
        println!(
            "{name:<30} {ok:>10}  {refused:>10}  {:>7}  {:>10.1}%  {:.0}s{}",
            stats["throttled_total"],
            100.0 * in_time as f64 / allowed,
            took.as_secs_f64(),
            match other.is_empty() {
                true => String::new(),
                false => format!(
                    "  ({} other answers: {other:?}; 0 is a failed request)",
                    answers.len() - ok - refused
                ),
            }
        );
    }
    Ok(())
}

/// `n` per `w` seconds as a rate (a rate's period is s, min or h): per minute when that is
/// whole, else per hour (rounded down, so never above the API's number).
fn rate(n: u32, w: u64) -> String {
    let n = u64::from(n);
    if n * 60 % w == 0 {
        format!("{}/min", n * 60 / w)
    } else {
        format!("{}/h", n * 3600 / w)
    }
}
