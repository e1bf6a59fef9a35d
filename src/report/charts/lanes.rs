//! The swim-lane chart: one row per request, in send order, over the run's time axis, split
//! into its stages (queued, waiting for the first token, decoding; a failure in one colour).

use std::fmt::Write;

use super::{LEFT, PALETTE, RIGHT, TOP, W, esc, open, scale, short, tick_label, tick_step, ticks};

/// One request's stages, in seconds since the run started.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// When the schedule meant it to start.
    pub intended_s: f64,
    /// When it was handed to the HTTP client (`None`: never sent).
    pub sent_s: Option<f64>,
    /// When its first content chunk arrived.
    pub first_token_s: Option<f64>,
    pub end_s: f64,
    pub ok: bool,
}

/// Stage names and colours, in legend order.
const STAGES: [(&str, &str); 4] = [
    ("queued (intended start to send)", "#9aa1ad"),
    ("waiting for the first token", PALETTE[1]),
    ("decoding (first token to end)", PALETTE[0]),
    ("failed (send to end)", PALETTE[4]),
];

/// One lane's segments: (stage index, from, to).
fn segments(l: &Lane) -> Vec<(usize, f64, f64)> {
    let mut v = Vec::new();
    let sent = l.sent_s.unwrap_or(l.end_s);
    if sent > l.intended_s {
        v.push((0, l.intended_s, sent));
    }
    match (l.ok, l.first_token_s) {
        (true, Some(first)) => {
            v.push((1, sent, first));
            v.push((2, first, l.end_s));
        }
        (true, None) => v.push((1, sent, l.end_s)),
        (false, _) => v.push((3, sent, l.end_s)),
    }
    v
}

/// The swim lanes of `lanes` over `x` (seconds).
pub fn lanes(id: &str, title: &str, lanes: &[Lane], x: (f64, f64)) -> String {
    let row = (600.0 / lanes.len().max(1) as f64).clamp(2.0, 10.0);
    let plot_bottom = TOP + 8.0 + lanes.len() as f64 * row;
    let h = plot_bottom + 40.0 + 18.0;
    let mut s = open(id, title, h);
    let px = scale(x, LEFT, W - RIGHT);
    let tx = ticks(x.0, x.1);
    let step = tick_step(&tx);
    for t in tx {
        let xx = px(t);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{plot_bottom:.1}" stroke="#e3e6ec"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#5b6475">{}</text>"##,
            plot_bottom + 14.0,
            tick_label(t, step)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#5b6475">seconds since the run started</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="#5b6475">requests, in send order</text>"##,
        (LEFT + W - RIGHT) / 2.0,
        plot_bottom + 30.0,
        (TOP + plot_bottom) / 2.0
    );
    for (i, l) in lanes.iter().enumerate() {
        let y = TOP + 4.0 + i as f64 * row;
        s.push_str(r#"<g class="lane">"#);
        for (stage, a, z) in segments(l) {
            let _ = write!(
                s,
                r##"<rect x="{:.2}" y="{y:.2}" width="{:.2}" height="{:.2}" fill="{}"><title>{}: {}–{} s</title></rect>"##,
                px(a),
                (px(z) - px(a)).max(0.6),
                (row * 0.8).max(1.5),
                STAGES[stage].1,
                esc(STAGES[stage].0),
                short(a),
                short(z)
            );
        }
        s.push_str("</g>");
    }
    let mut lx = LEFT;
    let ly = plot_bottom + 40.0;
    for (name, colour) in STAGES {
        let _ = write!(
            s,
            r##"<g class="legend"><rect x="{lx:.1}" y="{ly:.1}" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="{:.1}" fill="#1d2330">{}</text></g>"##,
            lx + 13.0,
            ly + 9.0,
            esc(name)
        );
        lx += 22.0 + 6.0 * name.chars().count() as f64;
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_is_split_into_its_stages() {
        let ok = Lane {
            intended_s: 1.0,
            sent_s: Some(1.5),
            first_token_s: Some(2.0),
            end_s: 3.0,
            ok: true,
        };
        assert_eq!(
            segments(&ok),
            vec![(0, 1.0, 1.5), (1, 1.5, 2.0), (2, 2.0, 3.0)]
        );
        let failed = Lane {
            sent_s: Some(1.0),
            first_token_s: None,
            ok: false,
            ..ok.clone()
        };
        assert_eq!(segments(&failed), vec![(3, 1.0, 3.0)]);
        let svg = lanes("l", "t", &[ok, failed], (0.0, 4.0));
        assert_eq!(svg.matches("<g class=\"lane\">").count(), 2);
        assert!(svg.ends_with("</svg>"));
    }
}
