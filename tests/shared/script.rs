//! `gcra.lua` answers the same cases as the Rust arithmetic it copies (`shape::shared::gcra`).

use pacer::shape::shared::gcra::{cases, Op};

use super::support::redis::Redis;

#[tokio::test]
async fn the_script_answers_every_case_like_the_arithmetic() {
    let Some(redis) = Redis::start() else { return };
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let script = redis::Script::new(include_str!("../../src/shape/shared/gcra.lua"));
    for (i, (now, bucket, interval, burst, op, want)) in cases().into_iter().enumerate() {
        let key = format!("case:{i}");
        let _: () = redis::cmd("HSET")
            .arg(&key)
            .arg("tat")
            .arg(bucket.tat)
            .arg("pause")
            .arg(bucket.pause)
            .query_async(&mut conn)
            .await
            .unwrap();
        let (name, arg) = match op {
            Op::Reserve { max_wait } => ("reserve", max_wait),
            Op::Pause { retry_after } => ("pause", retry_after),
            Op::Release { tat } => ("release", tat),
        };
        let got: (u8, u64, u64, u64, u64) = script
            .key(&key)
            .key("case:params")
            .arg(name)
            .arg(now)
            .arg(interval)
            .arg(burst)
            .arg(arg)
            .invoke_async(&mut conn)
            .await
            .unwrap();
        let want = (
            u8::from(want.granted),
            want.wait,
            want.tat,
            want.interval,
            want.paused_for,
        );
        assert_eq!(got, want, "case {i}: {op:?} on {bucket:?} at {now}");
        let stored: Option<u64> = redis::cmd("HGET")
            .arg(&key)
            .arg("tat")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(stored, Some(got.2), "case {i}: the stored tat");
    }
}
