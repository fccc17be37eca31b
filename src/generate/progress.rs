//! The live progress line: phase, rate, status counts and p99, updated once a second.
//!
//! Drawn on stderr only when stderr is a terminal, so logs, CI output and pipes stay clean.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::record::Stats;

pub struct Progress {
    bar: ProgressBar,
}

// === impl Progress ===

impl Progress {
    /// A bar over `total` (the scenario's length); hidden unless `show` and stderr is a
    /// terminal.
    pub fn new(total: Duration, show: bool) -> Progress {
        let target = match show && std::io::stderr().is_terminal() {
            true => ProgressDrawTarget::stderr(),
            false => ProgressDrawTarget::hidden(),
        };
        let bar = ProgressBar::with_draw_target(Some(total.as_millis() as u64), target);
        let style = ProgressStyle::with_template("{elapsed:>4} [{bar:20}] {msg}")
            .expect("the template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        Progress { bar }
    }

    /// Shows the state after `elapsed`: `rate` answers per second in the last interval, and
    /// the run's cumulative counts and p99.
    pub fn update(&self, elapsed: Duration, phase: &str, rate: f64, cumulative: &Stats) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar.set_position(elapsed.as_millis() as u64);
        self.bar.set_message(line(phase, rate, cumulative));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `ramp 198/s | 200:1234 429:5 err:0 | p99 12.3ms`
fn line(phase: &str, rate: f64, stats: &Stats) -> String {
    let mut out = format!("{phase} {rate:.0}/s |");
    for (code, n) in &stats.status {
        let _ = write!(out, " {code}:{n}");
    }
    let _ = write!(
        out,
        " err:{} | p99 {:.1}ms",
        stats.error_count(),
        stats.quantile_ms(0.99)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_rate_statuses_errors_and_p99() {
        let mut stats = Stats::default();
        stats.status.insert(200, 12);
        stats.status.insert(429, 3);
        let _ = stats.latency_us.record(12_300);
        assert_eq!(
            line("ramp", 198.4, &stats),
            "ramp 198/s | 200:12 429:3 err:0 | p99 12.3ms"
        );
    }
}
