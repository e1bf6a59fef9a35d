//! Prompts of exact token lengths built from shared blocks, for trace replay and prefix pools:
//! text made of words that are one token each (with their leading space) in the named
//! encoding, so n words are exactly n tokens. A block is known by an id: the same id (and seed)
//! gives the same words byte for byte, so prompts share exactly the prefixes asked for; past
//! its blocks a prompt has words of its own, drawn for its request index.

use super::tokens::Tokens;
use super::words::{Rng, VOCABULARY};

/// Stream of a request's own words (apart from any block id's stream).
const OWN_WORDS: u64 = 0x7ACE_F00D;

/// Words of one token each in an encoding, drawn into blocks and a request's own text.
pub struct BlockText {
    /// Words of one token each (with their leading space) in the encoding.
    words: Vec<String>,
    /// Tokens per block.
    block: usize,
    seed: u64,
}

impl BlockText {
    /// `what` names the caller in the error of a tokenizer that cannot make exact lengths.
    pub fn new(tok: &dyn Tokens, block: usize, seed: u64, what: &str) -> Result<Self, String> {
        let mut words: Vec<String> = VOCABULARY
            .iter()
            .map(|w| format!(" {w}"))
            .filter(|w| tok.encode(w).len() == 1)
            .collect();
        words.sort();
        words.dedup();
        let sample: String = words.iter().cycle().take(64).map(String::as_str).collect();
        if words.len() < 16 || tok.encode(&sample).len() != 64 {
            return Err(format!(
                "{what}: this tokenizer does not count one token per prompt word, so prompts of exact lengths cannot be made; use a tiktoken encoding (cl100k_base, o200k_base)"
            ));
        }
        Ok(Self {
            words,
            block: block.max(1),
            seed,
        })
    }

    /// Appends `n` words drawn from `rng`.
    fn words_into(&self, rng: &mut Rng, n: usize, out: &mut String) {
        for _ in 0..n {
            out.push_str(&self.words[rng.index(self.words.len())]);
        }
    }

    /// Request `index`'s prompt of `input` tokens: a block per id (the same id, the same
    /// text), then words of its own past the last block.
    pub fn synthesize(&self, index: u64, input: usize, block_ids: &[u64]) -> String {
        let mut out = String::with_capacity(input * 8);
        let mut left = input;
        for &h in block_ids {
            if left == 0 {
                break;
            }
            let n = left.min(self.block);
            self.words_into(&mut Rng::for_request(self.seed, h), n, &mut out);
            left -= n;
        }
        let mut own = Rng::for_request(self.seed ^ OWN_WORDS, index);
        self.words_into(&mut own, left, &mut out);
        out
    }

    /// Request `index`'s prompt of `input` tokens that no other request's prompt starts like:
    /// its first tokens spell the index (a word per digit in base of the word count, as many as
    /// the index needs and at least 4), then words of its own.
    pub fn unique(&self, index: u64, input: usize) -> String {
        let base = self.words.len() as u64;
        let mut digits = Vec::new();
        let mut rest = index;
        while digits.len() < 4 || rest > 0 {
            digits.push((rest % base) as usize);
            rest /= base;
        }
        let mut out = String::with_capacity(input * 8);
        for &d in digits.iter().take(input) {
            out.push_str(&self.words[d]);
        }
        let left = input.saturating_sub(digits.len());
        self.words_into(
            &mut Rng::for_request(self.seed ^ OWN_WORDS, index),
            left,
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::tokens::TokenizerSet;

    #[test]
    fn unique_prompts_are_exact_and_differ_from_their_first_tokens() {
        let set = TokenizerSet::new(".".into());
        let tok = set.get("cl100k_base").unwrap();
        let text = BlockText::new(&*tok, 16, 0, "t").unwrap();
        let firsts: std::collections::HashSet<String> = (0..2000)
            .map(|i| {
                let p = text.unique(i, 40);
                assert_eq!(tok.encode(&p).len(), 40);
                p.split(' ').take(5).collect::<Vec<_>>().join(" ")
            })
            .collect();
        assert_eq!(
            firsts.len(),
            2000,
            "the first 4 tokens differ for every index"
        );
        assert_eq!(tok.encode(&text.unique(7, 2)).len(), 2);
        assert_eq!(text.unique(5, 30), text.unique(5, 30));
    }
}
