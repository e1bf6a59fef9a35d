//! Which model a run asks for when neither the script nor `--model` names one, and whether the
//! server answers as that model. The server is asked (`GET /v1/models`, as vLLM's bench,
//! GuideLLM and AIPerf do); `choose` is the one rule, pure and tested:
//! 1. the server serves one model: that one;
//! 2. it serves several: the first model of `configs/models.yaml` among them, else none (the
//!    run stops with the list, exit 2);
//! 3. it lists none or cannot be asked: the first model of `models.yaml`, else none.
//!
//! `answered_model` reads the model a response names (the preflight's), for the warning that
//! a server ignored the requested name (llama.cpp and others answer any name).

use std::time::Duration;

use super::Client;
use crate::redact::public_url;

/// Most bytes of a model list that are read.
const LIST_LIMIT: usize = 1024 * 1024;

impl Client {
    /// The ids the target's `GET /models` lists; `Err` says why there is no list.
    pub async fn served_models(&self) -> Result<Vec<String>, String> {
        let url = public_url(self.models_url.as_str());
        let ask = async {
            let mut resp = self
                .http
                .get(self.models_url.clone())
                .headers(self.headers.clone())
                .send()
                .await
                .map_err(|e| {
                    let chain = self.clean(&super::error_chain(&e.without_url()));
                    chain.rsplit(": ").next().unwrap_or_default().to_owned()
                })?;
            let status = resp.status();
            let mut buf = Vec::new();
            while buf.len() < LIST_LIMIT {
                match resp.chunk().await {
                    Ok(Some(b)) => buf.extend_from_slice(&b),
                    _ => break,
                }
            }
            if !status.is_success() {
                return Err(format!("HTTP {}", status.as_u16()));
            }
            model_ids(&buf).ok_or_else(|| "not an OpenAI model list".to_owned())
        };
        match tokio::time::timeout(Duration::from_secs(30), ask).await {
            Ok(r) => r.map_err(|e| format!("GET {url}: {e}")),
            Err(_) => Err(format!("GET {url}: no answer within 30 s")),
        }
    }
}

/// The `data[].id` of an OpenAI model list.
fn model_ids(body: &[u8]) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let data = v.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| m.get("id")?.as_str().map(str::to_owned))
            .collect(),
    )
}

/// The model chosen, and how, for the line the run prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    pub model: String,
    pub why: String,
}

/// Applies the rule above: `served` is the server's list (or why there is none), `known` the
/// full names of `models.yaml` in file order. `Err` is the message that stops the run.
pub fn choose(served: Result<Vec<String>, String>, known: &[String]) -> Result<Chosen, String> {
    let fallback = |why: String| match known.first() {
        Some(m) => Ok(Chosen {
            model: m.clone(),
            why: format!("the first in configs/models.yaml: {why}"),
        }),
        None => Err(format!(
            "no model given and {why}: add model(\"NAME\") to the script or pass --model NAME"
        )),
    };
    match served {
        Err(e) => fallback(format!("no model list from the server ({e})")),
        Ok(list) if list.is_empty() => fallback("the server lists no model".into()),
        Ok(list) if list.len() == 1 => Ok(Chosen {
            model: list[0].clone(),
            why: "the one model the server serves".into(),
        }),
        Ok(list) => match known.iter().find(|k| list.contains(k)) {
            Some(m) => Ok(Chosen {
                model: m.clone(),
                why: format!(
                    "the first model of configs/models.yaml that the server serves (it serves {})",
                    list.len()
                ),
            }),
            None => Err(format!(
                "no model given and the server serves {}: {}; pick one with --model NAME (or model(\"NAME\") in the script)",
                list.len(),
                list.join(", ")
            )),
        },
    }
}

/// The model a response names: its first JSON object's `model` (a stream's first `data:`
/// event that has one).
pub fn answered_model(body: &[u8], sse: bool) -> Option<String> {
    let model = |json: &[u8]| -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(json).ok()?;
        v.get("model")?.as_str().map(str::to_owned)
    };
    if !sse {
        return model(body);
    }
    body.split(|&b| b == b'\n')
        .filter_map(|line| line.strip_prefix(b"data:"))
        .find_map(|data| model(data.trim_ascii()))
}

/// The warning for a server that answered as `answered` when asked for `asked`.
pub fn mismatch(asked: &str, answered: &str) -> Option<String> {
    (!answered.is_empty() && answered != asked).then(|| {
        format!(
            "the server answered as model {answered:?} when asked for {asked:?}; it may ignore the model field (llama.cpp does), so the results carry the name asked for"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[&str]) -> Result<Vec<String>, String> {
        Ok(ids.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn one_served_model_is_the_run_model() {
        let c = choose(list(&["m"]), &["org/other".into()]).unwrap();
        assert_eq!(c.model, "m");
    }

    #[test]
    fn several_served_models_need_a_choice_or_a_known_one() {
        let err = choose(list(&["a", "b"]), &[]).unwrap_err();
        assert!(err.contains("a, b") && err.contains("--model"), "{err}");
        let known = vec!["x".to_string(), "b".to_string()];
        assert_eq!(choose(list(&["a", "b"]), &known).unwrap().model, "b");
    }

    #[test]
    fn no_list_falls_back_to_models_yaml_or_fails() {
        let c = choose(Err("HTTP 404".into()), &["org/m".into()]).unwrap();
        assert_eq!(c.model, "org/m");
        assert!(c.why.contains("HTTP 404"), "{}", c.why);
        let err = choose(list(&[]), &[]).unwrap_err();
        assert!(err.contains("--model"), "{err}");
    }

    #[test]
    fn the_answered_model_is_read_from_a_body_or_a_stream() {
        assert_eq!(
            answered_model(br#"{"model":"m","choices":[]}"#, false).as_deref(),
            Some("m")
        );
        let stream =
            b"data: {\"id\":1,\"choices\":[]}\n\ndata: {\"model\":\"s\"}\n\ndata: [DONE]\n\n";
        assert_eq!(answered_model(stream, true).as_deref(), Some("s"));
        assert_eq!(answered_model(b"data: [DONE]\n\n", true), None);
        assert_eq!(
            model_ids(br#"{"data":[{"id":"a"},{"id":"b"}]}"#).unwrap(),
            ["a", "b"]
        );
        assert!(mismatch("a", "a").is_none() && mismatch("a", "").is_none());
        assert!(
            mismatch("gpt-17-ultra", "llama")
                .unwrap()
                .contains("gpt-17-ultra")
        );
    }
}
