//! `gcra.lua` answers the same cases as the Rust arithmetic it copies (`shape::shared::gcra`).

use pacer::shape::shared::gcra::{cases, Case, Op};

use crate::support::redis::Redis;

#[tokio::test]
async fn the_script_answers_every_case_like_the_arithmetic() {
    let Some(redis) = Redis::start() else { return };
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let script = redis::Script::new(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/shape/shared/gcra.lua"
    )));
    for (i, c) in cases().into_iter().enumerate() {
        let (bucket, params) = (format!("case:{i}"), format!("case:{i}:params"));
        setup(&mut conn, &bucket, &params, &c).await;
        let (name, arg) = match c.op {
            Op::Reserve { max_wait } => ("reserve", max_wait),
            Op::Pause { retry_after } => ("pause", retry_after),
            Op::Release { tat } => ("release", tat),
        };
        let mut call = script.prepare_invoke();
        call.key(&bucket)
            .key(&params)
            .arg(name)
            .arg(c.now)
            .arg(c.params.interval)
            .arg(c.params.burst)
            .arg(arg);
        match c.params.aimd {
            Some(a) => call.arg(a.factor).arg(a.floor).arg(a.step).arg(a.every),
            None => call.arg("").arg("").arg("").arg(""),
        };
        let got: (u8, u64, u64, u64, u64) = call.invoke_async(&mut conn).await.unwrap();
        let w = c.want;
        let want = (u8::from(w.granted), w.wait, w.tat, w.interval, w.paused_for);
        assert_eq!(got, want, "case {i}: {c:?}");
        let stored: Option<u64> = hget(&mut conn, &bucket, "tat").await;
        if w.granted {
            assert_eq!(stored, Some(got.2), "case {i}: the stored tat");
        }
        if let Some((cut_to, cut_at)) = c.cut {
            let to: Option<f64> = hget(&mut conn, &params, "cut_to").await;
            let at: Option<u64> = hget(&mut conn, &params, "cut_at").await;
            assert_eq!((to, at), (Some(cut_to), Some(cut_at)), "case {i}: the cut");
        }
    }
}

async fn setup(conn: &mut redis::aio::MultiplexedConnection, bucket: &str, params: &str, c: &Case) {
    let _: () = redis::cmd("HSET")
        .arg(bucket)
        .arg("tat")
        .arg(c.bucket.tat)
        .arg("pause")
        .arg(c.bucket.pause)
        .query_async(conn)
        .await
        .unwrap();
    let mut fields: Vec<(&str, String)> = Vec::new();
    let live = c.live;
    if let Some(v) = live.interval {
        fields.push(("interval", v.to_string()));
    }
    if let Some(v) = live.burst {
        fields.push(("burst", v.to_string()));
    }
    if let Some(v) = live.cut_to {
        fields.push(("cut_to", format!("{v:?}")));
    }
    if let Some(v) = live.cut_at {
        fields.push(("cut_at", v.to_string()));
    }
    if let Some(v) = live.event_end {
        fields.push(("event_end", v.to_string()));
    }
    if !fields.is_empty() {
        let _: () = redis::cmd("HSET")
            .arg(params)
            .arg(&fields)
            .query_async(conn)
            .await
            .unwrap();
    }
}

async fn hget<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    field: &str,
) -> T {
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(conn)
        .await
        .unwrap()
}
