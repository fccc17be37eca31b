//! Inline SVG charts: lines over time (with gaps where a second had nothing to measure),
//! stacked bars over time, and plain bars. Every chart over time marks the phase boundaries.

use std::fmt::Write as _;

use super::escape;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 220.0;
/// Room for the y-axis labels on the left, the x-axis labels below, phase names above.
const LEFT: f64 = 60.0;
const RIGHT: f64 = 10.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 18.0;

/// A named series of `(x, value)` points; `None` is a gap (nothing measured there).
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, Option<f64>)>,
    /// Drawn dashed: a target rather than a measurement.
    pub dashed: bool,
}

/// How values map to height.
#[derive(Clone, Copy, PartialEq)]
pub enum Scale {
    Linear,
    /// Powers of ten, for latencies that span several.
    Log,
}

/// The time axis shared by the charts of one report: its length and the phases on it.
pub struct TimeAxis<'a> {
    pub seconds: f64,
    /// Each phase's start (seconds from the start of the run) and name.
    pub phases: &'a [(f64, String)],
}

/// Colours for series that have no meaning of their own (request names), in turn.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

impl Series {
    pub fn new(name: &str, color: &'static str, points: Vec<(f64, Option<f64>)>) -> Series {
        Series {
            name: name.to_owned(),
            color,
            points,
            dashed: false,
        }
    }
}

/// Lines over time, one per series, broken where a point is `None`.
pub fn lines(axis: &TimeAxis, series: &[Series], scale: Scale) -> String {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1));
    let frame = Frame::new(axis.seconds, values, scale);
    let mut svg = frame.open(axis);
    for s in series {
        let mut d = String::new();
        let mut pen_down = false;
        for &(x, y) in &s.points {
            match y {
                Some(y) => {
                    let cmd = if pen_down { 'L' } else { 'M' };
                    let _ = write!(d, "{cmd}{:.1},{:.1} ", frame.x(x), frame.y(y));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let dash = if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            "<path fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"{dash} d=\"{}\"/>",
            s.color,
            d.trim_end()
        );
    }
    frame.close(svg, series)
}

/// Bars per second, the series stacked in order; each point's x is the end of its second.
pub fn stacked(axis: &TimeAxis, series: &[Series]) -> String {
    let n = series.first().map_or(0, |s| s.points.len());
    let at = |s: &Series, i: usize| s.points[i].1.unwrap_or(0.0);
    let totals: Vec<f64> = (0..n)
        .map(|i| series.iter().map(|s| at(s, i)).sum())
        .collect();
    let frame = Frame::new(axis.seconds, totals.iter().copied(), Scale::Linear);
    let mut svg = frame.open(axis);
    for i in 0..n {
        let t = series[0].points[i].0;
        let x0 = frame.x(if i == 0 {
            0.0
        } else {
            series[0].points[i - 1].0
        });
        let w = (frame.x(t) - x0 - 1.0).max(1.0);
        let mut base = 0.0;
        for s in series {
            let v = at(s, i);
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

/// One bar per label, for a distribution.
pub fn bars(labels: &[String], counts: &[u64], color: &'static str) -> String {
    let y_max = nice_ceiling(counts.iter().copied().max().unwrap_or(0) as f64);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT - RIGHT) / labels.len().max(1) as f64;
    let mut svg = open_svg();
    y_grid(
        &mut svg,
        y_max,
        |v| TOP + (1.0 - v / y_max) * plot_h,
        Scale::Linear,
    );
    for (i, (label, &n)) in labels.iter().zip(counts).enumerate() {
        let h = n as f64 / y_max * plot_h;
        let x = LEFT + slot * i as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{color}\">\
             <title>{n} requests</title></rect>\
             <text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + 2.0,
            TOP + plot_h - h,
            (slot - 4.0).max(1.0),
            x + slot / 2.0,
            HEIGHT - 6.0,
            escape(label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Axes and scales of a chart over time.
struct Frame {
    x_max: f64,
    scale: Scale,
    /// Linear: the top of the axis. Log: the powers of ten at the bottom and the top.
    lo: f64,
    hi: f64,
}

impl Frame {
    fn new(seconds: f64, values: impl Iterator<Item = f64>, scale: Scale) -> Frame {
        let (min, max) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (if v > 0.0 { lo.min(v) } else { lo }, hi.max(v))
        });
        let (lo, hi) = match scale {
            Scale::Linear => (0.0, nice_ceiling(max)),
            Scale::Log => {
                let lo = if min.is_finite() {
                    min.log10().floor()
                } else {
                    0.0
                };
                let hi = if max > 0.0 { max.log10().ceil() } else { 1.0 };
                (lo, hi.max(lo + 1.0))
            }
        };
        Frame {
            x_max: seconds.max(1.0),
            scale,
            lo,
            hi,
        }
    }

    fn x(&self, t: f64) -> f64 {
        LEFT + t / self.x_max * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        let share = match self.scale {
            Scale::Linear => v / self.hi,
            Scale::Log => (v.max(10f64.powf(self.lo)).log10() - self.lo) / (self.hi - self.lo),
        };
        TOP + (1.0 - share) * (HEIGHT - TOP - BOTTOM)
    }

    /// The opening tag, grid lines, axis labels and phase boundaries.
    fn open(&self, axis: &TimeAxis) -> String {
        let mut svg = open_svg();
        match self.scale {
            Scale::Linear => y_grid(&mut svg, self.hi, |v| self.y(v), Scale::Linear),
            Scale::Log => y_grid(&mut svg, self.hi, |v| self.y(v), Scale::Log),
        }
        if self.scale == Scale::Log {
            // y_grid drew the top power; the others down to the bottom one follow.
            for p in (self.lo as i32)..(self.hi as i32) {
                grid_line(&mut svg, self.y(10f64.powi(p)), &short(10f64.powi(p)));
            }
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
        for (start, name) in axis.phases {
            let x = self.x(*start);
            let _ = writeln!(
                svg,
                "<line class=\"phase\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{}\" \
                 stroke=\"#888\" stroke-dasharray=\"3 3\"/>\
                 <text x=\"{:.1}\" y=\"{}\" fill=\"#555\">{}</text>",
                HEIGHT - BOTTOM,
                x + 3.0,
                TOP - 5.0,
                escape(name)
            );
        }
        svg
    }

    /// The closing tag and a legend below the chart.
    fn close(&self, mut svg: String, series: &[Series]) -> String {
        svg.push_str("</svg>\n<div class=\"legend\">");
        for s in series {
            let mark = if s.dashed {
                "&#8211; &#8211;"
            } else {
                "&#9632;"
            };
            let _ = write!(
                svg,
                "<span><span style=\"color:{}\">{mark}</span> {}</span>",
                s.color,
                escape(&s.name)
            );
        }
        svg.push_str("</div>\n");
        svg
    }
}

fn open_svg() -> String {
    // Inline SVG in HTML needs no namespace attribute.
    format!(
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         font-size=\"11\">\n"
    )
}

/// Horizontal grid lines with labels: quarters of `top` (linear), or `top` alone (log, whose
/// lower powers of ten the caller draws).
fn y_grid(svg: &mut String, top: f64, y: impl Fn(f64) -> f64, scale: Scale) {
    match scale {
        Scale::Linear => {
            for i in 0..=4 {
                let v = top * f64::from(i) / 4.0;
                grid_line(svg, y(v), &short(v));
            }
        }
        Scale::Log => {
            let v = 10f64.powf(top);
            grid_line(svg, y(v), &short(v));
        }
    }
}

fn grid_line(svg: &mut String, y: f64, label: &str) {
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
         <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
        WIDTH - RIGHT,
        LEFT - 4.0,
        y + 4.0,
    );
}

/// The next of 1, 2, 5 times a power of ten at or above `v` (at least 1).
pub fn nice_ceiling(v: f64) -> f64 {
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
pub fn short(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v if v >= 100.0 || v == 0.0 || v.fract() == 0.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v if v >= 0.1 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
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
        assert_eq!(short(0.25), "0.2");
        assert_eq!(short(0.01), "0.01");
    }

    #[test]
    fn gaps_break_the_line() {
        let axis = TimeAxis {
            seconds: 3.0,
            phases: &[(0.0, "a".into()), (2.0, "b".into())],
        };
        let points = vec![(1.0, Some(5.0)), (2.0, None), (3.0, Some(7.0))];
        let svg = lines(&axis, &[Series::new("p99", "#000", points)], Scale::Log);
        // Two separate moves, no line drawn through the empty second.
        let d = svg.split(" d=\"").nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(!d.contains('L'), "{d}");
        assert_eq!(svg.matches("class=\"phase\"").count(), 2);
    }
}
