//! The answer's text, kept only where a session needs it (the next turn carries it): the
//! answer content of the first choice of each stream chunk or whole body, not reasoning and
//! not tool calls, appended in order and bounded by `MAX_ANSWER_BYTES`. It parses the payload
//! a second time, so requests that keep no text pay nothing.

use serde::Deserialize;

use super::chunk::Choice;

/// The most bytes of answer text kept per request (about a quarter of a million tokens).
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<Choice<'a>>>,
}

/// The answer text read so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Answer {
    text: String,
    /// Text past `MAX_ANSWER_BYTES` was left out.
    pub cut: bool,
}

impl Answer {
    /// Appends the answer text of one JSON payload (a chunk or a whole body); anything not
    /// shaped like one adds nothing (the timing reader reports it).
    pub fn add(&mut self, json: &[u8]) {
        let Ok(body) = serde_json::from_slice::<Body<'_>>(json) else {
            return;
        };
        let Some(choice) = body.choices.as_ref().and_then(|c| c.first()) else {
            return;
        };
        let message = choice.delta.as_ref().or(choice.message.as_ref());
        for part in [
            message.and_then(|m| m.content.as_deref()),
            choice.text.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            self.push(part);
        }
    }

    fn push(&mut self, part: &str) {
        let room = MAX_ANSWER_BYTES - self.text.len();
        if part.len() <= room {
            return self.text.push_str(part);
        }
        let mut end = room;
        while !part.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&part[..end]);
        self.cut = true;
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_answer_content_in_order_and_nothing_else() {
        let mut a = Answer::default();
        a.add(br#"{"choices":[{"delta":{"role":"assistant"}}]}"#);
        a.add(br#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#);
        a.add(br#"{"choices":[{"delta":{"content":" lorem"}}]}"#);
        a.add(br#"{"choices":[{"delta":{"content":null}}],"usage":{"prompt_tokens":3}}"#);
        a.add(br#"{"choices":[{"text":" ipsum \"q\""}]}"#);
        a.add(b"not json");
        a.add(br#"{"choices":[{"message":{"role":"assistant","content":" \u00e9"}}]}"#);
        assert_eq!(a.into_text(), " lorem ipsum \"q\" é");
    }

    #[test]
    fn the_kept_text_is_bounded_at_a_character_boundary() {
        let mut a = Answer::default();
        a.push(&"x".repeat(MAX_ANSWER_BYTES - 1));
        a.push("éé");
        assert!(a.cut);
        assert_eq!(a.into_text().len(), MAX_ANSWER_BYTES - 1);
    }
}
