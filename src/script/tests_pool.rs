//! Tests of `prefix_pool`: exact lengths, shared prefixes byte for byte, labels, the share
//! distributions, cache bust, seeding, and the errors a script gets.

use std::collections::HashMap;

use super::tests::{PHASE, load_src};
use super::tokens::TokenizerSet;
use crate::plan::{Content, Prompt, RequestShape};

fn pool_shapes(options: &str, n: u64) -> Vec<RequestShape> {
    let plan = load_src(&format!(
        "request(#{{ prompt: prefix_pool(#{{ {options} }}) }}); {PHASE}"
    ))
    .unwrap();
    let Prompt::Generated(g) = &plan.request.prompt else {
        panic!("a generated prompt")
    };
    (0..n).map(|i| g.shape(i).unwrap()).collect()
}

fn text(s: &RequestShape) -> &str {
    match &s.content {
        Content::Text(t) => t,
        other => panic!("text, not {other:?}"),
    }
}

#[test]
fn requests_share_their_prefix_byte_for_byte_and_nothing_after_it() {
    let tok = TokenizerSet::new(".".into()).get("cl100k_base").unwrap();
    let shapes = pool_shapes("prefixes: 4, prefix_tokens: 64, suffix_tokens: 8", 200);
    let mut prefix_of: HashMap<String, String> = HashMap::new();
    let mut suffixes = std::collections::HashSet::new();
    for s in &shapes {
        let t = text(s);
        assert_eq!(tok.encode(t).len(), 72, "prefix + suffix tokens, exactly");
        // Each word is one token with its leading space: the 65th word starts the suffix.
        assert_eq!(t.matches(' ').count(), 72);
        let cut = t.match_indices(' ').nth(64).unwrap().0;
        let (prefix, suffix) = t.split_at(cut);
        let label = s.label.clone().expect("a label");
        let known = prefix_of
            .entry(label.clone())
            .or_insert_with(|| prefix.into());
        assert_eq!(known, prefix, "{label}: the same prefix text every time");
        suffixes.insert(suffix.to_owned());
    }
    assert_eq!(suffixes.len(), 200, "every suffix is its own");
    let mut labels: Vec<&String> = prefix_of.keys().collect();
    labels.sort();
    assert_eq!(labels, ["prefix-0", "prefix-1", "prefix-2", "prefix-3"]);
    let distinct: std::collections::HashSet<&String> = prefix_of.values().collect();
    assert_eq!(distinct.len(), 4, "four distinct prefixes");
    // Request i is the same on every run.
    let again = pool_shapes("prefixes: 4, prefix_tokens: 64, suffix_tokens: 8", 200);
    assert_eq!(shapes, again);
    let other_seed = pool_shapes(
        "prefixes: 4, prefix_tokens: 64, suffix_tokens: 8, seed: 9",
        1,
    );
    assert_ne!(text(&other_seed[0]), text(&shapes[0]));
}

fn label_counts(options: &str, n: u64) -> Vec<usize> {
    let mut counts = vec![0; 4];
    for s in pool_shapes(options, n) {
        let k: usize = s.label.unwrap()["prefix-".len()..].parse().unwrap();
        counts[k] += 1;
    }
    counts
}

#[test]
fn share_picks_prefixes_by_their_weights() {
    let base = "prefixes: 4, prefix_tokens: 4, suffix_tokens: 4";
    let uniform = label_counts(base, 4000);
    assert!(
        uniform.iter().all(|&c| (850..1150).contains(&c)),
        "{uniform:?}"
    );
    let weighted = label_counts(&format!("{base}, share: [3, 1, 0, 0]"), 4000);
    assert_eq!(
        &weighted[2..],
        [0, 0],
        "no request picks a prefix of weight 0"
    );
    assert!((2850..3150).contains(&weighted[0]), "{weighted:?}");
    // Zipf: weights 1, 1/2, 1/3, 1/4 (shares 48%, 24%, 16%, 12%).
    let zipf = label_counts(&format!("{base}, share: \"zipf\""), 4000);
    for (c, want) in zipf.iter().zip([1920.0, 960.0, 640.0, 480.0]) {
        assert!((*c as f64 - want).abs() < 150.0, "{zipf:?}");
    }
}

#[test]
fn cache_bust_keeps_lengths_and_picks_but_shares_no_first_tokens() {
    let tok = TokenizerSet::new(".".into()).get("cl100k_base").unwrap();
    let opts = "prefixes: 4, prefix_tokens: 64, suffix_tokens: 8";
    let shared = pool_shapes(opts, 300);
    let bust = pool_shapes(&format!("{opts}, cache_bust: true"), 300);
    let mut starts = std::collections::HashSet::new();
    for (a, b) in shared.iter().zip(&bust) {
        assert_eq!(
            a.label, b.label,
            "the same pick with and without cache bust"
        );
        assert_eq!(tok.encode(text(b)).len(), 72);
        let first: Vec<&str> = text(b).split(' ').take(5).collect();
        starts.insert(first.join(" "));
    }
    assert_eq!(
        starts.len(),
        300,
        "every prompt differs within its first 4 tokens"
    );
}

#[test]
fn prefix_pool_errors_name_the_option_and_the_line() {
    for (options, needle) in [
        ("prefix_tokens: 8", "prefixes is required"),
        ("prefixes: 4", "prefix_tokens is required"),
        ("prefixes: 0, prefix_tokens: 8", "prefixes must be from 1"),
        (
            "prefixes: 2, prefix_tokens: 8, suffix_tokens: 0",
            "suffix_tokens must be 1 or more",
        ),
        (
            "prefixes: 2, prefix_tokens: 8, share: [1, 2, 3]",
            "3 weights for 2 prefixes",
        ),
        (
            "prefixes: 2, prefix_tokens: 8, share: [0, 0]",
            "at least one weight",
        ),
        ("prefixes: 2, prefix_tokens: 8, share: [1, -1]", "0 or more"),
        (
            "prefixes: 2, prefix_tokens: 8, share: \"pareto\"",
            "\"pareto\" is not known",
        ),
        (
            "prefixes: 2, prefix_tokens: 8, shares: 1",
            "unknown option \"shares\"",
        ),
        (
            "prefixes: 2, prefix_tokens: 8, encoding: \"gpt9\"",
            "cl100k_base",
        ),
        (
            "prefixes: 2, prefix_tokens: 2000000",
            "at most 2000000 tokens",
        ),
    ] {
        let src = format!("\n\nrequest(#{{ prompt: prefix_pool(#{{ {options} }}) }}); {PHASE}");
        let err = load_src(&src).unwrap_err().to_string();
        assert!(err.contains(needle), "{options}: {err}");
        assert!(err.contains("w.rhai:3"), "{options}: names the line: {err}");
    }
}

#[test]
fn check_describes_the_pool() {
    let plan = load_src(&format!(
        "request(#{{ prompt: prefix_pool(#{{ prefixes: 4, prefix_tokens: 512, share: \"zipf\", cache_bust: true }}) }}); {PHASE}"
    ))
    .unwrap();
    let Prompt::Generated(g) = &plan.request.prompt else {
        panic!("a generated prompt")
    };
    let d = g.describe();
    assert!(d.contains("4 prefixes of 512 tokens (cl100k_base)"), "{d}");
    assert!(
        d.contains("share zipf") && d.contains("suffix of 32 tokens"),
        "{d}"
    );
    assert!(d.contains("cache bust"), "{d}");
}
