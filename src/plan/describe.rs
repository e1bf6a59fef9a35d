//! How a phase reads for people: one line with its load and bound, used by `check`, the run
//! metadata and the reports.

use super::{Arrival, Phase, Shape, SweepStep};

/// One line per phase, e.g. `steady: 5 req/s poisson, concurrency 10, 300 s`.
impl Phase {
    pub fn describe(&self) -> String {
        let p = self;
        let rate = match (&p.ramp.rate, p.sweep, p.rate) {
            (Some(Shape::Linear { from, to }), _, _) => Some(format!("ramp {from}→{to}")),
            (Some(Shape::Steps(v)), _, _) => Some(format!("steps {v:?}")),
            (None, Some(SweepStep::Fraction(f)), Some(r)) if r == f => {
                Some(format!("{f:.2} × saturation"))
            }
            (None, _, Some(r)) => Some(
                format!("{r:.4}")
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_owned(),
            ),
            (None, _, None) => None,
        };
        let load = match (rate.clone(), &p.replay) {
            (_, Some(replay)) => format!(
                "{}, mean {} req/s, {}",
                replay.source,
                rate.unwrap_or_default(),
                match p.concurrency {
                    Some(c) => format!("concurrency cap {c}"),
                    None => "no concurrency cap".into(),
                }
            ),
            (Some(r), None) => format!(
                "{r} req/s {}, {}",
                match p.arrival {
                    Arrival::Constant => "constant",
                    Arrival::Poisson => "poisson",
                },
                match (&p.ramp.concurrency, p.concurrency) {
                    (Some(Shape::Linear { from, to }), _) =>
                        format!("concurrency cap ramp {from}→{to}"),
                    (Some(Shape::Steps(v)), _) => format!("concurrency cap steps {v:?}"),
                    (None, Some(c)) => format!("concurrency cap {c}"),
                    (None, None) => "no concurrency cap".into(),
                }
            ),
            (None, None) => format!("closed loop, {} concurrent", p.concurrency.unwrap_or(1)),
        };
        let bound = match (p.duration, p.requests) {
            (Some(d), Some(n)) => format!("{} s or {n} requests", d.as_secs_f64()),
            (Some(d), None) => format!("{} s", d.as_secs_f64()),
            (None, Some(n)) => format!("{n} requests"),
            (None, None) => "unbounded".into(),
        };
        let warm = if p.warmup { " (warmup)" } else { "" };
        format!("{}: {load}, {bound}{warm}", p.name)
    }
}
