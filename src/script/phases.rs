//! Phase options: `phase(name, #{...})` with fixed, `ramp(...)` or `steps(...)` rates and
//! concurrency caps, and the phases a `sweep(#{...})` expands into.

use std::time::Duration;

use rhai::{Dynamic, Map};

use super::RhaiResult;
use super::opts::Opts;
use crate::plan::{Arrival, CancelSpec, Phase, Ramp, Shape, SweepStep};

pub fn phase_options(name: &str, map: Map, index: usize) -> RhaiResult<Phase> {
    let what = format!("phase {name:?}");
    let mut o = Opts::new(
        &what,
        map,
        &[
            "duration",
            "requests",
            "rps",
            "concurrency",
            "arrival",
            "seed",
            "warmup",
            "cancel",
        ],
    )?;
    let seed = o.count("seed")?.unwrap_or(index as u64);
    let cancel = cancel_option(&mut o, &what, seed)?;
    let rate_shape = take_shape(&mut o, &what, "rps", 0.0)?;
    let conc_shape = take_shape(&mut o, &what, "concurrency", 1.0)?;
    let duration = o.positive("duration")?.map(Duration::from_secs_f64);
    let requests = o.count("requests")?;
    if duration.is_none() && requests.is_none() {
        return Err(format!(
            "{what}: give a duration (seconds) or a number of requests, e.g. #{{ duration: 30 }}"
        )
        .into());
    }
    if requests == Some(0) {
        return Err(format!("{what}: requests must be at least 1").into());
    }
    if (rate_shape.is_some() || conc_shape.is_some()) && duration.is_none() {
        return Err(
            format!("{what}: ramp(...) and steps(...) need a duration to spread over").into(),
        );
    }
    let rate = match &rate_shape {
        Some(shape) => Some(shape.at(0.0)),
        None => o.positive("rps")?,
    };
    let concurrency = match &conc_shape {
        Some(shape) => Some(shape.max().floor() as u64),
        None => o.count("concurrency")?,
    };
    if concurrency == Some(0) {
        return Err(format!("{what}: concurrency must be at least 1").into());
    }
    if conc_shape.is_some() && rate.is_none() {
        return Err(format!(
            "{what}: a concurrency ramp needs rps (open loop); for closed loop use one phase per level, e.g. ramps::users([1, 8, 32], 30)"
        )
        .into());
    }
    let arrival = match o.string("arrival")?.as_deref() {
        None | Some("constant") => Arrival::Constant,
        Some("poisson") => Arrival::Poisson,
        Some(other) => {
            return Err(format!(
                "{what}: arrival {other:?} is not known; use \"constant\" or \"poisson\""
            )
            .into());
        }
    };
    if rate.is_none() && o.was_given("arrival") {
        return Err(format!("{what}: arrival needs a rate; add rps").into());
    }
    Ok(Phase {
        name: name.to_owned(),
        duration,
        requests,
        rate,
        concurrency: concurrency.map(|c| c.min(u32::MAX as u64) as u32),
        arrival,
        seed,
        warmup: o.bool("warmup")?.unwrap_or(false),
        ramp: Ramp {
            rate: rate_shape,
            concurrency: conc_shape,
        },
        sweep: None,
        replay: None,
        cancel,
    })
}

/// A phase's `cancel: #{ share, after_ms, seed }`: the seeded share of its requests the client
/// abandons `after_ms` after sending them.
pub fn cancel_option(o: &mut Opts, what: &str, seed: u64) -> RhaiResult<Option<CancelSpec>> {
    let Some(v) = o.take("cancel") else {
        return Ok(None);
    };
    let Some(map) = v.clone().try_cast::<Map>() else {
        return o.err("cancel", "a map like #{ share: 0.1, after_ms: 500 }", &v);
    };
    let what = format!("{what}: cancel");
    let mut c = Opts::new(&what, map, &["share", "after_ms", "seed"])?;
    let share = c.non_negative("share")?.unwrap_or(1.0);
    if share > 1.0 {
        return Err(format!("{what}: share is a fraction from 0 to 1, not {share}").into());
    }
    let Some(after_ms) = c.non_negative("after_ms")? else {
        return Err(format!("{what}: give after_ms, the delay after the send, e.g. 500").into());
    };
    Ok(Some(CancelSpec {
        share,
        after: Duration::from_secs_f64(after_ms / 1000.0),
        seed: c.count("seed")?.unwrap_or(seed),
    }))
}

/// A `ramp(...)`/`steps(...)` value for `key`, checked: every value at least `min`, some above 0.
fn take_shape(o: &mut Opts, what: &str, key: &str, min: f64) -> RhaiResult<Option<Shape>> {
    let Some(v) = o.peek(key) else {
        return Ok(None);
    };
    let Some(shape) = v.clone().try_cast::<Shape>() else {
        return Ok(None);
    };
    o.take(key);
    let values = match &shape {
        Shape::Linear { from, to } => vec![*from, *to],
        Shape::Steps(v) => v.clone(),
    };
    if values.iter().any(|x| !(x.is_finite() && *x >= min)) || values.iter().all(|x| *x == 0.0) {
        return Err(format!(
            "{what}: {key} values must be {} (got {values:?})",
            if min > 0.0 {
                "at least 1"
            } else {
                "0 or more, and not all 0"
            }
        )
        .into());
    }
    Ok(Some(shape))
}

pub fn number(v: &Dynamic, what: &str) -> RhaiResult<f64> {
    v.as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|t| format!("{what} must be a number, not {t}").into())
}

/// `sweep(#{ ... })`: a saturation phase, then `steps` open-loop phases from `low` to `high`
/// times the measured saturation rate.
pub fn sweep_phases(map: Map, first_index: usize) -> RhaiResult<(Vec<Phase>, f64)> {
    let mut o = Opts::new(
        "sweep",
        map,
        &[
            "concurrency",
            "probe",
            "steps",
            "low",
            "high",
            "duration",
            "attainment",
            "arrival",
        ],
    )?;
    let concurrency = o.count("concurrency")?.unwrap_or(64);
    if concurrency == 0 {
        return Err("sweep: concurrency must be at least 1".into());
    }
    let probe = o.positive("probe")?.unwrap_or(20.0);
    let steps = o.count("steps")?.unwrap_or(5);
    if steps == 0 {
        return Err("sweep: steps must be at least 1".into());
    }
    let low = o.positive("low")?.unwrap_or(0.1);
    let high = o.positive("high")?.unwrap_or(1.0);
    if low > high {
        return Err(format!("sweep: low ({low}) must not be above high ({high})").into());
    }
    let duration = o.positive("duration")?.unwrap_or(30.0);
    let attainment = o
        .positive("attainment")?
        .unwrap_or(crate::outcome::sweep::DEFAULT_ATTAINMENT);
    if attainment > 1.0 {
        return Err("sweep: attainment is a share of requests, at most 1 (e.g. 0.9)".into());
    }
    let arrival = match o.string("arrival")?.as_deref() {
        None | Some("constant") => Arrival::Constant,
        Some("poisson") => Arrival::Poisson,
        Some(other) => {
            return Err(format!(
                "sweep: arrival {other:?} is not known; use \"constant\" or \"poisson\""
            )
            .into());
        }
    };
    let base = |name: String, i: usize| Phase {
        name,
        duration: Some(Duration::from_secs_f64(duration)),
        requests: None,
        rate: None,
        concurrency: None,
        arrival,
        seed: (first_index + i) as u64,
        warmup: false,
        ramp: Ramp::default(),
        sweep: None,
        replay: None,
        cancel: None,
    };
    let mut phases = vec![Phase {
        duration: Some(Duration::from_secs_f64(probe)),
        concurrency: Some(concurrency.min(u32::MAX as u64) as u32),
        sweep: Some(SweepStep::Saturation),
        replay: None,
        cancel: None,
        ..base("saturation".into(), 0)
    }];
    for k in 0..steps {
        let f = if steps == 1 {
            high
        } else {
            low + (high - low) * k as f64 / (steps - 1) as f64
        };
        phases.push(Phase {
            rate: Some(f),
            sweep: Some(SweepStep::Fraction(f)),
            replay: None,
            cancel: None,
            ..base(format!("sweep-{}", k + 1), k as usize + 1)
        });
    }
    Ok((phases, attainment))
}
