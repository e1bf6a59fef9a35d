//! Charts as inline SVG, drawn from numbers: line charts (with shaded phase bands), histograms
//! and grouped horizontal bars. Pure functions from data to SVG text; every label is escaped.
//! No scripts, fonts or external references, so an HTML page that embeds them stays
//! self-contained and prints cleanly.

use std::fmt::Write;

mod lanes;
mod plot;

pub use lanes::{Lane, lanes};
pub use plot::{Mark, Plot, Rule, line};

/// Series colours, picked to stay apart for common colour-vision deficiencies.
const PALETTE: [&str; 8] = [
    "#2f6fdb", "#e8710a", "#1e8e3e", "#a142f4", "#d93025", "#12b5cb", "#795548", "#f9ab00",
];

const W: f64 = 720.0;
const H: f64 = 250.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 42.0;

/// One line of a line chart; a point with a NaN `y` breaks the line.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A shaded stretch of the x axis (a phase), labelled at its top.
#[derive(Debug, Clone)]
pub struct Band {
    pub x0: f64,
    pub x1: f64,
    pub label: String,
    /// Drawn darker (a warmup phase).
    pub strong: bool,
}

/// One bar of a histogram.
#[derive(Debug, Clone, Copy)]
pub struct Bar {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// One group of a grouped bar chart: a label and one value per series (None: no bar).
#[derive(Debug, Clone)]
pub struct BarGroup {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A compact number for value labels: 1200 → `1200`, 0.25 → `0.25`, 2.5e6 → `2.5M`.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6).replace(".0M", "M")
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A tick label with as many decimals as the tick step needs, so ticks never repeat.
fn tick_label(v: f64, step: f64) -> String {
    if step >= 1e6 {
        return short(v);
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.decimals$}")
}

/// The spacing of `ticks(lo, hi)`.
fn tick_step(t: &[f64]) -> f64 {
    if t.len() > 1 { t[1] - t[0] } else { 1.0 }
}

/// Round tick values covering `[lo, hi]`, about five of them.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// The range to draw: data bounds widened to round ticks, never empty.
fn nice_range(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi <= lo {
        let pad = lo.abs().max(1.0) * 0.5;
        return if lo == 0.0 {
            (0.0, 1.0)
        } else {
            ((lo - pad).max(0.0), hi + pad)
        };
    }
    let t = ticks(lo, hi);
    let step = if t.len() > 1 { t[1] - t[0] } else { hi - lo };
    ((lo / step).floor() * step, (hi / step).ceil() * step)
}

/// Opens an SVG with a title, returning it and the plot area.
fn open(id: &str, title: &str, height: f64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" role="img" aria-labelledby="{id}-title" font-family="system-ui, sans-serif" font-size="11"><title id="{id}-title">{t}</title><text x="{LEFT}" y="16" font-size="13" font-weight="600" fill="#1d2330">{t}</text>"##,
        id = esc(id),
        t = esc(title),
    );
    s
}

/// Axes, grid and tick labels for the given ranges.
fn axes(s: &mut String, x: (f64, f64), y: (f64, f64), x_label: &str, y_label: &str, h: f64) {
    let (px, py) = (scale(x, LEFT, W - RIGHT), scale(y, h - BOTTOM, TOP));
    let ty = ticks(y.0, y.1);
    let step = tick_step(&ty);
    for t in ty {
        let yy = py(t);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e3e6ec"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#5b6475">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            tick_label(t, step)
        );
    }
    let tx = ticks(x.0, x.1);
    let step = tick_step(&tx);
    for t in tx {
        let xx = px(t);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{:.1}" y2="{:.1}" stroke="#9aa1ad"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#5b6475">{}</text>"##,
            h - BOTTOM,
            h - BOTTOM + 4.0,
            h - BOTTOM + 16.0,
            tick_label(t, step)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{b:.1}" y2="{b:.1}" stroke="#9aa1ad"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#5b6475">{}</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="#5b6475">{}</text>"##,
        W - RIGHT,
        (LEFT + W - RIGHT) / 2.0,
        h - 6.0,
        esc(x_label),
        (TOP + h - BOTTOM) / 2.0,
        esc(y_label),
        b = h - BOTTOM,
    );
}

/// Maps `[d.0, d.1]` onto `[a, b]`.
fn scale(d: (f64, f64), a: f64, b: f64) -> impl Fn(f64) -> f64 {
    let span = (d.1 - d.0).max(f64::MIN_POSITIVE);
    move |v| a + (v - d.0) / span * (b - a)
}

/// Height of a legend row.
const LEGEND_ROW: f64 = 16.0;

/// A legend's entries laid out in rows below the plot, wrapping within the chart's width:
/// `(series index, x)` per entry. None for fewer than two names (the title says it).
fn legend_rows(names: &[&str]) -> Vec<Vec<(usize, f64)>> {
    if names.len() < 2 {
        return Vec::new();
    }
    let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
    let mut x = LEFT;
    for (i, n) in names.iter().enumerate() {
        let w = 22.0 + 6.5 * n.chars().count() as f64;
        if x + w > W - RIGHT && x > LEFT {
            rows.push(Vec::new());
            x = LEFT;
        }
        rows.last_mut().expect("a row").push((i, x));
        x += w;
    }
    rows
}

/// Height the legend of `names` adds below a chart.
fn legend_height(names: &[&str]) -> f64 {
    let rows = legend_rows(names).len();
    if rows == 0 {
        0.0
    } else {
        rows as f64 * LEGEND_ROW + 4.0
    }
}

/// Draws the legend in its own band starting at `y0` (the bottom of the plot's frame), so it
/// never overlaps the title or the data.
fn legend(s: &mut String, names: &[&str], y0: f64) {
    for (r, row) in legend_rows(names).iter().enumerate() {
        let y = y0 + 4.0 + r as f64 * LEGEND_ROW;
        for &(i, x) in row {
            let _ = write!(
                s,
                r##"<g class="legend"><rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}" fill="#1d2330">{}</text></g>"##,
                y + 2.0,
                PALETTE[i % PALETTE.len()],
                x + 13.0,
                y + 11.0,
                esc(names[i])
            );
        }
    }
}

/// A histogram of counts per bin.
pub fn histogram(id: &str, title: &str, x_label: &str, bars: &[Bar]) -> String {
    let x0 = bars.first().map_or(0.0, |b| b.lo);
    let x1 = bars.last().map_or(1.0, |b| b.hi);
    let top = bars.iter().map(|b| b.count).max().unwrap_or(0) as f64;
    let x = nice_range(x0, x1);
    let y = nice_range(0.0, top);
    let mut s = open(id, title, H);
    axes(&mut s, x, y, x_label, "requests", H);
    let (px, py) = (scale(x, LEFT, W - RIGHT), scale(y, H - BOTTOM, TOP));
    for b in bars {
        let (a, z, t) = (px(b.lo), px(b.hi), py(b.count as f64));
        let _ = write!(
            s,
            r##"<rect class="bar" x="{a:.1}" y="{t:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}–{}: {}</title></rect>"##,
            (z - a - 1.0).max(0.5),
            (H - BOTTOM - t).max(0.0),
            PALETTE[0],
            short(b.lo),
            short(b.hi),
            b.count
        );
    }
    s.push_str("</svg>");
    s
}

/// Grouped horizontal bars: one row per group, one bar per series, value labels at the ends.
pub fn bars(id: &str, title: &str, unit: &str, series: &[&str], groups: &[BarGroup]) -> String {
    let per = series.len().max(1) as f64;
    let bar_h = 12.0;
    let group_h = per * bar_h + 10.0;
    let plot_h = TOP + 10.0 + groups.len() as f64 * group_h + BOTTOM;
    let h = plot_h + legend_height(series);
    let label_w = 250.0;
    let top = groups
        .iter()
        .flat_map(|g| g.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let x = nice_range(0.0, top);
    let mut s = open(id, title, h);
    let h = plot_h;
    let (l, r) = (LEFT + label_w - 40.0, W - RIGHT - 50.0);
    let px = scale(x, l, r);
    let tx = ticks(x.0, x.1);
    let step = tick_step(&tx);
    for t in tx {
        let xx = px(t);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{:.1}" stroke="#e3e6ec"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#5b6475">{}</text>"##,
            h - BOTTOM,
            h - BOTTOM + 16.0,
            tick_label(t, step)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#5b6475">{}</text>"##,
        (l + r) / 2.0,
        h - 6.0,
        esc(unit)
    );
    for (gi, g) in groups.iter().enumerate() {
        let gy = TOP + 10.0 + gi as f64 * group_h;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#1d2330">{}</text>"##,
            l - 6.0,
            gy + per * bar_h / 2.0 + 4.0,
            esc(&truncate(&g.label, 42))
        );
        for (si, v) in g.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let y = gy + si as f64 * bar_h;
            let z = px(*v);
            let _ = write!(
                s,
                r##"<rect class="bar" x="{l:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" fill="#1d2330" font-size="10">{}</text>"##,
                (z - l).max(0.5),
                bar_h - 2.0,
                PALETTE[si % PALETTE.len()],
                esc(series.get(si).copied().unwrap_or("")),
                short(*v),
                z + 3.0,
                y + bar_h - 3.5,
                short(*v)
            );
        }
    }
    legend(&mut s, series, h);
    s.push_str("</svg>");
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let head: String = s.chars().take(n - 1).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            ticks(0.0, 1.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(nice_range(0.0, 93.0), (0.0, 100.0));
        assert_eq!(nice_range(0.0, 0.0), (0.0, 1.0));
    }

    #[test]
    fn labels_are_escaped_and_the_svg_is_closed() {
        let svg = line(
            "c",
            "<b>&",
            "s",
            "ms",
            &[Series {
                name: "a\"b".into(),
                points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)],
            }],
            &[],
        );
        assert!(svg.contains("&lt;b&gt;&amp;"));
        assert!(svg.contains("a&quot;b"));
        assert!(!svg.contains("NaN"));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches(" M").count() + svg.matches("\"M").count(), 2);
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short(1200.0), "1200");
        assert_eq!(short(25000.0), "25000");
        assert_eq!(tick_label(45.2, 0.2), "45.2");
        assert_eq!(tick_label(140.25, 0.05), "140.25");
        assert_eq!(tick_label(2000.0, 500.0), "2000");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(2.5), "2.5");
        assert_eq!(short(2_000_000.0), "2M");
    }
}
