//! The DSL functions that say what is measured and where: `workload(name)`, `target(name)`
//! (from configs/targets.yaml) or `target(#{ base_url, api_key_env })`, `model(name)` (through
//! configs/models.yaml) and `configured_workload(name)` (an entry of configs/workloads.yaml, the
//! one definition of the standard workloads). A key is read only from a variable the caller
//! allows (see `Access`).

use rhai::{Dynamic, Engine, Map};

use super::ALLOW_ENV_VAR;
use super::RhaiResult;
use super::dsl::{Shared, lock};
use super::opts::Opts;
use crate::config::Configs;
use crate::plan::{ApiKey, Target};

/// Registers `workload`, `target`, `model` and `configured_workload`.
pub fn register(engine: &mut Engine, draft: &Shared, configs: Configs, allowed_env: Vec<String>) {
    let d = draft.clone();
    engine.register_fn("workload", move |name: &str| {
        lock(&d).workload = Some(name.to_owned());
    });

    let (d, c) = (draft.clone(), configs.clone());
    engine.register_fn("target", move |name: &str| -> RhaiResult<()> {
        let t = c.target(name).map_err(|e| e.to_string())?;
        lock(&d).target = Some(t);
        Ok(())
    });
    let d = draft.clone();
    engine.register_fn("target", move |map: Map| -> RhaiResult<()> {
        let mut o = Opts::new("target", map, &["name", "base_url", "api_key_env"])?;
        let base_url = o
            .string("base_url")?
            .ok_or("target: base_url is required, e.g. \"http://127.0.0.1:8000/v1\"")?;
        let name = o
            .string("name")?
            .unwrap_or_else(|| crate::redact::host_port(&base_url));
        let api_key = match o.string("api_key_env")? {
            None => None,
            Some(var) if crate::redact::looks_like_key(&var) && std::env::var(&var).is_err() => {
                return Err("target: api_key_env takes the name of an environment variable holding the key, but this looks like a key itself (not shown here): write api_key_env: \"OPENAI_API_KEY\" and run with OPENAI_API_KEY=<key> and --api-key-env OPENAI_API_KEY".into());
            }
            Some(var) if !allowed_env.contains(&var) => {
                return Err(format!(
                    "target: api_key_env names {var}, which this script may not read; a script reads only the variables given with --api-key-env, named in configs/targets.yaml (api_key: \"${{{var}}}\") or listed in {ALLOW_ENV_VAR}: run with --api-key-env {var}"
                )
                .into());
            }
            Some(var) => Some(ApiKey::new(std::env::var(&var).map_err(|_| {
                format!("target: api_key_env names {var}, which is not set; export {var}=<key>")
            })?)),
        };
        lock(&d).target = Some(Target {
            name,
            base_url,
            api_key,
        });
        Ok(())
    });

    let (d, c) = (draft.clone(), configs.clone());
    engine.register_fn("model", move |name: &str| -> RhaiResult<()> {
        let full = c.model(name).map_err(|e| e.to_string())?;
        lock(&d).model = Some(full);
        Ok(())
    });

    // The entry of configs/workloads.yaml called `name`, as #{ name, duration, rps,
    // concurrency }: the one definition the standard workloads read (whole numbers as ints).
    engine.register_fn(
        "configured_workload",
        move |name: &str| -> RhaiResult<Map> {
            let w = configs.workload(name).map_err(|e| e.to_string())?;
            let as_number = |x: f64| -> Dynamic {
                if x.fract() == 0.0 && x.abs() < 1e15 {
                    Dynamic::from_int(x as rhai::INT)
                } else {
                    Dynamic::from_float(x)
                }
            };
            let mut m = Map::new();
            m.insert("name".into(), w.name.into());
            m.insert("duration".into(), as_number(w.duration));
            m.insert("rps".into(), as_number(w.rps));
            m.insert(
                "concurrency".into(),
                Dynamic::from_int(w.concurrency.into()),
            );
            Ok(m)
        },
    );
}
