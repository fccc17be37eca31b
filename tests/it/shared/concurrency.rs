//! A shared concurrency cap: leases in Redis.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use crate::support::counting::start_counting;
use crate::support::redis::Redis;
use crate::support::*;

/// A cap of 4 across three instances: never more than 4 in flight upstream, all served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_of_four_holds_across_three_instances() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let limit = "{ concurrency: 4, shared: true, queue: { max_wait: 20s } }";
    let yaml = config(&redis, &up, limit, "");
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(start_shared(&yaml).await);
    }
    let c = client();
    let mut tasks = Vec::new();
    for inst in &instances {
        for _ in 0..6 {
            let (c, url) = (c.clone(), inst.url("/slow/100"));
            tasks.push(tokio::spawn(async move { get(&c, &url).await.0 }));
        }
    }
    for t in tasks {
        let status = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, 200);
    }
    let most = up.seen.max_in_flight.load(Ordering::SeqCst);
    assert!(most <= 4, "{most} in flight upstream at once");
    assert!(most >= 3, "the cap was hardly used: at most {most} at once");
    assert_eq!(up.arrivals().len(), 18);
    // Every lease was given back (each release is a Redis call made after the answer).
    let released = || {
        let sets = redis.cli(&["--scan", "--pattern", "*:leases"]);
        sets.lines()
            .filter(|l| !l.is_empty())
            .all(|set| redis.cli(&["ZCARD", set]).trim() == "0")
    };
    super::eventually("every lease given back", released).await;
    let held: usize = redis
        .dump_all()
        .lines()
        .filter(|l| l.contains(":leases"))
        .count();
    let sets = redis.cli(&["--scan", "--pattern", "*:leases"]);
    for set in sets.lines().filter(|l| !l.is_empty()) {
        assert_eq!(
            redis.cli(&["ZCARD", set]).trim(),
            "0",
            "leases left in {set} ({held})"
        );
    }
}

/// Slots held by an instance killed with SIGKILL come back within the lease: a real pacer
/// process takes both slots, is killed mid-request, and an in-process instance gets a slot
/// once the dead one's leases run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_slots_come_back_within_the_lease() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let limit = "{ concurrency: 2, shared: true, queue: { max_wait: 20s } }";
    let yaml = config(&redis, &up, limit, "");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir("shared-kill");
    let file = dir.join("pacer.yaml");
    std::fs::write(&file, format!("listen: 127.0.0.1:{port}\n{yaml}")).unwrap();
    set_secrets();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["proxy", "--workers", "1", "--config"])
        .arg(&file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let c = client();
    let url = format!("http://127.0.0.1:{port}/slow/60000");
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                // The process may still be starting: try until it answers.
                for _ in 0..200 {
                    if c.get(url.parse().unwrap()).await.is_ok() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            })
        })
        .collect();
    let waiting = Instant::now();
    while up.seen.in_flight.load(Ordering::SeqCst) < 2 {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the process never took both slots"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = Instant::now();
    for h in holders {
        h.abort();
    }
    let alive = start_shared(&yaml).await;
    let (status, _, _) = get(&c, &alive.url("/fast")).await;
    assert_eq!(status, 200);
    let took = killed_at.elapsed();
    let lease = pacer::shape::shared::LEASE;
    // The last renewal was at most LEASE/3 before the kill.
    assert!(
        took >= lease / 2,
        "the slots came back before the lease ran out: {took:?}"
    );
    assert!(
        took <= lease + Duration::from_secs(2),
        "came back late: {took:?}"
    );
}
