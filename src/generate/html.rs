//! `--html`: the report as one self-contained page, laid out after JMeter's dashboard and k6's
//! web report: what ran (scenario, target, date), whether it passed (thresholds), the summary
//! tables, then charts over time with the phase boundaries marked (rate against the target,
//! status mix, latency on a linear or log scale, each request's series, active users), the
//! latency distribution and the errors by cause. No scripts, fonts or images are loaded from
//! anywhere (the scale switch is CSS), so the file opens the same offline, attached to a
//! ticket, years later.

mod chart;
mod tables;

use std::fmt::Write as _;

use self::chart::{Scale, Series, TimeAxis, PALETTE};
use self::tables::{errors, open_phases, overview, tables, thresholds};
use super::report::{Report, Second};

/// The `id` of every `<section>` of the page, in page order.
pub const SECTIONS: [&str; 10] = [
    "overview",
    "thresholds",
    "summary",
    "rate",
    "status",
    "latency",
    "distribution",
    "requests",
    "users",
    "errors",
];

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let title = format!("pacer generate: {}", escape(&report.scenario));
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    );
    page.push_str(&overview(report));
    page.push_str(&thresholds(report));
    let phases: Vec<(f64, String)> = (report.by_phase.0.iter())
        .map(|(name, p)| (p.start_s, name.clone()))
        .collect();
    let axis = TimeAxis {
        seconds: report.timeline.last().map_or(report.duration_s, |s| s.t),
        phases: &phases,
    };
    let t = &report.timeline;
    let rate = chart::lines(&axis, &rate_series(report), Scale::Linear) + &open_phases(report);
    let sections = [
        ("summary", "Summary", tables(report)),
        (
            "rate",
            "Rate: target, sent, completed and dropped (per second)",
            rate,
        ),
        (
            "status",
            "Status mix (responses per second)",
            chart::stacked(&axis, &status_series(t)),
        ),
        ("latency", "Latency per second (ms)", latency(&axis, t)),
        ("distribution", "Latency distribution", distribution(report)),
        (
            "requests",
            "Per request over time",
            per_request(&axis, report),
        ),
        ("users", "Active users (closed model)", users(&axis, report)),
        ("errors", "Errors by cause", errors(report)),
    ];
    for (id, title, body) in sections {
        let _ = write!(
            page,
            "<section id=\"{id}\">\n<h2>{title}</h2>\n{body}</section>\n"
        );
    }
    page.push_str("</body></html>\n");
    page
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:960px}\
table{border-collapse:collapse;margin-bottom:1em}td,th{padding:2px 10px;text-align:right;\
border-bottom:1px solid #ddd}td:first-child,th:first-child{text-align:left}\
.text{text-align:left}svg{background:#fafafa;border:1px solid #ddd}\
.legend span{margin-right:1.5em}.pass{color:#1a7f37;font-weight:bold}\
.fail{color:#c62828;font-weight:bold}.note{color:#666}\
.scale input{margin-left:1em}.log{display:none}\
#scale-log:checked~.linear{display:none}#scale-log:checked~.log{display:block}";

/// Per second of `t`: `f` of the second, divided by its length.
fn per_sec(t: &[Second], f: impl Fn(&Second) -> u64) -> Vec<(f64, Option<f64>)> {
    (t.iter())
        .map(|s| (s.t, Some(f(s) as f64 / s.span_s.max(1e-3))))
        .collect()
}

/// Where a line chart puts a second's point: the middle of the interval it covers.
fn mid(s: &Second) -> f64 {
    s.t - s.span_s / 2.0
}

/// Points moved from the end of their second to its middle, for line charts.
fn centred(t: &[Second], points: Vec<(f64, Option<f64>)>) -> Vec<(f64, Option<f64>)> {
    t.iter()
        .zip(points)
        .map(|(s, (_, v))| (mid(s), v))
        .collect()
}

/// The target rate (open phases, from their ramps) and what was sent, completed and dropped.
fn rate_series(r: &Report) -> Vec<Series> {
    let t = &r.timeline;
    let target = t
        .iter()
        .map(|s| {
            let mid = mid(s);
            let phase = (r.by_phase.0.iter())
                .find(|(_, p)| (p.start_s..p.start_s + p.duration_s).contains(&mid));
            let rate = phase.and_then(|(_, p)| {
                let (from, to) = p.ramp_rps?;
                Some(from + (to - from) * (mid - p.start_s) / p.duration_s)
            });
            (mid, rate)
        })
        .collect();
    vec![
        Series {
            dashed: true,
            ..Series::new("target", "#555", target)
        },
        Series::new(
            "sent",
            "#1f77b4",
            centred(t, per_sec(t, |s| s.sent.saturating_sub(s.dropped))),
        ),
        Series::new(
            "completed",
            "#2ca02c",
            centred(t, per_sec(t, |s| s.completed.saturating_sub(s.dropped))),
        ),
        Series::new("dropped", "#d62728", centred(t, per_sec(t, |s| s.dropped))),
    ]
}

fn status_series(t: &[Second]) -> Vec<Series> {
    let class = |lo: u16, hi: u16| move |s: &Second| s.status.range(lo..hi).map(|(_, n)| n).sum();
    vec![
        Series::new("2xx", "#2ca02c", per_sec(t, class(200, 300))),
        Series::new("429", "#ff7f0e", per_sec(t, class(429, 430))),
        Series::new(
            "other 1xx-4xx",
            "#9467bd",
            per_sec(t, |s| {
                class(100, 500)(s) - class(200, 300)(s) - class(429, 430)(s)
            }),
        ),
        Series::new("5xx", "#d62728", per_sec(t, class(500, 600))),
        Series::new("errors", "#7f7f7f", per_sec(t, |s| s.errors)),
    ]
}

/// p50, p99 and max per second, on a linear and a log scale (a CSS switch shows one); a
/// second without responses is a gap, not a zero.
fn latency(axis: &TimeAxis, t: &[Second]) -> String {
    let pick = |f: fn(&Second) -> f64| -> Vec<(f64, Option<f64>)> {
        let answered = |s: &Second| s.completed > s.errors;
        t.iter()
            .map(|s| (mid(s), answered(s).then(|| f(s))))
            .collect()
    };
    let series = [
        Series::new("p50", "#2ca02c", pick(|s| s.p50_ms)),
        Series::new("p99", "#ff7f0e", pick(|s| s.p99_ms)),
        Series::new("max", "#d62728", pick(|s| s.max_ms)),
    ];
    format!(
        "<div class=\"scale\">scale:<input type=\"radio\" name=\"scale\" id=\"scale-linear\" checked>\
         <label for=\"scale-linear\">linear</label><input type=\"radio\" name=\"scale\" \
         id=\"scale-log\"><label for=\"scale-log\">log</label>\n\
         <div class=\"linear\">{}</div><div class=\"log\">{}</div></div>\n",
        chart::lines(axis, &series, Scale::Linear),
        chart::lines(axis, &series, Scale::Log)
    )
}

fn distribution(r: &Report) -> String {
    if r.latency_histogram.is_empty() {
        return "<p class=\"note\">No responses.</p>\n".into();
    }
    let labels: Vec<String> = (r.latency_histogram.iter())
        .map(|b| format!("≤{}", chart::short(b.le_ms)))
        .collect();
    let counts: Vec<u64> = r.latency_histogram.iter().map(|b| b.count).collect();
    let l = &r.total.latency_ms;
    format!(
        "{}<p class=\"note\">Responses by latency (ms; ten buckets per power of ten). p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}, mean {:.2} ms.</p>\n",
        chart::bars(&labels, &counts, "#1f77b4"),
        l.p50,
        l.p90,
        l.p99,
        l.max,
        l.mean
    )
}

/// Each request name's completions per second and p99 per second.
fn per_request(axis: &TimeAxis, r: &Report) -> String {
    let names = r.by_request.0.iter().map(|(n, _)| n.as_str());
    let mut rate = Vec::new();
    let mut p99 = Vec::new();
    for (i, name) in names.enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let of = |s: &Second| s.by_request.get(name).cloned();
        let per_second = (r.timeline.iter())
            .map(|s| {
                (
                    mid(s),
                    of(s).map(|q| q.completed as f64 / s.span_s.max(1e-3)),
                )
            })
            .collect();
        let latency = (r.timeline.iter())
            .map(|s| {
                (
                    s.t,
                    of(s).filter(|q| q.completed > q.errors).map(|q| q.p99_ms),
                )
            })
            .collect();
        rate.push(Series::new(name, color, per_second));
        p99.push(Series::new(name, color, latency));
    }
    format!(
        "<h3>Completed per second</h3>\n{}<h3>p99 latency per second (ms)</h3>\n{}",
        chart::lines(axis, &rate, Scale::Linear),
        chart::lines(axis, &p99, Scale::Linear)
    )
}

fn users(axis: &TimeAxis, r: &Report) -> String {
    if !r.by_phase.0.iter().any(|(_, p)| p.model == "closed") {
        return "<p class=\"note\">No closed-model phase in this scenario.</p>\n".into();
    }
    let points = (r.timeline.iter())
        // A count at the end of each second, not a total over it.
        .map(|s| (s.t, Some(s.users as f64)))
        .collect();
    chart::lines(
        axis,
        &[Series::new("users", "#9467bd", points)],
        Scale::Linear,
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
