//! `lengths::*`, token-count distributions for per-request lengths (a request's `max_tokens`,
//! a prompt's size): `fixed`, `uniform`, `normal`, `lognormal` and `from_dataset`. Each draws
//! from the generator it is given, the request's own `rng` in a `|i, rng|` prompt function, so
//! request i gets the same length on every run. Every draw is a whole number of tokens of at
//! least 1, rounded to the nearest and then clamped into the optional `#{ min, max }`.

use std::sync::Arc;

use rhai::{Dynamic, Engine, Map, Module};

use super::RhaiResult;
use super::dataset::{Dataset, DatasetItem, OutputLength};
use super::opts::Opts;
use super::tokens::{TokenizerSet, Tokens};
use super::words::Rng;

/// The range a drawn length is clamped into (both ends included; `min` is at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min: u64,
    pub max: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            min: 1,
            max: u32::MAX as u64,
        }
    }
}

impl Bounds {
    /// `#{ min, max }` as a script gives it to `what`.
    fn from_map(what: &str, map: Map) -> RhaiResult<Self> {
        let mut o = Opts::new(what, map, &["min", "max"])?;
        let d = Self::default();
        let min = o.count("min")?.unwrap_or(d.min).max(1);
        let max = o.count("max")?.unwrap_or(d.max).min(d.max);
        if min > max {
            return Err(format!("{what}: min {min} is above max {max}").into());
        }
        Ok(Self { min, max })
    }

    /// `x` rounded to a whole number of tokens within the bounds (NaN: the minimum).
    pub fn clamp(&self, x: f64) -> i64 {
        if x.is_nan() {
            return self.min as i64;
        }
        x.round().clamp(self.min as f64, self.max as f64) as i64
    }
}

/// `lengths::fixed(n)`: always n.
pub fn fixed(n: i64) -> Result<i64, String> {
    if n < 1 {
        return Err(format!("lengths::fixed({n}): a length is at least 1 token"));
    }
    Ok(n)
}

/// `lengths::uniform(rng, lo, hi)`: every whole number from lo to hi equally likely.
pub fn uniform(rng: &mut Rng, lo: i64, hi: i64, b: Bounds) -> Result<i64, String> {
    if lo > hi {
        return Err(format!(
            "lengths::uniform(rng, {lo}, {hi}): the low end is above the high end"
        ));
    }
    let x = rng.int(lo, hi).map_err(|e| e.to_string())?;
    Ok(b.clamp(x as f64))
}

/// `lengths::normal(rng, mean, stddev)`: a normal distribution, rounded and clamped.
pub fn normal(rng: &mut Rng, mean: f64, stddev: f64, b: Bounds) -> Result<i64, String> {
    check_moments("normal", mean, stddev)?;
    Ok(b.clamp(mean + stddev * rng.standard_normal()))
}

/// `lengths::lognormal(rng, mean, stddev)`: a log-normal distribution whose lengths have this
/// mean and standard deviation (before rounding and clamping); the long right tail of real
/// prompt and answer lengths.
pub fn lognormal(rng: &mut Rng, mean: f64, stddev: f64, b: Bounds) -> Result<i64, String> {
    check_moments("lognormal", mean, stddev)?;
    let sigma2 = (1.0 + (stddev / mean).powi(2)).ln();
    let mu = mean.ln() - sigma2 / 2.0;
    Ok(b.clamp((mu + sigma2.sqrt() * rng.standard_normal()).exp()))
}

fn check_moments(name: &str, mean: f64, stddev: f64) -> Result<(), String> {
    if !(mean > 0.0 && mean.is_finite()) {
        return Err(format!(
            "lengths::{name}: the mean must be greater than 0, not {mean}"
        ));
    }
    if !(stddev >= 0.0 && stddev.is_finite()) {
        return Err(format!(
            "lengths::{name}: the standard deviation must be 0 or more, not {stddev}"
        ));
    }
    Ok(())
}

/// The output length a dataset item gives: its `max_tokens`/`output_tokens` field, or its
/// answer counted in tokens of `encoding` (at least 1). `None`: the item has none, or it has an
/// answer and no encoding was named.
pub fn item_length(item: &DatasetItem, encoding: Option<&dyn Tokens>) -> Option<i64> {
    match (&item.output, encoding) {
        (Some(OutputLength::Tokens(n)), _) => Some(i64::from(*n)),
        (Some(OutputLength::Answer(text)), Some(tok)) => {
            Some((tok.encode(text).len() as i64).max(1))
        }
        _ => None,
    }
}

/// Item `i`'s length, or an error saying what the dataset lacks.
fn length_of(d: &Dataset, i: usize, encoding: Option<&dyn Tokens>) -> RhaiResult<i64> {
    let item = d.at(i);
    item_length(item, encoding).ok_or_else(|| {
        match item.output {
            Some(OutputLength::Answer(_)) => "lengths::from_dataset: this dataset's lengths are ShareGPT answers, counted in tokens: name an encoding, e.g. lengths::from_dataset(rng, d, \"cl100k_base\")".to_owned(),
            _ => format!("lengths::from_dataset: dataset item {} gives no output length (a \"max_tokens\" or \"output_tokens\" field, or a ShareGPT answer)", i % d.items.len()),
        }
        .into()
    })
}

/// A random item that gives a length, and its length.
fn random_length(rng: &mut Rng, d: &Dataset, encoding: Option<&dyn Tokens>) -> RhaiResult<i64> {
    let with = d.with_length();
    if with.is_empty() {
        return Err("lengths::from_dataset: no item of this dataset gives an output length (a \"max_tokens\" or \"output_tokens\" field, or a ShareGPT answer)".into());
    }
    length_of(d, with[rng.index(with.len())], encoding)
}

/// A script number (integer or float) as an f64.
fn number(what: &str, v: &Dynamic) -> RhaiResult<f64> {
    v.as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|t| format!("lengths::{what}: expected a number, not {t}").into())
}

/// Registers `lengths` as a static module; `tokens` counts ShareGPT answers.
pub fn register(engine: &mut Engine, tokens: Arc<TokenizerSet>) {
    let mut m = Module::new();
    m.set_native_fn("fixed", |n: i64| Ok(fixed(n)?));
    m.set_native_fn("uniform", |rng: &mut Rng, lo: i64, hi: i64| {
        Ok(uniform(rng, lo, hi, Bounds::default())?)
    });
    m.set_native_fn("uniform", |rng: &mut Rng, lo: i64, hi: i64, o: Map| {
        Ok(uniform(
            rng,
            lo,
            hi,
            Bounds::from_map("lengths::uniform", o)?,
        )?)
    });
    type Draw = fn(&mut Rng, f64, f64, Bounds) -> Result<i64, String>;
    for (name, draw) in [("normal", normal as Draw), ("lognormal", lognormal as Draw)] {
        m.set_native_fn(name, move |rng: &mut Rng, mean: Dynamic, sd: Dynamic| {
            let (mean, sd) = (number(name, &mean)?, number(name, &sd)?);
            Ok(draw(rng, mean, sd, Bounds::default())?)
        });
        m.set_native_fn(
            name,
            move |rng: &mut Rng, mean: Dynamic, sd: Dynamic, o: Map| {
                let b = Bounds::from_map(&format!("lengths::{name}"), o)?;
                Ok(draw(rng, number(name, &mean)?, number(name, &sd)?, b)?)
            },
        );
    }
    m.set_native_fn("from_dataset", |rng: &mut Rng, d: Dataset| {
        random_length(rng, &d, None)
    });
    let t = tokens.clone();
    m.set_native_fn(
        "from_dataset",
        move |rng: &mut Rng, d: Dataset, enc: &str| random_length(rng, &d, Some(&*t.get(enc)?)),
    );
    m.set_native_fn("from_dataset", |d: &mut Dataset, i: i64| {
        length_of(d, index(i)?, None)
    });
    m.set_native_fn("from_dataset", move |d: &mut Dataset, i: i64, enc: &str| {
        length_of(d, index(i)?, Some(&*tokens.get(enc)?))
    });
    engine.register_static_module("lengths", m.into());
}

fn index(i: i64) -> RhaiResult<usize> {
    usize::try_from(i)
        .map_err(|_| format!("lengths::from_dataset(d, {i}): the index must be 0 or more").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(f: impl Fn(&mut Rng) -> i64) -> Vec<i64> {
        (0..4000).map(|i| f(&mut Rng::for_request(7, i))).collect()
    }

    fn moments(v: &[i64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<i64>() as f64 / n;
        let var = v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn each_draw_depends_only_on_the_seed_and_the_index() {
        let b = Bounds::default();
        for f in [normal, lognormal] {
            let a = f(&mut Rng::for_request(1, 5), 200.0, 50.0, b).unwrap();
            assert_eq!(a, f(&mut Rng::for_request(1, 5), 200.0, 50.0, b).unwrap());
            let others: Vec<i64> = (6..16)
                .map(|i| f(&mut Rng::for_request(1, i), 200.0, 50.0, b).unwrap())
                .collect();
            assert!(others.iter().any(|x| *x != a), "{a} {others:?}");
        }
        let u = |i| uniform(&mut Rng::for_request(3, i), 1, 1000, b).unwrap();
        assert_eq!(u(4), u(4));
    }

    #[test]
    fn draws_have_the_asked_moments_and_stay_in_bounds() {
        let b = Bounds::default();
        let (mean, sd) = moments(&draws(|r| lognormal(r, 300.0, 150.0, b).unwrap()));
        assert!((mean - 300.0).abs() < 15.0, "lognormal mean {mean}");
        assert!((sd - 150.0).abs() < 20.0, "lognormal sd {sd}");
        let (mean, sd) = moments(&draws(|r| normal(r, 100.0, 20.0, b).unwrap()));
        assert!(
            (mean - 100.0).abs() < 2.0 && (sd - 20.0).abs() < 2.0,
            "{mean} {sd}"
        );
        let u = draws(|r| uniform(r, 10, 20, b).unwrap());
        assert_eq!(
            (*u.iter().min().unwrap(), *u.iter().max().unwrap()),
            (10, 20)
        );
        assert!((moments(&u).0 - 15.0).abs() < 0.5);

        let tight = Bounds { min: 50, max: 60 };
        for x in draws(|r| lognormal(r, 55.0, 100.0, tight).unwrap()) {
            assert!((50..=60).contains(&x), "{x}");
        }
        // Never below 1 token, whatever the distribution says.
        assert!(
            draws(|r| normal(r, 1.0, 50.0, b).unwrap())
                .iter()
                .all(|x| *x >= 1)
        );
        assert_eq!(lognormal(&mut Rng::seeded(1), 42.0, 0.0, b).unwrap(), 42);
        assert_eq!(fixed(9).unwrap(), 9);
    }

    #[test]
    fn bad_parameters_are_errors_naming_the_function() {
        let b = Bounds::default();
        let mut r = Rng::seeded(1);
        assert!(fixed(0).unwrap_err().contains("lengths::fixed(0)"));
        assert!(uniform(&mut r, 5, 4, b).unwrap_err().contains("low end"));
        assert!(
            normal(&mut r, 0.0, 1.0, b)
                .unwrap_err()
                .contains("normal: the mean")
        );
        assert!(
            lognormal(&mut r, 5.0, -1.0, b)
                .unwrap_err()
                .contains("standard deviation")
        );
        let mut map = Map::new();
        map.insert("min".into(), Dynamic::from(9_i64));
        map.insert("max".into(), Dynamic::from(3_i64));
        let err = Bounds::from_map("lengths::normal", map)
            .unwrap_err()
            .to_string();
        assert!(err.contains("min 9 is above max 3"), "{err}");
    }
}
