//! The page's tables: what ran and the verdict, thresholds, the summary, target against
//! achieved per open phase, errors by cause.

use std::fmt::Write as _;

use super::escape;
use crate::generate::report::{Report, Summary};

/// What ran, where, when, and the overall verdict.
pub(super) fn overview(r: &Report) -> String {
    let via = r.proxy.as_deref().map(escape);
    let verdict = match r.failure() {
        None => "<span class=\"pass\">passed</span>".to_owned(),
        Some(f) => format!(
            "<span class=\"fail\">failed</span>: {}",
            escape(&f.to_string())
        ),
    };
    let rows = [
        ("scenario", escape(&r.scenario)),
        ("target", escape(&r.target)),
        ("proxy", via.unwrap_or_else(|| "none".into())),
        ("started", escape(&r.started_at)),
        ("duration", format!("{:.1} s", r.duration_s)),
        (
            "requests",
            format!("{} ({:.1}/s)", r.total.requests, r.total.rps),
        ),
        ("result", verdict),
    ];
    let mut out = String::from("<section id=\"overview\"><table>\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{k}</th><td class=\"text\">{v}</td></tr>");
    }
    out.push_str("</table></section>\n");
    out
}

pub(super) fn thresholds(r: &Report) -> String {
    let mut out = String::from("<section id=\"thresholds\">\n<h2>Thresholds</h2>\n");
    if r.thresholds.is_empty() {
        out.push_str(
            "<p class=\"note\">None set (add <code>thresholds:</code> to the scenario).</p>\n",
        );
    } else {
        out.push_str(
            "<table><tr><th>threshold</th><th>limit</th><th>measured</th><th></th></tr>\n",
        );
        for c in &r.thresholds {
            let (class, word) = if c.passed {
                ("pass", "pass")
            } else {
                ("fail", "FAIL")
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{word}</td></tr>",
                c.name,
                escape(&c.limit),
                escape(&c.actual)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
    out
}

pub(super) fn tables(report: &Report) -> String {
    let mut out = String::from(
        "<table><tr><th></th><th>requests</th><th>rps</th><th>2xx</th><th>429</th>\
         <th>other</th><th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>\
         <th>max ms</th></tr>\n",
    );
    for (name, p) in &report.by_phase.0 {
        out.push_str(&row(&format!("phase {name}"), &p.summary));
    }
    for (name, s) in &report.by_request.0 {
        out.push_str(&row(&format!("request {name}"), s));
    }
    out.push_str(&row("total", &report.total));
    out.push_str("</table>\n");
    out
}

fn row(label: &str, s: &Summary) -> String {
    let ok: u64 = s.status.range(200..300).map(|(_, n)| n).sum();
    let throttled = s.status_count(429);
    let other = s.status.values().sum::<u64>() - ok - throttled;
    let l = &s.latency_ms;
    format!(
        "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{ok}</td><td>{throttled}</td>\
         <td>{other}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>\n",
        escape(label),
        s.requests,
        s.rps,
        s.errors,
        l.p50,
        l.p90,
        l.p99,
        l.max
    )
}

/// Target against achieved, per open phase.
pub(super) fn open_phases(r: &Report) -> String {
    let mut out = String::from(
        "<table><tr><th>open phase</th><th>target rps</th><th>achieved rps</th>\
         <th>sent rps</th><th>dropped</th><th>schedule lag p99 ms</th></tr>\n",
    );
    let mut any = false;
    for (name, p) in &r.by_phase.0 {
        let (Some(target), Some(achieved), Some(sent)) = (p.target_rps, p.achieved_rps, p.sent_rps)
        else {
            continue;
        };
        any = true;
        let dropped = p.summary.error_kinds.get("dropped").copied().unwrap_or(0);
        let lag = p.schedule_lag_ms.map_or(0.0, |l| l.p99);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{target:.1}</td><td>{achieved:.1}</td><td>{sent:.1}</td>\
             <td>{dropped}</td><td>{lag:.2}</td></tr>",
            escape(name)
        );
    }
    out.push_str("</table>\n");
    match any {
        true => out,
        false => String::new(),
    }
}

pub(super) fn errors(r: &Report) -> String {
    if r.error_causes.is_empty() {
        return "<p class=\"note\">Every request got a response.</p>\n".into();
    }
    let mut out =
        String::from("<table><tr><th>kind</th><th>count</th><th class=\"text\">cause</th></tr>\n");
    for c in &r.error_causes {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
            c.kind,
            c.count,
            escape(&c.cause)
        );
    }
    out.push_str("</table>\n");
    out
}
