//! `--html`: the report as one self-contained page, with inline SVG charts of rate, status mix
//! and latency per second, and the summary tables. No scripts, fonts or images are loaded from
//! anywhere, so the file opens the same offline, attached to a ticket, years later.

use std::fmt::Write as _;

use super::report::{Report, Second, Summary};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 220.0;
/// Room for the y-axis labels on the left and the x-axis labels below.
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

/// A named series of `(seconds, value)` points and its colour.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let title = format!("pacer generate: {}", escape(&report.target));
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    );
    let via = report
        .proxy
        .as_deref()
        .map(escape)
        .unwrap_or_else(|| "none".into());
    let _ = writeln!(
        page,
        "<p>{} requests in {:.1} s ({:.1}/s); proxy: {via}</p>",
        report.total.requests, report.duration_s, report.total.rps
    );
    page.push_str(&tables(report));
    let t = &report.timeline;
    page.push_str("<h2>Rate (requests per second)</h2>\n");
    page.push_str(&line_chart(&rate_series(t)));
    page.push_str("<h2>Status mix (responses per second)</h2>\n");
    page.push_str(&stacked_chart(&status_series(t)));
    page.push_str("<h2>Latency (ms)</h2>\n");
    page.push_str(&line_chart(&latency_series(t)));
    page.push_str("</body></html>\n");
    page
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin-bottom:1em}td,th{padding:2px 10px;text-align:right;\
border-bottom:1px solid #ddd}td:first-child,th:first-child{text-align:left}\
svg{background:#fafafa;border:1px solid #ddd}.legend span{margin-right:1.5em}";

fn tables(report: &Report) -> String {
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

fn rate_series(t: &[Second]) -> Vec<Series<'static>> {
    let per_sec = |f: fn(&Second) -> u64| {
        t.iter()
            .map(|s| (s.t, f(s) as f64 / s.span_s.max(1e-3)))
            .collect()
    };
    vec![
        Series {
            name: "sent",
            color: "#1f77b4",
            points: per_sec(|s| s.sent),
        },
        Series {
            name: "completed",
            color: "#2ca02c",
            points: per_sec(|s| s.completed),
        },
    ]
}

fn status_series(t: &[Second]) -> Vec<Series<'static>> {
    let per_sec = |f: &dyn Fn(&Second) -> u64| -> Vec<(f64, f64)> {
        t.iter()
            .map(|s| (s.t, f(s) as f64 / s.span_s.max(1e-3)))
            .collect()
    };
    let class = |lo: u16, hi: u16| move |s: &Second| s.status.range(lo..hi).map(|(_, n)| n).sum();
    vec![
        Series {
            name: "2xx",
            color: "#2ca02c",
            points: per_sec(&class(200, 300)),
        },
        Series {
            name: "429",
            color: "#ff7f0e",
            points: per_sec(&class(429, 430)),
        },
        Series {
            name: "other 1xx-4xx",
            color: "#9467bd",
            points: per_sec(&|s| class(100, 500)(s) - class(200, 300)(s) - class(429, 430)(s)),
        },
        Series {
            name: "5xx",
            color: "#d62728",
            points: per_sec(&class(500, 600)),
        },
        Series {
            name: "errors",
            color: "#7f7f7f",
            points: per_sec(&|s| s.errors),
        },
    ]
}

fn latency_series(t: &[Second]) -> Vec<Series<'static>> {
    let pick = |f: fn(&Second) -> f64| t.iter().map(|s| (s.t, f(s))).collect();
    vec![
        Series {
            name: "p50",
            color: "#2ca02c",
            points: pick(|s| s.p50_ms),
        },
        Series {
            name: "p99",
            color: "#ff7f0e",
            points: pick(|s| s.p99_ms),
        },
        Series {
            name: "max",
            color: "#d62728",
            points: pick(|s| s.max_ms),
        },
    ]
}

/// Lines, one per series.
fn line_chart(series: &[Series]) -> String {
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let frame = Frame::new(series, y_max);
    let mut svg = frame.open();
    for s in series {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", frame.x(x), frame.y(y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
            s.color,
            points.join(" ")
        );
    }
    frame.close(svg, series)
}

/// Bars per second, the series stacked in order.
fn stacked_chart(series: &[Series]) -> String {
    let n = series.first().map_or(0, |s| s.points.len());
    let total = |i: usize| series.iter().map(|s| s.points[i].1).sum::<f64>();
    let y_max = (0..n).map(total).fold(0.0, f64::max);
    let frame = Frame::new(series, y_max);
    let mut svg = frame.open();
    for i in 0..n {
        let (t, mut base) = (series[0].points[i].0, 0.0);
        let x0 = frame.x(if i == 0 {
            0.0
        } else {
            series[0].points[i - 1].0
        });
        let w = (frame.x(t) - x0 - 1.0).max(1.0);
        for s in series {
            let v = s.points[i].1;
            if v > 0.0 {
                let (top, bottom) = (frame.y(base + v), frame.y(base));
                let _ = writeln!(
                    svg,
                    "<rect x=\"{x0:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
                    bottom - top,
                    s.color
                );
            }
            base += v;
        }
    }
    frame.close(svg, series)
}

/// Axes and scales shared by the charts.
struct Frame {
    x_max: f64,
    y_max: f64,
}

impl Frame {
    fn new(series: &[Series], y_max: f64) -> Frame {
        let x_max = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold(1.0, f64::max);
        Frame {
            x_max,
            y_max: nice_ceiling(y_max),
        }
    }

    fn x(&self, t: f64) -> f64 {
        LEFT + t / self.x_max * (WIDTH - LEFT - 10.0)
    }

    fn y(&self, v: f64) -> f64 {
        TOP + (1.0 - v / self.y_max) * (HEIGHT - TOP - BOTTOM)
    }

    /// The opening tag, grid lines and axis labels.
    fn open(&self) -> String {
        let mut svg = format!(
            // Inline SVG in HTML needs no namespace attribute.
            "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-size=\"11\">\n"
        );
        for i in 0..=4 {
            let v = self.y_max * f64::from(i) / 4.0;
            let y = self.y(v);
            let _ = writeln!(
                svg,
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                WIDTH - 10.0,
                LEFT - 4.0,
                y + 4.0,
                short(v)
            );
        }
        // Whole seconds at a round step: 0s 1s 2s ..., or 0s 10s 20s ... on a long run.
        let step = nice_ceiling(self.x_max / 8.0);
        let mut t = 0.0;
        while t <= self.x_max {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{t:.0}s</text>",
                self.x(t),
                HEIGHT - 6.0
            );
            t += step;
        }
        svg
    }

    /// The closing tag and a legend below the chart.
    fn close(&self, mut svg: String, series: &[Series]) -> String {
        svg.push_str("</svg>\n<div class=\"legend\">");
        for s in series {
            let _ = write!(
                svg,
                "<span><span style=\"color:{}\">&#9632;</span> {}</span>",
                s.color,
                escape(s.name)
            );
        }
        svg.push_str("</div>\n");
        svg
    }
}

/// The next of 1, 2, 5 times a power of ten at or above `v` (at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * magnitude)
}

/// An axis label: 1500 -> 1.5k.
fn short(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v if v >= 10.0 || v == 0.0 => format!("{v:.0}"),
        v => format!("{v:.2}"),
    }
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
    fn scales_and_labels() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(17.0), 20.0);
        assert_eq!(nice_ceiling(500.0), 500.0);
        assert_eq!(nice_ceiling(501.0), 1000.0);
        assert_eq!(short(1500.0), "1.5k");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
