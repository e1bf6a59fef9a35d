//! Line and point charts over an x axis: series as lines (a lone point between gaps drawn as a
//! dot, so a sparse series stays visible), or as dots joined by a line (one per sweep step);
//! shaded bands (phases), horizontal reference lines (an SLO limit) and marked points (a knee).

use std::fmt::Write;

use super::{
    Band, H, LEFT, PALETTE, RIGHT, Series, TOP, W, axes, esc, legend, legend_height, nice_range,
    open, scale,
};

/// A horizontal reference line at `y`, labelled at its right end (an SLO limit).
#[derive(Debug, Clone)]
pub struct Rule {
    pub y: f64,
    pub label: String,
}

/// A point to call out, ringed and labelled (a sweep's knee).
#[derive(Debug, Clone)]
pub struct Mark {
    pub x: f64,
    pub y: f64,
    pub label: String,
}

/// Everything a line chart draws. `Plot::new` then the `with_*` setters.
#[derive(Debug, Clone)]
pub struct Plot<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: &'a [Series],
    pub bands: &'a [Band],
    pub rules: &'a [Rule],
    pub marks: &'a [Mark],
    /// Every point drawn as a dot too (a chart of a few measured steps).
    pub dots: bool,
    /// The x range drawn exactly (a run's time axis ends at the run's end), instead of the
    /// data's range rounded out to ticks.
    pub x_range: Option<(f64, f64)>,
}

impl<'a> Plot<'a> {
    pub fn new(
        id: &'a str,
        title: &'a str,
        x_label: &'a str,
        y_label: &'a str,
        series: &'a [Series],
    ) -> Self {
        Self {
            id,
            title,
            x_label,
            y_label,
            series,
            bands: &[],
            rules: &[],
            marks: &[],
            dots: false,
            x_range: None,
        }
    }

    pub fn with_bands(mut self, bands: &'a [Band]) -> Self {
        self.bands = bands;
        self
    }

    pub fn with_rules(mut self, rules: &'a [Rule]) -> Self {
        self.rules = rules;
        self
    }

    pub fn with_marks(mut self, marks: &'a [Mark]) -> Self {
        self.marks = marks;
        self
    }

    pub fn with_dots(mut self) -> Self {
        self.dots = true;
        self
    }

    pub fn with_x_range(mut self, x: (f64, f64)) -> Self {
        self.x_range = Some(x).filter(|(a, b)| a.is_finite() && b.is_finite() && b > a);
        self
    }

    /// Whether rule `r` is drawn as a line: within 3× the data's top (or with no data), so a
    /// far-off limit does not flatten the data; one above that is named at the top instead.
    fn rule_in_range(&self, r: &Rule, data_top: f64) -> bool {
        r.y.is_finite() && (data_top <= 0.0 || r.y <= 3.0 * data_top)
    }

    /// The x and y ranges: the data, bands, rules and marks, rounded out to ticks (x exactly
    /// `x_range` when set).
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        let points = self.series.iter().flat_map(|s| s.points.iter());
        for &(x, y) in points.filter(|p| p.0.is_finite() && p.1.is_finite()) {
            (x0, x1, y1) = (x0.min(x), x1.max(x), y1.max(y));
        }
        for b in self.bands {
            (x0, x1) = (x0.min(b.x0), x1.max(b.x1));
        }
        for m in self.marks {
            (x0, x1, y1) = (x0.min(m.x), x1.max(m.x), y1.max(m.y));
        }
        let data_top = y1;
        for r in self
            .rules
            .iter()
            .filter(|r| self.rule_in_range(r, data_top))
        {
            y1 = y1.max(r.y * 1.05);
        }
        let x = self.x_range.unwrap_or_else(|| nice_range(x0.min(x1), x1));
        (x, nice_range(0.0, y1))
    }
}

/// A line chart over `x`, with optional shaded bands (phases).
pub fn line(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    bands: &[Band],
) -> String {
    plot(&Plot::new(id, title, x_label, y_label, series).with_bands(bands))
}

impl Plot<'_> {
    /// The chart as SVG.
    pub fn svg(&self) -> String {
        plot(self)
    }
}

fn plot(p: &Plot<'_>) -> String {
    let (x, y) = p.ranges();
    let names: Vec<&str> = p.series.iter().map(|s| s.name.as_str()).collect();
    let mut s = open(p.id, p.title, H + legend_height(&names));
    let (px, py) = (scale(x, LEFT, W - RIGHT), scale(y, H - super::BOTTOM, TOP));
    draw_bands(&mut s, p.bands, &px);
    axes(&mut s, x, y, p.x_label, p.y_label, H);
    let mut above = 0.0;
    for r in p.rules.iter().filter(|r| r.y.is_finite()) {
        if r.y > y.1 {
            let _ = write!(
                s,
                r##"<g class="rule" data-y="{}"><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#b3261e" font-size="10">{} (above this range)</text></g>"##,
                r.y,
                W - RIGHT - 2.0,
                TOP + 10.0 + above,
                esc(&r.label)
            );
            above += 12.0;
            continue;
        }
        let yy = py(r.y);
        let _ = write!(
            s,
            r##"<g class="rule" data-y="{}"><line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#b3261e" stroke-dasharray="6 3" stroke-width="1.2"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#b3261e" font-size="10">{}</text></g>"##,
            r.y,
            W - RIGHT,
            W - RIGHT - 2.0,
            yy - 3.0,
            esc(&r.label)
        );
    }
    let inside = |vx: f64, vy: f64| vx.is_finite() && vy.is_finite() && vx >= x.0 && vx <= x.1;
    for (i, ser) in p.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut d = String::new();
        let mut pen_down = false;
        for &(vx, vy) in &ser.points {
            if !inside(vx, vy) {
                pen_down = false;
                continue;
            }
            let m = if pen_down { " L" } else { " M" };
            let _ = write!(d, "{m}{:.1},{:.1}", px(vx), py(vy));
            pen_down = true;
        }
        let _ = write!(
            s,
            r##"<path class="series" d="{}" fill="none" stroke="{colour}" stroke-width="1.6" stroke-linejoin="round"><title>{}</title></path>"##,
            d.trim(),
            esc(&ser.name)
        );
        for (j, &(vx, vy)) in ser.points.iter().enumerate() {
            let lone =
                !neighbour(&ser.points, j, -1, &inside) && !neighbour(&ser.points, j, 1, &inside);
            if inside(vx, vy) && (p.dots || lone) {
                let _ = write!(
                    s,
                    r##"<circle class="point" data-series="{}" cx="{:.1}" cy="{:.1}" r="{}" fill="{colour}"><title>{}: {}, {}</title></circle>"##,
                    i,
                    px(vx),
                    py(vy),
                    if p.dots { 3.2 } else { 2.2 },
                    esc(&ser.name),
                    super::short(vx),
                    super::short(vy)
                );
            }
        }
    }
    for m in p.marks.iter().filter(|m| inside(m.x, m.y)) {
        let (mx, my) = (px(m.x), py(m.y));
        // The label goes left of the point where it would run off the right edge.
        let width = 6.0 * m.label.chars().count() as f64;
        let (tx, anchor) = if mx + 9.0 + width > W - RIGHT {
            (mx - 9.0, "end")
        } else {
            (mx + 9.0, "start")
        };
        let _ = write!(
            s,
            r##"<g class="mark" data-x="{}" data-y="{}"><circle cx="{mx:.1}" cy="{my:.1}" r="7" fill="none" stroke="#1d2330" stroke-width="1.5"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="#1d2330" font-size="10" font-weight="600">{}</text></g>"##,
            m.x,
            m.y,
            (my - 8.0).max(TOP + 8.0),
            esc(&m.label)
        );
    }
    legend(&mut s, &names, H);
    s.push_str("</svg>");
    s
}

/// Whether the point next to `j` (`step` -1 or 1) exists and is drawn.
fn neighbour(
    points: &[(f64, f64)],
    j: usize,
    step: isize,
    inside: &dyn Fn(f64, f64) -> bool,
) -> bool {
    j.checked_add_signed(step)
        .and_then(|k| points.get(k))
        .is_some_and(|&(x, y)| inside(x, y))
}

fn draw_bands(s: &mut String, bands: &[Band], px: &dyn Fn(f64) -> f64) {
    for b in bands {
        let (a, z) = (px(b.x0), px(b.x1));
        let _ = write!(
            s,
            r##"<rect class="phase" x="{a:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"##,
            (z - a).max(0.5),
            H - super::BOTTOM - TOP,
            if b.strong { "#e6e9ef" } else { "#f6f8fb" },
            esc(&b.label)
        );
        // Label a band only where it fits.
        if z - a > 6.0 + 6.0 * b.label.chars().count() as f64 {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#5b6475" font-size="10">{}</text>"##,
                a + 3.0,
                TOP + 11.0,
                esc(&b.label)
            );
        }
        let _ = write!(
            s,
            r##"<line x1="{a:.1}" x2="{a:.1}" y1="{TOP}" y2="{:.1}" stroke="#c3c8d2" stroke-dasharray="3 3"/>"##,
            H - super::BOTTOM
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: Vec<(f64, f64)>) -> Vec<Series> {
        vec![Series {
            name: "s".into(),
            points,
        }]
    }

    #[test]
    fn lone_points_between_gaps_are_drawn_as_dots() {
        let nan = f64::NAN;
        // Seconds of a slow phase: one request every few seconds.
        let s = series(vec![
            (0.5, 10.0),
            (1.5, nan),
            (2.5, 12.0),
            (3.5, 13.0),
            (4.5, nan),
        ]);
        let svg = line("c", "t", "x", "y", &s, &[]);
        assert_eq!(svg.matches("<circle class=\"point\"").count(), 1, "{svg}");
        let s = series(vec![(0.5, nan), (1.5, 7.0), (2.5, nan)]);
        let svg = line("c", "t", "x", "y", &s, &[]);
        assert_eq!(svg.matches("<circle class=\"point\"").count(), 1);
    }

    #[test]
    fn dots_rules_and_marks_are_drawn_with_their_data() {
        let s = series(vec![(1.0, 10.0), (2.0, 20.0), (3.0, 80.0)]);
        let rules = [Rule {
            y: 50.0,
            label: "SLO".into(),
        }];
        let marks = [Mark {
            x: 2.0,
            y: 20.0,
            label: "knee".into(),
        }];
        let svg = Plot::new("c", "t", "x", "y", &s)
            .with_dots()
            .with_rules(&rules)
            .with_marks(&marks)
            .svg();
        assert_eq!(svg.matches("<circle class=\"point\"").count(), 3);
        assert!(svg.contains(r#"<g class="rule" data-y="50">"#), "{svg}");
        assert!(svg.contains(r#"<g class="mark" data-x="2" data-y="20">"#));
    }

    #[test]
    fn a_far_off_rule_is_named_not_drawn() {
        let s = series(vec![(1.0, 20.0), (2.0, 25.0)]);
        let rules = [Rule {
            y: 500.0,
            label: "SLO".into(),
        }];
        let p = Plot::new("c", "t", "x", "y", &s).with_rules(&rules);
        assert_eq!(p.ranges().1, (0.0, 25.0));
        assert!(p.svg().contains("SLO (above this range)"));
    }

    #[test]
    fn an_exact_x_range_ends_the_axis_there() {
        let s = series(vec![(0.5, 1.0), (6.5, 2.0)]);
        let p = Plot::new("c", "t", "x", "y", &s).with_x_range((0.0, 6.8));
        assert_eq!(p.ranges().0, (0.0, 6.8));
        // Without it, the data's range rounds out to ticks.
        assert_eq!(Plot::new("c", "t", "x", "y", &s).ranges().0, (0.0, 7.0));
    }

    #[test]
    fn the_legend_sits_below_the_plot() {
        let s: Vec<Series> = (0..12)
            .map(|i| Series {
                name: format!("a rather long phase name {i}"),
                points: vec![(0.0, 1.0), (1.0, 2.0)],
            })
            .collect();
        let svg = line("c", "t", "x", "y", &s, &[]);
        let first_legend_y: f64 = svg
            .split("<g class=\"legend\"><rect x=\"")
            .nth(1)
            .and_then(|r| r.split("y=\"").nth(1))
            .and_then(|r| r.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(first_legend_y > H, "{first_legend_y}");
        let rows =
            super::super::legend_rows(&s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>());
        assert!(rows.len() > 1);
    }
}
