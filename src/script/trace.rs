//! Trace replay: `trace(path, #{ format, speed, limit, offset, encoding, ... })` reads a recorded
//! arrival trace and adds a phase that replays it (`plan::Replay`): each line's arrival at its
//! timestamp relative to the first replayed line, divided by `speed`, with the line's input and
//! output lengths (`max_tokens` = the output length). Formats:
//! - `mooncake`: JSONL of `timestamp` (ms), `input_length`, `output_length`, `hash_ids`. The
//!   prompt is synthesised block by block, `block_tokens` (512) tokens per hash id, the last
//!   block possibly partial: the same hash id gives the same text byte for byte, so requests
//!   share exactly the prefixes the trace's cache structure says.
//! - `burstgpt`: CSV with `Timestamp` (s), `Request tokens`, `Response tokens` (and `Model`,
//!   `Total tokens`, `Log Type`, not used); every prompt is its own text.
//! - `jsonl`: JSONL of `timestamp` (ms), `prompt` or `messages`, and `max_tokens` (optional).
//!
//! Synthesised prompts are `blocks::BlockText`: words that are one token each in the named
//! encoding, so a prompt of n words is exactly n tokens. Errors name the file and line.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Engine, Map};

use super::RhaiResult;
use super::blocks::BlockText;
use super::dsl::{Files, Shared, lock};
use super::library::locate_dataset;
use super::opts::Opts;
use super::prompts::content_of;
use super::tokens::Tokens;
use crate::plan::{Arrival, Content, Phase, PromptGenerator, Ramp, Replay, RequestShape};

/// Tokens per hash id in a Mooncake trace.
pub const MOONCAKE_BLOCK_TOKENS: usize = 512;

/// What a trace's line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// A prompt to synthesise: `input` tokens, the first blocks named by `hash_ids`.
    Synth { input: usize, hash_ids: Vec<u64> },
    /// The prompt the trace gives.
    Given(Content),
}

/// One replayed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Timestamp, ms (any origin).
    pub at_ms: f64,
    pub ask: Ask,
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Mooncake,
    BurstGpt,
    Jsonl,
}

impl Format {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "mooncake" => Ok(Self::Mooncake),
            "burstgpt" => Ok(Self::BurstGpt),
            "jsonl" => Ok(Self::Jsonl),
            other => Err(format!(
                "trace: format {other:?} is not known; use \"mooncake\", \"burstgpt\" or \"jsonl\""
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Mooncake => "mooncake",
            Self::BurstGpt => "burstgpt",
            Self::Jsonl => "jsonl",
        }
    }
}

/// Reads the lines of a trace (skipping `offset`, at most `limit`); errors name `file:line`.
pub fn read_lines(
    file: &Path,
    text: &str,
    format: Format,
    offset: usize,
    limit: Option<usize>,
) -> Result<Vec<Line>, String> {
    let at = |n: usize, e: String| format!("trace {}:{n}: {e}", file.display());
    let mut rows = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let header = match format {
        Format::BurstGpt => {
            let (_, h) = rows
                .next()
                .ok_or_else(|| at(1, "the file is empty".into()))?;
            Some(burstgpt_columns(h).map_err(|e| at(1, e))?)
        }
        _ => None,
    };
    let mut out = Vec::new();
    let mut previous: Option<f64> = None;
    for (n, row) in rows.filter(|(_, l)| !l.trim().is_empty()).skip(offset) {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let line = match (format, &header) {
            (Format::BurstGpt, Some(cols)) => burstgpt_line(row, cols),
            (Format::Mooncake, _) => mooncake_line(row),
            _ => jsonl_line(row),
        }
        .map_err(|e| at(n, e))?;
        if previous.is_some_and(|p| line.at_ms < p) {
            return Err(at(
                n,
                "timestamps go back in time; sort the trace by timestamp".into(),
            ));
        }
        previous = Some(line.at_ms);
        out.push(line);
    }
    if out.is_empty() {
        return Err(format!(
            "trace {}: no line to replay (check offset and limit)",
            file.display()
        ));
    }
    Ok(out)
}

fn json_row(row: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(row) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err("a line must be a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

fn number(m: &serde_json::Map<String, serde_json::Value>, key: &str) -> Result<f64, String> {
    m.get(key)
        .and_then(|v| v.as_f64())
        .filter(|x| x.is_finite() && *x >= 0.0)
        .ok_or_else(|| format!("{key:?} must be a number of 0 or more"))
}

fn count(x: f64, key: &str) -> Result<u32, String> {
    if x.fract() != 0.0 || x > u32::MAX as f64 {
        return Err(format!("{key:?} must be a whole number"));
    }
    Ok(x as u32)
}

fn mooncake_line(row: &str) -> Result<Line, String> {
    let m = json_row(row)?;
    let input = count(number(&m, "input_length")?, "input_length")? as usize;
    let output = count(number(&m, "output_length")?, "output_length")?;
    let hash_ids = match m.get("hash_ids") {
        None => Vec::new(),
        Some(serde_json::Value::Array(ids)) => ids
            .iter()
            .map(|v| v.as_u64().ok_or("\"hash_ids\" must hold whole numbers"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("\"hash_ids\" must be a list of whole numbers".into()),
    };
    Ok(Line {
        at_ms: number(&m, "timestamp")?,
        ask: Ask::Synth { input, hash_ids },
        max_tokens: Some(output),
    })
}

fn jsonl_line(row: &str) -> Result<Line, String> {
    let m = json_row(row)?;
    let value = match (m.get("prompt"), m.get("messages")) {
        (Some(p), None) => p.clone(),
        (None, Some(msgs)) => msgs.clone(),
        _ => return Err("give one of \"prompt\" (a string) or \"messages\"".into()),
    };
    let dynamic = rhai::serde::to_dynamic(&value).map_err(|e| e.to_string())?;
    let content = content_of(dynamic)?;
    let max_tokens = match m.get("max_tokens") {
        None => None,
        Some(_) => Some(count(number(&m, "max_tokens")?, "max_tokens")?),
    };
    Ok(Line {
        at_ms: number(&m, "timestamp")?,
        ask: Ask::Given(content),
        max_tokens,
    })
}

/// Column positions of `Timestamp`, `Request tokens` and `Response tokens`.
fn burstgpt_columns(header: &str) -> Result<[usize; 3], String> {
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let find = |name: &str| {
        cols.iter().position(|c| *c == name).ok_or_else(|| {
            format!("the header has no {name:?} column (BurstGPT: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type)")
        })
    };
    Ok([
        find("Timestamp")?,
        find("Request tokens")?,
        find("Response tokens")?,
    ])
}

fn burstgpt_line(row: &str, [ts, req, resp]: &[usize; 3]) -> Result<Line, String> {
    let cells: Vec<&str> = row.split(',').map(str::trim).collect();
    let cell = |i: usize, name: &str| -> Result<f64, String> {
        cells
            .get(i)
            .and_then(|c| c.parse::<f64>().ok())
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("{name:?} must be a number of 0 or more"))
    };
    Ok(Line {
        at_ms: cell(*ts, "Timestamp")? * 1000.0,
        ask: Ask::Synth {
            input: count(cell(*req, "Request tokens")?, "Request tokens")? as usize,
            hash_ids: Vec::new(),
        },
        // BurstGPT logs failed requests with 0 response tokens: ask for one.
        max_tokens: Some(count(cell(*resp, "Response tokens")?, "Response tokens")?.max(1)),
    })
}

/// The replayed requests: line k's prompt and `max_tokens` for request k of the phase.
pub struct TracePrompts {
    lines: Vec<Line>,
    /// A hash id's block of text, and each request's own words past its blocks.
    text: BlockText,
    source: String,
}

impl TracePrompts {
    pub fn new(
        lines: Vec<Line>,
        tok: &dyn Tokens,
        block: usize,
        seed: u64,
        source: String,
    ) -> Result<Self, String> {
        Ok(Self {
            lines,
            text: BlockText::new(tok, block, seed, "trace")?,
            source,
        })
    }

    /// Request `index`'s prompt of `input` tokens: a block per hash id (the same id, the same
    /// text), then words of its own past the last block.
    pub fn synthesize(&self, index: u64, input: usize, hash_ids: &[u64]) -> String {
        self.text.synthesize(index, input, hash_ids)
    }
}

impl PromptGenerator for TracePrompts {
    fn shape(&self, index: u64) -> Result<RequestShape, String> {
        let line = &self.lines[(index % self.lines.len() as u64) as usize];
        let content = match &line.ask {
            Ask::Given(c) => c.clone(),
            Ask::Synth { input, hash_ids } => {
                Content::Text(self.synthesize(index, *input, hash_ids))
            }
        };
        Ok(RequestShape {
            max_tokens: line.max_tokens,
            ..RequestShape::from(content)
        })
    }

    fn describe(&self) -> String {
        self.source.clone()
    }
}

/// Arrival offsets: each line's timestamp after the first's, divided by `speed`.
pub fn offsets(lines: &[Line], speed: f64) -> Vec<Duration> {
    let first = lines[0].at_ms;
    lines
        .iter()
        .map(|l| Duration::from_secs_f64((l.at_ms - first) / speed / 1000.0))
        .collect()
}

/// Registers `trace(path, #{...})`.
pub fn register(engine: &mut Engine, draft: &Shared, files: &Files) {
    let (d, files) = (draft.clone(), files.clone());
    engine.register_fn("trace", move |path: &str, map: Map| -> RhaiResult<()> {
        let phase = trace_phase(path, map, &files, lock(&d).phase_count())?;
        lock(&d).add_phase(phase)?;
        Ok(())
    });
}

fn trace_phase(path: &str, map: Map, files: &Files, index: usize) -> RhaiResult<Phase> {
    let mut o = Opts::new(
        "trace",
        map,
        &[
            "format",
            "speed",
            "limit",
            "offset",
            "encoding",
            "block_tokens",
            "seed",
            "name",
            "concurrency",
            "warmup",
            "cancel",
        ],
    )?;
    let cancel = super::phases::cancel_option(&mut o, "trace", index as u64)?;
    let format = match o.string("format")? {
        Some(f) => Format::parse(&f)?,
        None if path.ends_with(".csv") => Format::BurstGpt,
        None => {
            return Err("trace: give the format: \"mooncake\", \"burstgpt\" or \"jsonl\"".into());
        }
    };
    let speed = o.positive("speed")?.unwrap_or(1.0);
    let seed = o.count("seed")?.unwrap_or(0);
    let limit = o.count("limit")?.map(|n| n as usize);
    let offset = o.count("offset")?.unwrap_or(0) as usize;
    let encoding = o
        .string("encoding")?
        .unwrap_or_else(|| "cl100k_base".into());
    let block = o
        .count("block_tokens")?
        .map_or(MOONCAKE_BLOCK_TOKENS, |n| n.max(1) as usize);
    let file = locate_dataset(&files.base, path).map_err(|e| format!("trace {e}"))?;
    let text = super::budget::untracked(|| std::fs::read_to_string(&file))
        .map_err(|e| format!("trace {}: cannot read it: {e}", file.display()))?;
    let lines = super::budget::untracked(|| read_lines(&file, &text, format, offset, limit))?;
    let source = format!("trace {path} ({}, speed {speed})", format.name());
    let tok = files.tokens.get(&encoding)?;
    let offsets = offsets(&lines, speed);
    let n = lines.len() as u64;
    let span = offsets.last().copied().unwrap_or_default().as_secs_f64();
    let requests =
        super::budget::untracked(|| TracePrompts::new(lines, &*tok, block, seed, source.clone()))?;
    let concurrency = o
        .count("concurrency")?
        .map(|c| c.clamp(1, u32::MAX as u64) as u32);
    Ok(Phase {
        name: o.string("name")?.unwrap_or_else(|| "trace".into()),
        duration: None,
        requests: Some(n),
        // The trace's mean rate (its offsets set the arrivals).
        rate: Some(if span > 0.0 {
            n as f64 / span
        } else {
            n as f64
        }),
        concurrency,
        arrival: Arrival::Constant,
        seed: index as u64,
        warmup: o.bool("warmup")?.unwrap_or(false),
        ramp: Ramp::default(),
        sweep: None,
        replay: Some(Replay {
            source,
            offsets: offsets.into(),
            requests: Arc::new(requests),
        }),
        cancel,
    })
}
