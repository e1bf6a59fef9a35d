//! Tokenizers for exact-length prompts: the tiktoken encodings compiled into the binary
//! (`cl100k_base`, `o200k_base`, `p50k_base`, `r50k_base`) and a model's own `tokenizer.json`
//! named by a path (read once, offline). `exact_tokens` cuts random words to exactly n tokens.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tiktoken_rs::CoreBPE;

use super::library::locate_dataset;
use super::words::{Rng, words_from};
use crate::plan::{TokenCount, Tokenizer};

/// Something that turns text into token ids and back.
pub trait Tokens: Send + Sync {
    fn encode(&self, text: &str) -> Vec<u32>;
    fn decode(&self, ids: &[u32]) -> Result<String, String>;
}

struct Tiktoken(&'static CoreBPE);

impl Tokens for Tiktoken {
    fn encode(&self, text: &str) -> Vec<u32> {
        self.0.encode_ordinary(text)
    }

    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.0.decode(ids).map_err(|e| e.to_string())
    }
}

/// A Hugging Face `tokenizer.json`; special tokens (BOS, ...) are not counted.
struct HfTokenizer(tokenizers::Tokenizer);

impl Tokens for HfTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        self.0
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.0.decode(ids, false).map_err(|e| e.to_string())
    }
}

/// The tiktoken encodings compiled in.
const ENCODINGS: &str = "cl100k_base, o200k_base, p50k_base, r50k_base";

/// The tiktoken tokenizer for an encoding name.
pub fn encoding(name: &str) -> Result<&'static CoreBPE, String> {
    Ok(match name {
        "cl100k_base" => tiktoken_rs::cl100k_base_singleton(),
        "o200k_base" => tiktoken_rs::o200k_base_singleton(),
        "p50k_base" => tiktoken_rs::p50k_base_singleton(),
        "r50k_base" => tiktoken_rs::r50k_base_singleton(),
        other => {
            return Err(format!(
                "tokens: encoding {other:?} is not known; use one of {ENCODINGS}, or the path of a model's tokenizer.json"
            ));
        }
    })
}

/// Tokenizers by name, loaded on first use. Paths (ending in `.json`) follow `dataset`'s rules.
pub struct TokenizerSet {
    base: PathBuf,
    files: Mutex<HashMap<String, Arc<dyn Tokens>>>,
}

impl TokenizerSet {
    pub fn new(base: PathBuf) -> Self {
        Self {
            base,
            files: Mutex::default(),
        }
    }

    /// Loading is a trusted read of a file (or a compiled-in table): it does not count toward
    /// the calling script's memory budget.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Tokens>, String> {
        super::budget::untracked(|| self.load(name))
    }

    fn load(&self, name: &str) -> Result<Arc<dyn Tokens>, String> {
        if !name.ends_with(".json") {
            return Ok(Arc::new(Tiktoken(encoding(name)?)));
        }
        let mut files = self.files.lock().expect("tokenizer cache");
        if let Some(t) = files.get(name) {
            return Ok(t.clone());
        }
        let path =
            locate_dataset(&self.base, name).map_err(|e| format!("tokens: tokenizer {e}"))?;
        let t = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| format!("tokens: cannot load the tokenizer {}: {e}", path.display()))?;
        let t: Arc<dyn Tokens> = Arc::new(HfTokenizer(t));
        files.insert(name.to_owned(), t.clone());
        Ok(t)
    }
}

/// A tokenizer as the plan holds it: it counts whole answers for the client.
struct Counter(Arc<dyn Tokens>);

impl TokenCount for Counter {
    fn count(&self, text: &str) -> u64 {
        self.0.encode(text).len() as u64
    }
}

impl TokenizerSet {
    /// The tokenizer `name` names, for the plan (`request(#{ tokenizer })`).
    pub fn tokenizer(&self, name: &str) -> Result<Tokenizer, String> {
        Ok(Tokenizer {
            name: name.to_owned(),
            counter: Arc::new(Counter(self.get(name)?)),
        })
    }
}

/// Random words cut to exactly `n` tokens (re-encoding the text gives `n` tokens).
pub fn exact_tokens(tok: &dyn Tokens, rng: &mut Rng, n: usize) -> Result<String, String> {
    if n == 0 {
        return Ok(String::new());
    }
    let mut text = words_from(rng, n + 8);
    for _ in 0..16 {
        let ids = tok.encode(&text);
        if ids.len() == n {
            return Ok(text);
        }
        if ids.len() < n {
            text.push(' ');
            text.push_str(&words_from(rng, n - ids.len() + 2));
            continue;
        }
        text = tok
            .decode(&ids[..n])
            .map_err(|e| format!("tokens: cannot decode: {e}"))?;
    }
    Err(format!(
        "tokens: could not build a prompt of exactly {n} tokens with this tokenizer"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_token_counts_hold_for_every_encoding() {
        for enc in ["cl100k_base", "o200k_base", "p50k_base", "r50k_base"] {
            let bpe = Tiktoken(encoding(enc).unwrap());
            let mut rng = Rng::seeded(3);
            for n in [1, 2, 7, 64, 500, 2048] {
                let text = exact_tokens(&bpe, &mut rng, n).unwrap();
                assert_eq!(bpe.encode(&text).len(), n, "{enc} {n}");
            }
        }
        assert!(encoding("gpt9").err().unwrap().contains("cl100k_base"));
    }

    #[test]
    fn a_models_tokenizer_json_is_used_by_path() {
        let d = tempfile::tempdir().unwrap();
        // A word-level tokenizer over the prompt vocabulary.
        let mut vocab = vec!["[UNK]"];
        for w in super::super::words::VOCABULARY {
            if !vocab.contains(w) {
                vocab.push(w);
            }
        }
        let vocab_json: Vec<String> = vocab
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{w:?}: {i}"))
            .collect();
        std::fs::write(
            d.path().join("tokenizer.json"),
            format!(
                r#"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
                "normalizer":null,"pre_tokenizer":{{"type":"Whitespace"}},"post_processor":null,
                "decoder":null,"model":{{"type":"WordLevel","vocab":{{{}}},"unk_token":"[UNK]"}}}}"#,
                vocab_json.join(",")
            ),
        )
        .unwrap();
        let set = TokenizerSet::new(d.path().to_owned());
        let tok = set.get("tokenizer.json").unwrap();
        assert_eq!(tok.encode("the quiet river").len(), 3);
        let mut rng = Rng::seeded(1);
        for n in [1, 10, 300] {
            let text = exact_tokens(&*tok, &mut rng, n).unwrap();
            assert_eq!(tok.encode(&text).len(), n);
        }
        let err = set.get("missing.json").err().unwrap();
        assert!(err.contains("cannot load the tokenizer"), "{err}");
        assert!(set.get("../x.json").err().unwrap().contains("relative"));
    }
}
