//! The mock's prompt model: a prompt token is a whitespace-separated word of every message's
//! content (chat) or of the prompt (completions), and an optional prefix cache over those
//! tokens, as vLLM's automatic prefix caching works: the prompt is cut into blocks of
//! `block_tokens`; block i is known by a hash of every token up to its end (so a block hits only
//! when the whole prefix before it matches); a lookup counts the leading blocks found, over the
//! full blocks before the prompt's last token (the last token is always computed, so a prompt
//! is never wholly cached), and `cached_tokens` is that count times `block_tokens`. Then every
//! full block of the prompt followed by its answer is stored, so the next turn of a
//! conversation finds its history. At most `blocks` blocks are kept, least recently used
//! evicted first. The time to first token grows by `per_token` for each uncached prompt token.
//! Deterministic: the same requests in the same order give the same counts.
//!
//! `GET /metrics` serves the cache's running totals under vLLM's own counter names
//! (`vllm:prefix_cache_queries_total`, `vllm:prefix_cache_hits_total`: prompt tokens looked up,
//! and found), so a run scraping the mock sees what it would scrape from vLLM.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use serde_json::Value;

/// The prefix cache and the prompt-token cost (all zero: no cache, no cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrefixCacheConfig {
    /// Blocks the cache holds (0: no cache).
    pub blocks: u32,
    /// Tokens per block (0 is taken as 16).
    pub block_tokens: u32,
    /// Added to the time to first token for each prompt token not served from the cache.
    pub per_token: Duration,
}

/// Blocks stored, by the hash of their prefix, with their last use.
pub(super) struct PrefixCache {
    capacity: usize,
    block: usize,
    used: HashMap<u64, u64>,
    by_use: BTreeMap<u64, u64>,
    tick: u64,
    /// Prompt tokens looked up and found, over every request served.
    queried: u64,
    hit: u64,
}

impl PrefixCache {
    pub(super) fn new(c: &PrefixCacheConfig) -> Option<Self> {
        (c.blocks > 0).then(|| Self {
            capacity: c.blocks as usize,
            block: if c.block_tokens == 0 {
                16
            } else {
                c.block_tokens as usize
            },
            used: HashMap::new(),
            by_use: BTreeMap::new(),
            tick: 0,
            queried: 0,
            hit: 0,
        })
    }

    /// Looks `prompt` up (the tokens it finds cached), then stores the blocks of `prompt`
    /// followed by `answer`.
    pub(super) fn serve(&mut self, prompt: &[&str], answer: &[&str]) -> u64 {
        let lookable = prompt.len().saturating_sub(1) / self.block;
        let all: Vec<&str> = prompt.iter().chain(answer).copied().collect();
        let hashes = block_hashes(&all, self.block);
        let hits = hashes[..lookable.min(hashes.len())]
            .iter()
            .take_while(|h| self.used.contains_key(h))
            .count();
        for h in hashes {
            self.touch(h);
        }
        let cached = (hits * self.block) as u64;
        self.queried += prompt.len() as u64;
        self.hit += cached;
        cached
    }

    fn touch(&mut self, h: u64) {
        self.tick += 1;
        if let Some(old) = self.used.insert(h, self.tick) {
            self.by_use.remove(&old);
        }
        self.by_use.insert(self.tick, h);
        while self.used.len() > self.capacity {
            let (_, oldest) = self.by_use.pop_first().expect("a block is stored");
            self.used.remove(&oldest);
        }
    }
}

/// `GET /metrics`: the cache's totals as vLLM names them (none without a cache).
pub(super) async fn metrics(
    axum::extract::State(s): axum::extract::State<super::Shared>,
) -> String {
    let Some(cache) = &s.cache else {
        return String::new();
    };
    let (queried, hit) = {
        let c = cache.lock().expect("mock cache lock");
        (c.queried, c.hit)
    };
    let model = s.config.model.replace(['\\', '"', '\n'], "_");
    format!(
        "# HELP vllm:prefix_cache_queries Prompt tokens looked up in the prefix cache.\n\
         # TYPE vllm:prefix_cache_queries counter\n\
         vllm:prefix_cache_queries_total{{model_name=\"{model}\"}} {queried}\n\
         # HELP vllm:prefix_cache_hits Prompt tokens found in the prefix cache.\n\
         # TYPE vllm:prefix_cache_hits counter\n\
         vllm:prefix_cache_hits_total{{model_name=\"{model}\"}} {hit}\n"
    )
}

/// The hash of each full block's whole prefix.
fn block_hashes(tokens: &[&str], block: usize) -> Vec<u64> {
    let mut h = DefaultHasher::new();
    tokens
        .chunks_exact(block)
        .map(|b| {
            b.hash(&mut h);
            h.finish()
        })
        .collect()
}

/// The prompt's tokens: the words of every message (chat) or of the prompt (completions).
pub(super) fn prompt_words(chat: bool, req: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    if chat {
        for m in req["messages"].as_array().into_iter().flatten() {
            words(&m["content"], &mut out);
        }
    } else {
        words(&req["prompt"], &mut out);
    }
    out
}

fn words<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.extend(s.split_whitespace()),
        // Content parts: [{"type":"text","text":"..."}]
        Value::Array(parts) => parts.iter().for_each(|p| words(&p["text"], out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(blocks: u32) -> PrefixCache {
        PrefixCache::new(&PrefixCacheConfig {
            blocks,
            block_tokens: 4,
            per_token: Duration::ZERO,
        })
        .unwrap()
    }

    fn toks(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    #[test]
    fn whole_prefix_blocks_hit_and_answers_are_cached_for_the_next_turn() {
        let mut c = cache(100);
        let p = toks("a b c d e f g h i j");
        assert_eq!(c.serve(&p, &toks("x y")), 0, "a cold cache");
        // Same prompt: blocks [a..d] [e..h] before the last token hit.
        assert_eq!(c.serve(&p, &[]), 8);
        // The next turn: the prompt, its answer, a question: 12 tokens of history cached.
        let next = toks("a b c d e f g h i j x y q r s");
        assert_eq!(c.serve(&next, &[]), 12);
        // A different first token: nothing hits (the hash covers the whole prefix).
        assert_eq!(c.serve(&toks("z b c d e f g h i j"), &[]), 0);
        // Exactly one block long: the last token is computed, so nothing is cached.
        assert_eq!(c.serve(&toks("a b c d"), &[]), 0);
        // The totals /metrics serves: every prompt token looked up, every cached one found.
        assert_eq!((c.queried, c.hit), (10 + 10 + 15 + 10 + 4, 8 + 12));
    }

    #[test]
    fn the_least_recently_used_blocks_go_first() {
        let mut c = cache(2);
        let (a, b) = (toks("a a a a a a a a a"), toks("b b b b b b b b b"));
        c.serve(&a, &[]);
        assert_eq!(c.serve(&a, &[]), 8);
        c.serve(&b, &[]);
        assert_eq!(c.serve(&a, &[]), 0, "b's two blocks pushed a's out");
    }

    #[test]
    fn prompt_words_read_messages_and_parts() {
        let req = serde_json::json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "two  words"}]},
        ]});
        assert_eq!(prompt_words(true, &req), ["be", "brief", "two", "words"]);
        let req = serde_json::json!({"prompt": " one two three "});
        assert_eq!(prompt_words(false, &req).len(), 3);
    }
}
