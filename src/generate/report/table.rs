//! The summary table `pacer generate` prints at the end of a run.

use std::fmt::Write as _;

use super::{Report, Summary};

impl Report {
    /// The summary table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "",
            "requests",
            "rps",
            "2xx",
            "429",
            "other",
            "errors",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        let mut row =
            |label: &str, s: &Summary| {
                let ok: u64 = s.status.range(200..300).map(|(_, n)| n).sum();
                let throttled = s.status_count(429);
                let other = s.status.values().sum::<u64>() - ok - throttled;
                let l = &s.latency_ms;
                let _ =
                    writeln!(
                out,
                "{:<28} {:>9} {:>9.1} {:>8} {:>8} {:>8} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                clip(label, 28), s.requests, s.rps, ok, throttled, other, s.errors, l.p50, l.p90,
                l.p99, l.max
            );
            };
        for (name, s) in &self.by_phase.0 {
            row(&format!("phase {name}"), &s.summary);
        }
        for (name, s) in &self.by_request.0 {
            row(&format!("request {name}"), s);
        }
        row("total", &self.total);
        if !self.error_causes.is_empty() {
            let _ = writeln!(out, "errors:");
            for c in &self.error_causes {
                let _ = writeln!(out, "  {:<8} {:>9}  {}", c.kind, c.count, c.cause);
            }
        }
        if !self.thresholds.is_empty() {
            let _ = writeln!(out, "thresholds:");
            for c in &self.thresholds {
                let verdict = if c.passed { "pass" } else { "FAIL" };
                let limit = format!("{} {}", c.name, c.limit);
                let _ = writeln!(out, "  {limit:<26} {:>12}  {verdict}", c.actual);
            }
        }
        out
    }
}

/// At most `width` characters, with an ellipsis when cut.
fn clip(text: &str, width: usize) -> String {
    match text.chars().count() > width {
        true => text.chars().take(width - 1).chain(['…']).collect(),
        false => text.to_owned(),
    }
}
