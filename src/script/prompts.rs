//! Prompt built-ins for scripts: a seeded random generator (`Rng`), `words(n)`, `tokens(n,
//! encoding)` (exactly n tokens under a tiktoken encoding compiled into the binary),
//! `shared_prefix(n)` (the same n-token text every time, to exercise prefix caches on purpose)
//! and `dataset(path)` (JSONL prompts or ShareGPT JSON, read once). Without an explicit generator
//! these draw from one script-wide generator, so every prompt differs unless asked otherwise.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, Map};
use serde_json::Value;

use super::RhaiResult;
use super::library::locate_dataset;
use super::tokens::{TokenizerSet, exact_tokens};
pub use super::words::Rng;
use super::words::words_from;
use crate::plan::{Content, Message};

/// Prompts read from a data file.
#[derive(Clone)]
pub struct Dataset {
    items: Arc<Vec<Content>>,
}

impl Dataset {
    fn item(&self, i: usize) -> Dynamic {
        content_to_dynamic(&self.items[i % self.items.len()])
    }
}

fn content_to_dynamic(c: &Content) -> Dynamic {
    match c {
        Content::Text(t) => t.clone().into(),
        Content::Messages(list) => {
            let arr: Array = list
                .iter()
                .map(|m| {
                    let mut map = Map::new();
                    map.insert("role".into(), m.role.clone().into());
                    map.insert("content".into(), m.content.clone().into());
                    map.into()
                })
                .collect();
            arr.into()
        }
    }
}

/// Reads a JSONL file (one prompt per line: a string, or an object with `prompt`, `text`,
/// `messages` or ShareGPT `conversations`) or a JSON array of such items (ShareGPT files).
pub fn read_dataset(path: &Path) -> Result<Vec<Content>, String> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("dataset {shown}: cannot read: {e}"))?;
    let mut items = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let all: Vec<Value> = serde_json::from_str(trimmed)
            .map_err(|e| format!("dataset {shown}: not valid JSON: {e}"))?;
        for (i, v) in all.iter().enumerate() {
            if let Some(c) = item(v).map_err(|e| format!("dataset {shown}: item {i}: {e}"))? {
                items.push(c);
            }
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .map_err(|e| format!("dataset {shown}:{}: not valid JSON: {e}", i + 1))?;
            if let Some(c) = item(&v).map_err(|e| format!("dataset {shown}:{}: {e}", i + 1))? {
                items.push(c);
            }
        }
    }
    if items.is_empty() {
        return Err(format!("dataset {shown}: holds no prompts"));
    }
    Ok(items)
}

/// One dataset item; `None` for ShareGPT records without a human turn (skipped, as other tools do).
fn item(v: &Value) -> Result<Option<Content>, String> {
    const HINT: &str = "expected a string or an object with \"prompt\", \"text\", \"messages\" or \"conversations\"";
    let Some(obj) = v.as_object() else {
        return v
            .as_str()
            .map(|s| Some(Content::Text(s.to_owned())))
            .ok_or_else(|| HINT.to_owned());
    };
    for key in ["prompt", "text"] {
        if let Some(s) = obj.get(key).and_then(Value::as_str) {
            return Ok(Some(Content::Text(s.to_owned())));
        }
    }
    if let Some(list) = obj.get("messages").and_then(Value::as_array) {
        let messages = list
            .iter()
            .map(|m| {
                let role = m["role"].as_str();
                let content = m["content"].as_str();
                match (role, content) {
                    (Some(r), Some(c)) => Ok(Message {
                        role: r.to_owned(),
                        content: c.to_owned(),
                    }),
                    _ => Err("each message needs string \"role\" and \"content\"".to_owned()),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Some(Content::Messages(messages)));
    }
    if let Some(turns) = obj.get("conversations").and_then(Value::as_array) {
        // ShareGPT: the first human turn is the prompt.
        return Ok(turns
            .iter()
            .find(|t| matches!(t["from"].as_str(), Some("human" | "user")))
            .and_then(|t| t["value"].as_str())
            .map(|s| Content::Text(s.to_owned())));
    }
    Err(HINT.to_owned())
}

/// Registers the prompt built-ins. `base` resolves relative dataset paths; `default_rng` serves
/// calls made without a generator.
pub fn register(engine: &mut Engine, base: PathBuf, default_rng: Arc<Mutex<Rng>>) {
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
        let d = Dataset {
            items: Arc::new(super::budget::untracked(|| read_dataset(&full))?),
        };
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
    fn datasets_read_jsonl_and_sharegpt() {
        let d = tempfile::tempdir().unwrap();
        let jsonl = d.path().join("p.jsonl");
        std::fs::write(
            &jsonl,
            "\"plain\"\n{\"prompt\":\"p\"}\n\n{\"messages\":[{\"role\":\"user\",\"content\":\"m\"}]}\n",
        )
        .unwrap();
        let items = read_dataset(&jsonl).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1], Content::Text("p".into()));
        assert!(matches!(&items[2], Content::Messages(m) if m[0].content == "m"));

        let share = d.path().join("s.json");
        std::fs::write(
            &share,
            r#"[{"id":"a","conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"yo"}]},
                {"id":"b","conversations":[{"from":"gpt","value":"only"}]}]"#,
        )
        .unwrap();
        assert_eq!(
            read_dataset(&share).unwrap(),
            vec![Content::Text("hi".into())]
        );

        std::fs::write(&jsonl, "{\"prompt\":\"ok\"}\n{\"question\":1}\n").unwrap();
        let err = read_dataset(&jsonl).unwrap_err();
        assert!(
            err.contains("p.jsonl:2") && err.contains("\"prompt\""),
            "{err}"
        );
        assert!(
            read_dataset(&d.path().join("none.jsonl"))
                .unwrap_err()
                .contains("cannot read")
        );
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
