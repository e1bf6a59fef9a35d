//! Run metadata: what a run was (script, target, model, phases, host, versions), written to
//! `results/runs/<id>.json` beside the records it describes and read back by `parse` and
//! `report`.

use serde::{Deserialize, Serialize};

/// What a run was, for the report header and the run metadata (`results/runs/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: String,
    pub workload: String,
    pub script: String,
    pub target: String,
    pub base_url: String,
    pub model: String,
    pub endpoint: String,
    pub stream: bool,
    /// The target was the built-in mock server.
    pub mock: bool,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub wall_s: f64,
    pub interrupted: bool,
    pub llmbench_version: String,
    pub host: String,
    /// One line per phase, e.g. `steady: 5 req/s constant, concurrency 10, 300 s`.
    pub phases: Vec<String>,
    /// `max_tokens` sent with every request.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Every request carried the same prompt text.
    #[serde(default)]
    pub fixed_prompt: bool,
    /// The run is one trial of a `--repeat` set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    /// What the user said the run is (`--label KEY=VALUE`, `label(...)`): server version, GPU,
    /// config name, git sha. Reports and `compare` name and group runs by them.
    #[serde(default)]
    pub labels: Labels,
    /// Wall-clock time of the run clock's origin, µs since the Unix epoch: the anchor a merge
    /// aligns shards' clocks on. Absent in older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_anchor_unix_us: Option<i64>,
    /// This run is one shard of a sharded run (`--shard I/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRun>,
    /// This run is a merge of shard runs (`llmbench merge`): each shard, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRun>,
}

/// One shard of a sharded run, as its run metadata records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRun {
    /// 0-based shard index, of `count`.
    pub index: u32,
    pub count: u32,
    /// The shard's own run id.
    pub run_id: String,
    /// Identifies the plan every shard of one run shares (a hash of the plan, labels aside):
    /// `merge` refuses shards of different plans.
    pub plan: String,
    /// Wall-clock time of the shard's run clock origin, µs since the Unix epoch.
    pub clock_anchor_unix_us: i64,
    /// The common start it waited for (`--start-at`), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// How late its first phase started after `start_at`, ms (0 when on time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<f64>,
    /// The kernel's own estimate of this host's wall-clock error when the shard started, where
    /// the clock is synchronized (NTP, chrony, PTP): the anchor is good to about this much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_error: Option<crate::host::ClockError>,
}

/// A run's labels, by key.
pub type Labels = std::collections::BTreeMap<String, String>;

/// The most characters of a label's value (a key is at most 64).
pub const LABEL_VALUE_MAX: usize = 200;

/// Checks one label: a key of letters, digits, `_`, `-` and `.` (at most 64), and a value of at
/// most `LABEL_VALUE_MAX` characters with no control characters and no `|` (it would break the
/// Markdown tables that show it).
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    let key_ok = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !key_ok {
        return Err(format!(
            "label key {key:?}: use 1 to 64 letters, digits, '_', '-' or '.' (e.g. gpu=H100)"
        ));
    }
    if value.chars().count() > LABEL_VALUE_MAX || value.chars().any(|c| c.is_control() || c == '|')
    {
        return Err(format!(
            "label {key}: the value must be at most {LABEL_VALUE_MAX} characters, without '|' or control characters"
        ));
    }
    Ok(())
}

/// `KEY=VALUE`, as `--label` takes it.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("label {text:?}: write KEY=VALUE, e.g. --label server=vllm-0.11"))?;
    let (key, value) = (key.trim(), value.trim());
    check_label(key, value)?;
    Ok((key.to_owned(), value.to_owned()))
}

/// `k=v k2=v2`, for one line of text (empty without labels).
pub fn labels_line(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Which trial of which set a run is (`--repeat N`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trial {
    /// The set's id, shared by its trials: `trials_<UTC time>_<workload>`.
    pub set: String,
    /// 1-based.
    pub index: u32,
    pub of: u32,
}

impl RunInfo {
    /// A run with this id and nothing else known: every text is `unknown`.
    pub fn placeholder(id: &str, unknown: &str) -> Self {
        Self {
            id: id.into(),
            workload: unknown.into(),
            script: unknown.into(),
            target: unknown.into(),
            base_url: unknown.into(),
            model: unknown.into(),
            endpoint: unknown.into(),
            stream: true,
            mock: false,
            started_at: unknown.into(),
            wall_s: 0.0,
            interrupted: false,
            llmbench_version: env!("CARGO_PKG_VERSION").into(),
            host: unknown.into(),
            phases: Vec::new(),
            max_tokens: None,
            fixed_prompt: false,
            trial: None,
            labels: Labels::new(),
            clock_anchor_unix_us: None,
            shard: None,
            shards: Vec::new(),
        }
    }

    /// What the plan asked of each request, for the warnings.
    pub fn requested(&self) -> Requested {
        Requested {
            max_tokens: self.max_tokens,
            fixed_prompt: self.fixed_prompt,
        }
    }
}

/// What the plan asked of every request, for the warnings that compare it with what happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requested {
    /// `max_tokens` sent with each request.
    pub max_tokens: Option<u32>,
    /// Every request carried the same prompt text.
    pub fixed_prompt: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_from_key_value_and_bad_ones_say_how_to_write_them() {
        assert_eq!(
            parse_label("server=vllm 0.11 (tp=2)").unwrap(),
            ("server".into(), "vllm 0.11 (tp=2)".into())
        );
        assert_eq!(parse_label("sha=").unwrap(), ("sha".into(), String::new()));
        for bad in [
            "novalue",
            "=x",
            "a b=c",
            "k=\u{7}",
            "k=a|b",
            &format!("k={}", "x".repeat(201)),
        ] {
            let e = parse_label(bad).unwrap_err();
            assert!(e.contains("label"), "{bad}: {e}");
        }
        assert!(parse_label("novalue").unwrap_err().contains("KEY=VALUE"));
    }
}
