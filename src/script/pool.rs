//! `prefix_pool(#{ prefixes, prefix_tokens, suffix_tokens, share, seed, cache_bust, encoding })`:
//! a prompt generator for prefix-cache workloads, given to `request` as its prompt. There are
//! `prefixes` distinct prefixes of `prefix_tokens` tokens each; request i picks prefix k by
//! `share` (`"uniform"`, `"zipf"`: weight 1/(k+1), or a list of one weight per prefix) with a
//! generator seeded by (seed, i), then a unique suffix of `suffix_tokens` (32) tokens, and is
//! labelled `prefix-<k>`. With `cache_bust: true` every prompt is unique from its first tokens
//! (same lengths, same picks and labels), so nothing can be reused. Prompts are
//! `blocks::BlockText` (the text trace replay synthesises): prefix k is block id k, so the same
//! seed gives the same prefixes on every run, and lengths are exact in `encoding`.

use std::sync::Arc;

use rhai::{Dynamic, Engine, Map};

use super::RhaiResult;
use super::blocks::BlockText;
use super::opts::Opts;
use super::tokens::TokenizerSet;
use super::words::Rng;
use crate::plan::{Content, PromptGenerator, RequestShape};

/// The most prefixes a pool has.
const MAX_PREFIXES: u64 = 100_000;
/// The most tokens a pool's prompt has (prefix and suffix).
const MAX_PROMPT_TOKENS: u64 = 2_000_000;
/// Stream of the prefix draw (apart from the prompt's words).
const PICK: u64 = 0x9D1C_F00D;

/// How requests share the prefixes.
#[derive(Debug, Clone, PartialEq)]
pub enum Share {
    Uniform,
    Zipf,
    Weights(Vec<f64>),
}

impl Share {
    fn name(&self) -> String {
        match self {
            Share::Uniform => "uniform".into(),
            Share::Zipf => "zipf".into(),
            Share::Weights(w) => format!("weights {w:?}"),
        }
    }
}

/// A prefix pool: what each request's prompt is.
pub struct PrefixPool {
    text: BlockText,
    prefixes: usize,
    prefix_tokens: usize,
    suffix_tokens: usize,
    /// Cumulative weights of the prefixes, the last one the total.
    cumulative: Vec<f64>,
    cache_bust: bool,
    seed: u64,
    source: String,
}

impl PrefixPool {
    /// The prefix request `index` picks.
    pub fn pick(&self, index: u64) -> usize {
        let total = self.cumulative[self.prefixes - 1];
        let x = Rng::for_request(self.seed ^ PICK, index).float() * total;
        self.cumulative
            .iter()
            .position(|&c| x < c)
            .unwrap_or(self.prefixes - 1)
    }
}

impl PromptGenerator for PrefixPool {
    fn shape(&self, index: u64) -> Result<RequestShape, String> {
        let k = self.pick(index);
        let n = self.prefix_tokens + self.suffix_tokens;
        let text = if self.cache_bust {
            self.text.unique(index, n)
        } else {
            self.text.synthesize(index, n, &[k as u64])
        };
        Ok(RequestShape {
            label: Some(format!("prefix-{k}")),
            ..RequestShape::from(Content::Text(text))
        })
    }

    fn describe(&self) -> String {
        self.source.clone()
    }
}

/// A pool as scripts hold it (between `prefix_pool` and `request`).
#[derive(Clone)]
pub struct PoolHandle(pub Arc<PrefixPool>);

/// Registers `prefix_pool`.
pub fn register(engine: &mut Engine, tokens: Arc<TokenizerSet>) {
    engine.register_type_with_name::<PoolHandle>("PrefixPool");
    engine.register_fn("prefix_pool", move |map: Map| -> RhaiResult<PoolHandle> {
        Ok(PoolHandle(Arc::new(prefix_pool(map, &tokens)?)))
    });
}

fn prefix_pool(map: Map, tokens: &TokenizerSet) -> RhaiResult<PrefixPool> {
    let mut o = Opts::new(
        "prefix_pool",
        map,
        &[
            "prefixes",
            "prefix_tokens",
            "suffix_tokens",
            "share",
            "seed",
            "cache_bust",
            "encoding",
        ],
    )?;
    let prefixes = match o.count("prefixes")? {
        Some(n @ 1..=MAX_PREFIXES) => n as usize,
        Some(n) => {
            return Err(
                format!("prefix_pool: prefixes must be from 1 to {MAX_PREFIXES}, not {n}").into(),
            );
        }
        None => return Err("prefix_pool: prefixes is required, e.g. prefixes: 4".into()),
    };
    let prefix_tokens = match o.count("prefix_tokens")? {
        Some(n) if n >= 1 => n,
        Some(_) => return Err("prefix_pool: prefix_tokens must be 1 or more".into()),
        None => {
            return Err("prefix_pool: prefix_tokens is required, e.g. prefix_tokens: 512".into());
        }
    };
    let suffix_tokens = match o.count("suffix_tokens")? {
        Some(0) => return Err(
            "prefix_pool: suffix_tokens must be 1 or more (the suffix makes each prompt unique)"
                .into(),
        ),
        Some(n) => n,
        None => 32,
    };
    if prefix_tokens + suffix_tokens > MAX_PROMPT_TOKENS {
        return Err(format!(
            "prefix_pool: prefix_tokens + suffix_tokens is {}; a prompt has at most {MAX_PROMPT_TOKENS} tokens",
            prefix_tokens + suffix_tokens
        )
        .into());
    }
    let share = match o.take("share") {
        None => Share::Uniform,
        Some(v) => share_of(v, prefixes)?,
    };
    let seed = o.count("seed")?.unwrap_or(0);
    let cache_bust = o.bool("cache_bust")?.unwrap_or(false);
    let encoding = o
        .string("encoding")?
        .unwrap_or_else(|| "cl100k_base".into());
    let tok = tokens.get(&encoding)?;
    let block = prefix_tokens as usize;
    let text = super::budget::untracked(|| BlockText::new(&*tok, block, seed, "prefix_pool"))?;
    let cumulative = cumulative_weights(&share, prefixes);
    let source = format!(
        "prefix pool: {prefixes} prefixes of {prefix_tokens} tokens ({encoding}), share {}, then a unique suffix of {suffix_tokens} tokens{}",
        share.name(),
        if cache_bust {
            "; cache bust: every prompt unique from its first token"
        } else {
            ""
        }
    );
    Ok(PrefixPool {
        text,
        prefixes,
        prefix_tokens: block,
        suffix_tokens: suffix_tokens as usize,
        cumulative,
        cache_bust,
        seed,
        source,
    })
}

/// `share` as the script gives it, for a pool of `prefixes`.
fn share_of(v: Dynamic, prefixes: usize) -> RhaiResult<Share> {
    if let Ok(name) = v.clone().into_string() {
        return match name.as_str() {
            "uniform" => Ok(Share::Uniform),
            "zipf" => Ok(Share::Zipf),
            other => Err(format!("prefix_pool: share {other:?} is not known; use \"uniform\", \"zipf\" or a list of one weight per prefix").into()),
        };
    }
    let Some(list) = v.try_cast::<rhai::Array>() else {
        return Err("prefix_pool: share must be \"uniform\", \"zipf\" or a list of one weight per prefix, e.g. [4, 2, 1, 1]".into());
    };
    if list.len() != prefixes {
        return Err(format!(
            "prefix_pool: share has {} weights for {prefixes} prefixes; give one weight per prefix",
            list.len()
        )
        .into());
    }
    let weights = list
        .iter()
        .map(|w| {
            w.as_float()
                .or_else(|_| w.as_int().map(|i| i as f64))
                .ok()
                .filter(|x| *x >= 0.0 && x.is_finite())
                .ok_or_else(|| {
                    format!("prefix_pool: share: a weight must be a number of 0 or more, not {w}")
                })
        })
        .collect::<Result<Vec<f64>, String>>()?;
    if weights.iter().sum::<f64>() <= 0.0 {
        return Err("prefix_pool: share: at least one weight must be greater than 0".into());
    }
    Ok(Share::Weights(weights))
}

fn cumulative_weights(share: &Share, prefixes: usize) -> Vec<f64> {
    let weight = |k: usize| match share {
        Share::Uniform => 1.0,
        Share::Zipf => 1.0 / (k + 1) as f64,
        Share::Weights(w) => w[k],
    };
    (0..prefixes)
        .scan(0.0, |sum, k| {
            *sum += weight(k);
            Some(*sum)
        })
        .collect()
}
