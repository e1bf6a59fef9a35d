//! Prompt built-ins for scripts: a seeded random generator (`Rng`), `words(n)`, `tokens(n,
//! encoding)` (exactly n tokens under a tiktoken encoding compiled into the binary),
//! `shared_prefix(n)` (the same n-token text every time, to exercise prefix caches on purpose)
//! and `dataset(path)` (JSONL prompts or ShareGPT JSON, read once; see `dataset`). Without an explicit generator
//! these draw from one script-wide generator, so every prompt differs unless asked otherwise.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, Map};

use super::RhaiResult;
pub use super::dataset::{Dataset, read_dataset};
use super::library::locate_dataset;
use super::tokens::{TokenizerSet, exact_tokens};
pub use super::words::Rng;
use super::words::words_from;
use crate::plan::{Content, Message};

/// Registers the prompt built-ins. `base` resolves relative dataset paths; `default_rng` serves
/// calls made without a generator. Returns the script's tokenizers, for the DSL.
pub fn register(
    engine: &mut Engine,
    base: PathBuf,
    default_rng: Arc<Mutex<Rng>>,
) -> Arc<TokenizerSet> {
    engine.register_type_with_name::<Rng>("Rng");
    engine.register_fn("rng", |seed: i64| Rng::seeded(seed as u64));
    engine.register_fn("int", Rng::int);
    engine.register_fn("float", Rng::float);
    engine.register_fn(
        "pick",
        |rng: &mut Rng, items: Array| -> RhaiResult<Dynamic> {
            if items.is_empty() {
                return Err("rng.pick([]): the list is empty".into());
            }
            Ok(items[rng.index(items.len())].clone())
        },
    );
    engine.register_fn("words", |rng: &mut Rng, n: i64| -> RhaiResult<String> {
        Ok(words_from(rng, count("words", n)?))
    });
    let d = default_rng.clone();
    engine.register_fn("words", move |n: i64| -> RhaiResult<String> {
        Ok(words_from(
            &mut d.lock().expect("rng lock"),
            count("words", n)?,
        ))
    });
    let set = Arc::new(TokenizerSet::new(base.clone()));
    let tokenizers = set.clone();
    let t = set.clone();
    engine.register_fn(
        "tokens",
        move |rng: &mut Rng, n: i64, enc: &str| -> RhaiResult<String> {
            Ok(exact_tokens(&*t.get(enc)?, rng, count("tokens", n)?)?)
        },
    );
    let (d, t) = (default_rng, set.clone());
    engine.register_fn("tokens", move |n: i64, enc: &str| -> RhaiResult<String> {
        let tok = t.get(enc)?;
        Ok(exact_tokens(
            &*tok,
            &mut d.lock().expect("rng lock"),
            count("tokens", n)?,
        )?)
    });
    let t = set.clone();
    engine.register_fn(
        "count_tokens",
        move |text: &str, enc: &str| -> RhaiResult<i64> {
            Ok(t.get(enc)?.encode(text).len() as i64)
        },
    );

    super::lengths::register(engine, set.clone());

    let prefixes: Arc<Mutex<HashMap<(usize, String), String>>> = Arc::default();
    let shared = move |n: i64, enc: &str| -> RhaiResult<String> {
        let n = count("shared_prefix", n)?;
        let key = (n, enc.to_owned());
        let mut cache = prefixes.lock().expect("prefix cache");
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let p = exact_tokens(&*set.get(enc)?, &mut Rng::seeded(0x5EED_F1C5), n)?;
        cache.insert(key, p.clone());
        Ok(p)
    };
    let s2 = shared.clone();
    engine.register_fn("shared_prefix", shared);
    engine.register_fn("shared_prefix", move |n: i64| s2(n, "cl100k_base"));

    engine.register_type_with_name::<Dataset>("Dataset");
    let files: Arc<Mutex<HashMap<PathBuf, Dataset>>> = Arc::default();
    engine.register_fn("dataset", move |path: &str| -> RhaiResult<Dataset> {
        let full = locate_dataset(&base, path).map_err(|e| format!("dataset {e}"))?;
        let mut cache = files.lock().expect("dataset cache");
        if let Some(d) = cache.get(&full) {
            return Ok(d.clone());
        }
        let d = Dataset::new(super::budget::untracked(|| {
            super::dataset::read_items(&full)
        })?);
        cache.insert(full, d.clone());
        Ok(d)
    });
    engine.register_fn("len", |d: &mut Dataset| d.items.len() as i64);
    engine.register_fn("get", |d: &mut Dataset, i: i64| -> RhaiResult<Dynamic> {
        let i = usize::try_from(i)
            .map_err(|_| format!("dataset.get({i}): the index must be 0 or more"))?;
        Ok(d.item(i))
    });
    engine.register_fn("sample", |d: &mut Dataset, rng: Rng| {
        let mut rng = rng;
        d.item(rng.index(d.items.len()))
    });
    tokenizers
}

/// The most words or tokens one built-in call makes (more would pass the string limit anyway;
/// checked first so a huge count is an error, not an allocation).
const MAX_COUNT: usize = 2_000_000;

fn count(what: &str, n: i64) -> Result<usize, String> {
    let n = usize::try_from(n).map_err(|_| format!("{what}({n}): the count must be 0 or more"))?;
    if n > MAX_COUNT {
        return Err(format!("{what}({n}): at most {MAX_COUNT} at a time"));
    }
    Ok(n)
}

/// Turns what a prompt function returned into request content: a string, or a list of
/// `#{ role, content }` maps.
pub fn content_of(v: Dynamic) -> Result<Content, String> {
    if v.is_string() {
        return Ok(Content::Text(v.into_string().expect("checked string")));
    }
    if v.is_array() {
        let arr = v.cast::<Array>();
        let mut out = Vec::with_capacity(arr.len());
        for (i, m) in arr.into_iter().enumerate() {
            let bad = || {
                format!("message {i} must be a map like #{{ role: \"user\", content: \"...\" }}")
            };
            let Some(map) = m.try_cast::<Map>() else {
                return Err(bad());
            };
            if let Some(k) = map
                .keys()
                .find(|k| !matches!(k.as_str(), "role" | "content"))
            {
                return Err(format!(
                    "message {i}: unknown key {:?}; a message has role and content",
                    k.as_str()
                ));
            }
            let get = |k: &str| map.get(k).and_then(|v| v.clone().into_string().ok());
            match (get("role"), get("content")) {
                (Some(role), Some(content)) => out.push(Message { role, content }),
                _ => return Err(bad()),
            }
        }
        if out.is_empty() {
            return Err("the list of messages is empty".into());
        }
        return Ok(Content::Messages(out));
    }
    Err(format!(
        "a prompt must be a string or a list of messages, not {}",
        v.type_name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_generators_depend_only_on_seed_and_index() {
        let a = words_from(&mut Rng::for_request(1, 5), 20);
        assert_eq!(a, words_from(&mut Rng::for_request(1, 5), 20));
        assert_ne!(a, words_from(&mut Rng::for_request(1, 6), 20));
        assert_ne!(a, words_from(&mut Rng::for_request(2, 5), 20));
        assert_eq!(a.split(' ').count(), 20);
    }

    #[test]
    fn prompt_values_become_content() {
        assert_eq!(content_of("x".into()).unwrap(), Content::Text("x".into()));
        let mut m = Map::new();
        m.insert("role".into(), "user".into());
        m.insert("content".into(), "c".into());
        let arr: Array = vec![m.clone().into()];
        assert!(matches!(content_of(arr.into()).unwrap(), Content::Messages(v) if v.len() == 1));
        m.insert("name".into(), "n".into());
        let arr: Array = vec![m.into()];
        assert!(content_of(arr.into()).unwrap_err().contains("unknown key"));
        assert!(
            content_of(Dynamic::from(5_i64))
                .unwrap_err()
                .contains("i64")
        );
    }
}
