//! The top errors of a run: measured failed requests counted by outcome class, HTTP status and
//! message, most frequent first. Distinct messages are capped (`MAX_KINDS`); failures past the
//! cap are counted under one "other messages" entry, so memory stays bounded.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::{Outcome, RequestRecord};

/// Distinct (outcome, status, message) kinds kept before the rest count as "other messages".
const MAX_KINDS: usize = 256;
/// Characters of a message kept (a long server body says what it is in its start).
const MESSAGE_CHARS: usize = 160;
/// Kinds a report lists.
pub const TOP_ERRORS: usize = 10;
/// The message of the entry that counts failures past `MAX_KINDS`.
pub const OTHER_MESSAGES: &str = "(other messages)";

/// One kind of failure and how many measured requests had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    /// The outcome class (`http_status`, `timeout`, ...).
    pub outcome: &'static str,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// What went wrong (the record's `error`, cut to 160 characters; empty when none).
    pub message: String,
    pub count: u64,
}

/// Accumulates failed measured records.
#[derive(Debug, Default)]
pub struct ErrorTally {
    kinds: BTreeMap<(&'static str, Option<u16>, String), u64>,
}

impl ErrorTally {
    pub fn add(&mut self, r: &RequestRecord) {
        if r.outcome == Outcome::Ok {
            return;
        }
        let message: String = r
            .error
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(MESSAGE_CHARS)
            .collect();
        let mut key = (r.outcome.name(), r.status, message);
        if !self.kinds.contains_key(&key) && self.kinds.len() >= MAX_KINDS {
            key.2 = OTHER_MESSAGES.to_owned();
        }
        *self.kinds.entry(key).or_default() += 1;
    }

    /// The `TOP_ERRORS` most frequent kinds, most frequent first (ties in key order).
    pub fn top(&self) -> Vec<ErrorCount> {
        let mut v: Vec<ErrorCount> = self
            .kinds
            .iter()
            .map(|((outcome, status, message), count)| ErrorCount {
                outcome,
                status: *status,
                message: message.clone(),
                count: *count,
            })
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.count));
        v.truncate(TOP_ERRORS);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::tests::rec;

    fn failed(outcome: Outcome, status: Option<u16>, error: &str) -> RequestRecord {
        let mut r = rec(0, 0, 0, 10, 10, 2);
        r.outcome = outcome;
        r.status = status;
        r.error = Some(error.into());
        r
    }

    #[test]
    fn errors_are_counted_by_kind_most_frequent_first() {
        let mut t = ErrorTally::default();
        for _ in 0..3 {
            t.add(&failed(Outcome::HttpStatus, Some(503), "overloaded"));
        }
        t.add(&failed(Outcome::Timeout, None, "total timeout"));
        t.add(&rec(0, 0, 0, 10, 10, 2));
        let top = t.top();
        assert_eq!(top.len(), 2);
        assert_eq!(
            (
                top[0].outcome,
                top[0].status,
                top[0].message.as_str(),
                top[0].count
            ),
            ("http_status", Some(503), "overloaded", 3)
        );
        assert_eq!(top[1].count, 1);
    }

    #[test]
    fn distinct_messages_past_the_cap_count_as_other() {
        let mut t = ErrorTally::default();
        for i in 0..MAX_KINDS + 5 {
            t.add(&failed(Outcome::HttpStatus, Some(500), &format!("id {i}")));
        }
        let top = t.top();
        assert_eq!(top[0].message, OTHER_MESSAGES);
        assert_eq!(top[0].count, 5);
    }
}
