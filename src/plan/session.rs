//! Multi-turn sessions as plan data: a session's turn count and each turn's own content come
//! from a `SessionGenerator` (the script's `session(...)` functions), and a `Conversation`
//! holds what the next turn sends: the opening content, then for every turn the answer the
//! server really streamed and the next turn's content, in order. The script never sees the
//! history, so turn k of session s (apart from the answers before it) depends only on the seed,
//! s and k, and the history is exactly what the server said.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Content, Endpoint, Message, RequestShape};

/// Conversations of several turns: each turn carries every earlier turn and answer, and is
/// due as `pace` says.
#[derive(Clone)]
pub struct SessionSpec {
    pub pace: TurnPace,
    pub generator: Arc<dyn SessionGenerator>,
}

/// When a session's next turn is due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TurnPace {
    /// This long after the answer before it ended (a user reading, then typing).
    Think(Duration),
    /// This long after the turn before it was due (a per-user turn rate, like AIPerf's
    /// user-centric rate): a turn whose answer is not in by then is sent as soon as it is, and
    /// the wait is that turn's lateness.
    Every(Duration),
}

impl TurnPace {
    /// When the turn after one due at `due` whose answer ended at `ended` is due.
    pub fn next<T: std::ops::Add<Duration, Output = T>>(self, due: T, ended: T) -> T {
        match self {
            Self::Think(d) => ended + d,
            Self::Every(d) => due + d,
        }
    }
}

impl fmt::Display for TurnPace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Think(d) => write!(f, "think {} ms", d.as_millis()),
            Self::Every(d) => write!(f, "a turn every {} ms per user", d.as_millis()),
        }
    }
}

impl fmt::Debug for SessionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Session({}, {})", self.pace, self.generator.describe())
    }
}

/// Makes a session's turns. Session `s` is 0-based over the whole run, turn `k` 0-based within
/// its session; both results depend only on the seed, `s` and `k`.
pub trait SessionGenerator: Send + Sync {
    /// How many turns session `session` has (at least 1).
    fn turns(&self, session: u64) -> Result<u32, String>;
    /// Turn `turn`'s own shape: for turn 0 the opening content, for a later turn what is
    /// added after the answer before it (a string is one user message).
    fn turn(&self, session: u64, turn: u32) -> Result<RequestShape, String>;
    /// A short description for run metadata, e.g. `session functions in chat.rhai`.
    fn describe(&self) -> String;
}

/// What a session's next turn sends: everything said so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    content: Content,
}

impl Conversation {
    /// A conversation opened by turn 0's content, for `endpoint`: a chat conversation opened
    /// by a string opens with it as a user message.
    pub fn open(first: Content, endpoint: Endpoint) -> Self {
        let content = match (first, endpoint) {
            (Content::Text(text), Endpoint::Chat) => Content::Messages(vec![Message {
                role: "user".into(),
                content: text,
            }]),
            (first, _) => first,
        };
        Self { content }
    }

    /// Everything said so far, to send as the next turn.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// Adds the server's `answer` to the last turn, then the next turn's `next`: chat
    /// messages get the answer as an assistant message and a string `next` as a user message;
    /// a completions prompt gets the answer and a line break, then `next`.
    pub fn follow(&mut self, answer: &str, next: Content) -> Result<(), String> {
        match (&mut self.content, next) {
            (Content::Messages(history), next) => {
                history.push(Message {
                    role: "assistant".into(),
                    content: answer.to_owned(),
                });
                match next {
                    Content::Text(text) => history.push(Message {
                        role: "user".into(),
                        content: text,
                    }),
                    Content::Messages(m) => history.extend(m),
                }
            }
            (Content::Text(prompt), Content::Text(next)) => {
                prompt.push_str(answer);
                prompt.push('\n');
                prompt.push_str(&next);
            }
            (Content::Text(_), Content::Messages(_)) => {
                return Err("a session that opened with a prompt string (completions) cannot go on with messages; return a string from next_turn".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(content: &str) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }

    #[test]
    fn a_conversation_keeps_every_answer_verbatim_in_order() {
        let mut c = Conversation::open(Content::Text("q0".into()), Endpoint::Chat);
        c.follow(" lorem ipsum", Content::Text("q1".into()))
            .unwrap();
        c.follow(" dolor", Content::Messages(vec![user("q2")]))
            .unwrap();
        let Content::Messages(m) = c.content() else {
            panic!("messages")
        };
        let said: Vec<(&str, &str)> = m
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                ("user", "q0"),
                ("assistant", " lorem ipsum"),
                ("user", "q1"),
                ("assistant", " dolor"),
                ("user", "q2")
            ]
        );
        let mut t = Conversation::open(Content::Text("p0".into()), Endpoint::Completions);
        t.follow(" a b", Content::Text("p1".into())).unwrap();
        assert_eq!(t.content(), &Content::Text("p0 a b\np1".into()));
        assert!(t.follow("x", Content::Messages(vec![user("m")])).is_err());
    }
}
