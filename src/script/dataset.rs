//! Data files scripts read with `dataset(path)`: JSONL prompts or ShareGPT JSON, read once into
//! items, each with its prompt and, where the file gives one, its output length: a JSONL
//! object's `max_tokens` or `output_tokens` field, or a ShareGPT record's answer (the first
//! reply after the prompt), whose length in tokens of a named encoding `lengths::from_dataset`
//! counts.

use std::path::Path;
use std::sync::Arc;

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use crate::plan::{Content, Message};

/// What a dataset item says about its output length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputLength {
    /// A token count the file gives (`max_tokens` or `output_tokens`).
    Tokens(u32),
    /// The reference answer (ShareGPT), to be counted in tokens of an encoding.
    Answer(String),
}

/// One prompt of a data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetItem {
    pub content: Content,
    pub output: Option<OutputLength>,
}

/// Prompts read from a data file.
#[derive(Clone)]
pub struct Dataset {
    pub(super) items: Arc<Vec<DatasetItem>>,
    /// Indices of the items that give an output length.
    with_length: Arc<Vec<usize>>,
}

impl Dataset {
    pub fn new(items: Vec<DatasetItem>) -> Self {
        let with_length = (0..items.len())
            .filter(|i| items[*i].output.is_some())
            .collect();
        Self {
            items: Arc::new(items),
            with_length: Arc::new(with_length),
        }
    }

    /// Indices of the items that give an output length.
    pub fn with_length(&self) -> &[usize] {
        &self.with_length
    }

    /// Item `i`, wrapping around.
    pub fn at(&self, i: usize) -> &DatasetItem {
        &self.items[i % self.items.len()]
    }

    pub(super) fn item(&self, i: usize) -> Dynamic {
        content_to_dynamic(&self.at(i).content)
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
    Ok(read_items(path)?.into_iter().map(|i| i.content).collect())
}

/// Like `read_dataset`, keeping each item's output length where the file gives one.
pub fn read_items(path: &Path) -> Result<Vec<DatasetItem>, String> {
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
fn item(v: &Value) -> Result<Option<DatasetItem>, String> {
    const HINT: &str = "expected a string or an object with \"prompt\", \"text\", \"messages\" or \"conversations\"";
    let Some(obj) = v.as_object() else {
        return v
            .as_str()
            .map(|s| Some(plain(Content::Text(s.to_owned()))))
            .ok_or_else(|| HINT.to_owned());
    };
    let given = given_length(obj)?;
    let with_length = |content| {
        Some(DatasetItem {
            content,
            output: given.clone(),
        })
    };
    for key in ["prompt", "text"] {
        if let Some(s) = obj.get(key).and_then(Value::as_str) {
            return Ok(with_length(Content::Text(s.to_owned())));
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
        return Ok(with_length(Content::Messages(messages)));
    }
    if let Some(turns) = obj.get("conversations").and_then(Value::as_array) {
        // ShareGPT: the first human turn is the prompt, the reply after it the answer.
        let Some(at) = turns
            .iter()
            .position(|t| matches!(t["from"].as_str(), Some("human" | "user")))
        else {
            return Ok(None);
        };
        let Some(prompt) = turns[at]["value"].as_str() else {
            return Ok(None);
        };
        let answer = turns[at + 1..]
            .iter()
            .find(|t| matches!(t["from"].as_str(), Some("gpt" | "assistant" | "chatgpt")))
            .and_then(|t| t["value"].as_str())
            .map(|a| OutputLength::Answer(a.to_owned()));
        return Ok(Some(DatasetItem {
            content: Content::Text(prompt.to_owned()),
            output: given.or(answer),
        }));
    }
    Err(HINT.to_owned())
}

fn plain(content: Content) -> DatasetItem {
    DatasetItem {
        content,
        output: None,
    }
}

/// An object's `max_tokens` or `output_tokens` field: a whole number of at least 1.
fn given_length(obj: &serde_json::Map<String, Value>) -> Result<Option<OutputLength>, String> {
    for key in ["max_tokens", "output_tokens"] {
        if let Some(v) = obj.get(key) {
            return match v.as_u64() {
                Some(n @ 1..) => Ok(Some(OutputLength::Tokens(n.min(u32::MAX as u64) as u32))),
                _ => Err(format!(
                    "\"{key}\" must be a whole number of at least 1, not {v}"
                )),
            };
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn items_keep_the_output_length_the_file_gives() {
        let d = tempfile::tempdir().unwrap();
        let jsonl = d.path().join("l.jsonl");
        std::fs::write(
            &jsonl,
            "{\"prompt\":\"a\",\"max_tokens\":12}\n{\"prompt\":\"b\",\"output_tokens\":7}\n{\"prompt\":\"c\"}\n",
        )
        .unwrap();
        let items = read_items(&jsonl).unwrap();
        let lengths: Vec<_> = items.iter().map(|i| i.output.clone()).collect();
        assert_eq!(
            lengths,
            vec![
                Some(OutputLength::Tokens(12)),
                Some(OutputLength::Tokens(7)),
                None
            ]
        );
        std::fs::write(&jsonl, "{\"prompt\":\"a\",\"max_tokens\":0}\n").unwrap();
        let err = read_items(&jsonl).unwrap_err();
        assert!(
            err.contains("l.jsonl:1") && err.contains("max_tokens"),
            "{err}"
        );

        let share = d.path().join("s.json");
        std::fs::write(
            &share,
            r#"[{"conversations":[{"from":"system","value":"s"},{"from":"human","value":"hi"},{"from":"gpt","value":"the answer"}]},
                {"conversations":[{"from":"human","value":"alone"}]}]"#,
        )
        .unwrap();
        let items = read_items(&share).unwrap();
        assert_eq!(
            items[0].output,
            Some(OutputLength::Answer("the answer".into()))
        );
        assert_eq!(items[1].output, None);
    }
}
