//! Option maps given to DSL functions, read strictly: an unknown key is an error listing the
//! allowed ones, and each value is checked for its type and range, so a typo never falls back
//! to a default silently.

use rhai::{Dynamic, Map};

use super::RhaiResult;

/// An option map being read; unknown keys are rejected up front.
pub struct Opts {
    what: String,
    map: Map,
    given: Vec<String>,
}

impl Opts {
    pub fn new(what: &str, map: Map, allowed: &[&str]) -> RhaiResult<Self> {
        if let Some(bad) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "{what}: unknown option {:?}; allowed: {}",
                bad.as_str(),
                allowed.join(", ")
            )
            .into());
        }
        let given = map.keys().map(|k| k.to_string()).collect();
        Ok(Self {
            what: what.to_owned(),
            map,
            given,
        })
    }

    pub fn was_given(&self, key: &str) -> bool {
        self.given.iter().any(|k| k == key)
    }

    /// The value under `key`, left in place.
    pub fn peek(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    pub fn take(&mut self, key: &str) -> Option<Dynamic> {
        self.map.remove(key).filter(|v| !v.is_unit())
    }

    pub fn err<T>(&self, key: &str, wanted: &str, got: &Dynamic) -> RhaiResult<T> {
        Err(format!(
            "{}: {key} must be {wanted}, not {}",
            self.what,
            got.type_name()
        )
        .into())
    }

    pub fn number(&mut self, key: &str) -> RhaiResult<Option<f64>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_int() => Ok(Some(v.as_int().expect("checked int") as f64)),
            Some(v) if v.is_float() => Ok(Some(v.as_float().expect("checked float"))),
            Some(v) => self.err(key, "a number", &v),
        }
    }

    pub fn positive(&mut self, key: &str) -> RhaiResult<Option<f64>> {
        match self.number(key)? {
            Some(x) if !(x > 0.0 && x.is_finite()) => {
                Err(format!("{}: {key} must be greater than 0, not {x}", self.what).into())
            }
            x => Ok(x),
        }
    }

    pub fn non_negative(&mut self, key: &str) -> RhaiResult<Option<f64>> {
        match self.number(key)? {
            Some(x) if !(x >= 0.0 && x.is_finite()) => {
                Err(format!("{}: {key} must be 0 or more, not {x}", self.what).into())
            }
            x => Ok(x),
        }
    }

    pub fn count(&mut self, key: &str) -> RhaiResult<Option<u64>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_int() => {
                let n = v.as_int().expect("checked int");
                u64::try_from(n)
                    .map(Some)
                    .map_err(|_| format!("{}: {key} must be 0 or more, not {n}", self.what).into())
            }
            Some(v) => self.err(key, "a whole number", &v),
        }
    }

    pub fn bool(&mut self, key: &str) -> RhaiResult<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_bool() => Ok(v.as_bool().ok()),
            Some(v) => self.err(key, "true or false", &v),
        }
    }

    pub fn string(&mut self, key: &str) -> RhaiResult<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.into_string().expect("checked string"))),
            Some(v) => self.err(key, "a string", &v),
        }
    }
}
