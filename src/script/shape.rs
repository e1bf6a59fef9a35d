//! Per-request shapes: what a prompt function returns, read into a `RequestShape`. A string or
//! a list of messages is the prompt alone; a map says more: `prompt` (a string or messages) or
//! `messages`, `max_tokens`, `body` (fields over the request's body), `headers` and `label`.
//! The `body` and `headers` maps are read here for `request(...)` too, by the same rules.

use rhai::{Dynamic, Map};

use super::prompts::content_of;
use crate::plan::RequestShape;

/// Body fields the request options already own, and the option that sets each.
const OWNED_BODY_FIELDS: [(&str, &str); 6] = [
    ("model", "model(...) or --model"),
    ("messages", "prompt"),
    ("prompt", "prompt"),
    ("stream", "stream"),
    ("max_tokens", "max_tokens"),
    (
        "stream_options",
        "stream (usage is always requested when streaming)",
    ),
];

/// The keys a prompt function's map may hold.
const SHAPE_KEYS: [&str; 6] = [
    "prompt",
    "messages",
    "max_tokens",
    "body",
    "headers",
    "label",
];

/// The longest label, in characters (labels name a few request classes in reports).
pub const MAX_LABEL_CHARS: usize = 64;

/// `body: #{ ... }` of `what` (`request` or a prompt's map) as JSON fields, none of them one the
/// request owns.
pub fn body_fields(
    what: &str,
    v: Dynamic,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if !v.is_map() {
        return Err(format!(
            "{what}: body must be a map like #{{ temperature: 0.7 }}, not {}",
            v.type_name()
        ));
    }
    let json: serde_json::Value = rhai::serde::from_dynamic(&v)
        .map_err(|e| format!("{what}: body is not valid JSON: {e}"))?;
    let serde_json::Value::Object(obj) = json else {
        unreachable!("a map becomes an object")
    };
    if let Some((k, owner)) = OWNED_BODY_FIELDS.iter().find(|(k, _)| obj.contains_key(*k)) {
        return Err(format!(
            "{what}: body.{k} is set by the request option {owner}; remove it from body"
        ));
    }
    Ok(obj)
}

/// `headers: #{ name: "value" }` of `what` as pairs (the client checks they are valid HTTP).
pub fn header_pairs(what: &str, v: Dynamic) -> Result<Vec<(String, String)>, String> {
    let Some(map) = v.clone().try_cast::<Map>() else {
        return Err(format!(
            "{what}: headers must be a map of strings, not {}",
            v.type_name()
        ));
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let value = v
            .into_string()
            .map_err(|t| format!("{what}: header {:?} must be a string, not {t}", k.as_str()))?;
        out.push((k.to_string(), value));
    }
    Ok(out)
}

/// What a prompt function returned, as a request shape.
pub fn shape_of(v: Dynamic) -> Result<RequestShape, String> {
    let Some(mut map) = v.clone().try_cast::<Map>() else {
        return content_of(v).map(RequestShape::from);
    };
    if let Some(k) = map.keys().find(|k| !SHAPE_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key {:?} in the returned map; it may hold {}",
            k.as_str(),
            SHAPE_KEYS.join(", ")
        ));
    }
    let content = match (map.remove("prompt"), map.remove("messages")) {
        (Some(_), Some(_)) => return Err("the map has both prompt and messages; give one".into()),
        (None, None) => {
            return Err("the map needs prompt (a string or messages) or messages".into());
        }
        (Some(p), None) => content_of(p).map_err(|e| format!("prompt: {e}"))?,
        (None, Some(m)) if m.is_array() => content_of(m).map_err(|e| format!("messages: {e}"))?,
        (None, Some(m)) => {
            return Err(format!(
                "messages must be a list of #{{ role, content }} maps, not {}",
                m.type_name()
            ));
        }
    };
    let mut shape = RequestShape::from(content);
    if let Some(n) = map.remove("max_tokens").filter(|v| !v.is_unit()) {
        let n = n.as_int().map_err(|t| {
            format!("max_tokens must be a whole number like 128 (lengths::* give one), not {t}")
        })?;
        shape.max_tokens = Some(match u32::try_from(n) {
            Ok(n @ 1..) => n,
            _ => return Err(format!("max_tokens must be at least 1, not {n}")),
        });
    }
    if let Some(b) = map.remove("body") {
        shape.body = body_fields("the returned map", b)?;
    }
    if let Some(h) = map.remove("headers") {
        shape.headers = header_pairs("the returned map", h)?;
    }
    if let Some(l) = map.remove("label").filter(|v| !v.is_unit()) {
        let l = l
            .into_string()
            .map_err(|t| format!("label must be a string, not {t}"))?;
        if l.is_empty() || l.chars().count() > MAX_LABEL_CHARS {
            return Err(format!(
                "label {l:?}: a label is 1 to {MAX_LABEL_CHARS} characters"
            ));
        }
        shape.label = Some(l);
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Content;

    fn map(pairs: &[(&str, Dynamic)]) -> Dynamic {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.insert((*k).into(), v.clone());
        }
        m.into()
    }

    #[test]
    fn a_string_is_the_prompt_alone_and_a_map_says_more() {
        let s = shape_of("hi".into()).unwrap();
        assert_eq!(s, RequestShape::from(Content::Text("hi".into())));
        let s = shape_of(map(&[
            ("prompt", "q".into()),
            ("max_tokens", Dynamic::from(40_i64)),
            ("label", "short".into()),
            ("body", map(&[("temperature", Dynamic::from(0.5_f64))])),
            ("headers", map(&[("x-tenant", "a".into())])),
        ]))
        .unwrap();
        assert_eq!(s.content, Content::Text("q".into()));
        assert_eq!(s.max_tokens, Some(40));
        assert_eq!(s.label.as_deref(), Some("short"));
        assert_eq!(s.body["temperature"], 0.5);
        assert_eq!(s.headers, vec![("x-tenant".into(), "a".into())]);
    }

    #[test]
    fn a_bad_map_says_what_is_wrong() {
        let err = |pairs: &[(&str, Dynamic)]| shape_of(map(pairs)).unwrap_err();
        assert!(err(&[("promt", "q".into())]).contains("unknown key \"promt\""));
        assert!(err(&[("max_tokens", Dynamic::from(3_i64))]).contains("needs prompt"));
        let both = [("prompt", "q".into()), ("messages", "m".into())];
        assert!(err(&both).contains("both"));
        let zero = [("prompt", "q".into()), ("max_tokens", Dynamic::from(0_i64))];
        assert!(err(&zero).contains("at least 1"));
        let float = [
            ("prompt", "q".into()),
            ("max_tokens", Dynamic::from(3.5_f64)),
        ];
        assert!(err(&float).contains("whole number"));
        let owned = [
            ("prompt", "q".into()),
            ("body", map(&[("stream", Dynamic::from(false))])),
        ];
        assert!(err(&owned).contains("body.stream is set by the request option stream"));
        let label = [("prompt", "q".into()), ("label", "".into())];
        assert!(err(&label).contains("1 to 64 characters"));
        let header = [
            ("prompt", "q".into()),
            ("headers", map(&[("x", Dynamic::from(1_i64))])),
        ];
        assert!(err(&header).contains("header \"x\" must be a string"));
    }
}
