//! The shape of `src/`, checked on every test run: the entry layer (`app`) is imported by
//! nothing below it, no module imports another that (directly or not) imports it back, no file
//! is over 600 lines and no function over 100.
//!
//! The module graph is read from the source text: a module is a file (`a/b.rs` or
//! `a/b/mod.rs` is `a::b`); it depends on every module named by a `crate::…` path or a
//! `super::…` path in its code (test modules left out). A module declaring, re-exporting or
//! calling into its own submodules is composition, not an import, so edges from a module to
//! its descendants are not counted; everything else is (siblings, other trees, a child using
//! its parent).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 100;

fn sources() -> Vec<(String, PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(&root).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((parts.join("::"), p, text));
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without its `#[cfg(test)]` module (the last item by convention).
fn without_tests(text: &str) -> &str {
    text.find("\n#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// Paths after `prefix` (`crate::` or `super::`), each as its `::`-separated words; a brace
/// group (`super::{a, b::C}`) gives one path per member.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for member in group[..end].split(',') {
                out.push(words(member.trim()));
            }
        } else {
            out.push(words(rest));
        }
    }
    out
}

fn words(s: &str) -> Vec<&str> {
    s.split("::")
        .map(|w| {
            let end = w
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(w.len());
            &w[..end]
        })
        .take_while(|w| !w.is_empty())
        .collect()
}

/// The longest module that `base` + `path` names.
fn resolve(modules: &BTreeSet<String>, base: &[&str], path: &[&str]) -> Option<String> {
    let mut full: Vec<&str> = base.to_vec();
    full.extend(path);
    (1..=full.len())
        .rev()
        .map(|k| full[..k].join("::"))
        .find(|m| modules.contains(m))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources();
    let modules: BTreeSet<String> = files.iter().map(|(m, ..)| m.clone()).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _, text) in &files {
        let code = without_tests(text);
        let me: Vec<&str> = module.split("::").filter(|w| !w.is_empty()).collect();
        let parent = &me[..me.len().saturating_sub(1)];
        let mut targets = Vec::new();
        for p in paths_after(code, "crate::") {
            targets.extend(resolve(&modules, &[], &p));
        }
        for p in paths_after(code, "super::") {
            targets.extend(resolve(&modules, parent, &p).or_else(|| Some(parent.join("::"))));
        }
        for t in targets {
            let descendant =
                t == *module || t.starts_with(&format!("{module}::")) || module.is_empty();
            if !descendant && !t.is_empty() {
                edges.entry(module.clone()).or_default().insert(t);
            }
        }
    }
    edges
}

#[test]
fn nothing_below_the_entry_layer_imports_it() {
    let edges = graph();
    let offenders: Vec<String> = edges
        .iter()
        .filter(|(from, _)| !from.starts_with("app") && !from.is_empty())
        .flat_map(|(from, to)| {
            to.iter()
                .filter(|t| t.as_str() == "app" || t.starts_with("app::"))
                .map(move |t| format!("{from} -> {t}"))
        })
        .collect();
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn src_has_no_import_cycle() {
    let edges = graph();
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        state.insert(m.to_owned(), 1);
        path.push(m.to_owned());
        for t in edges.get(m).into_iter().flatten() {
            match state.get(t.as_str()) {
                Some(1) => {
                    let at = path.iter().position(|p| p == t).unwrap();
                    let mut cycle = path[at..].to_vec();
                    cycle.push(t.clone());
                    cycles.push(cycle);
                }
                Some(_) => {}
                None => visit(t, edges, state, path, cycles),
            }
        }
        path.pop();
        state.insert(m.to_owned(), 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for m in edges.keys() {
        if !state.contains_key(m) {
            visit(m, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    let shown: Vec<String> = cycles.iter().map(|c| c.join(" -> ")).collect();
    assert!(shown.is_empty(), "import cycles:\n{}", shown.join("\n"));
}

#[test]
fn files_and_functions_stay_small() {
    let mut long = Vec::new();
    for (_, path, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > MAX_FILE_LINES {
            long.push(format!("{}: {} lines", path.display(), lines.len()));
        }
        // A function starts at a line with `fn name(` and ends at the first later line that
        // closes a brace at the same indentation.
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "async fn ",
                "pub async fn ",
                "pub(crate) async fn ",
                "const fn ",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            let one_line = t.contains('{') && t.ends_with('}');
            if !is_fn || t.ends_with(';') || one_line {
                continue;
            }
            let indent = line.len() - t.len();
            let close = " ".repeat(indent) + "}";
            if let Some(len) = lines[i + 1..].iter().position(|l| *l == close)
                && len + 2 > MAX_FN_LINES
            {
                {
                    long.push(format!(
                        "{}:{}: a function of {} lines",
                        path.display(),
                        i + 1,
                        len + 2
                    ));
                }
            }
        }
    }
    assert!(long.is_empty(), "{long:#?}");
}
