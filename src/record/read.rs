//! Reading raw records back (`results/raw/<id>.jsonl`), streamed: memory is bounded by a few
//! blocks of records, never by the number of records in the file.
//!
//! One thread reads the file in ~1 MB blocks of whole lines and deals them in turn to a few
//! parser threads (at least two, at most four), which deserialize every line; the caller's
//! thread takes the parsed blocks back in the same turn, so it sees every record in file order,
//! while the next blocks are being parsed. The first bad line is an error naming the file and
//! the line (every record before it has been seen); a line over `MAX_RECORD_BYTES` is refused
//! without being held whole; no input makes this panic. One exception: a last line without a
//! newline that stops in the middle of a record (what a crash or a full disk leaves) is skipped
//! and reported as a `TornLine`, so the caller can warn and use every record before it.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::RequestRecord;

/// Longest line a record may take; a longer one is not a llmbench record (and is not held in
/// memory whole).
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// Bytes read from the file at a time.
const BLOCK_BYTES: usize = 1 << 20;
/// Blocks waiting for each parser, and parsed blocks waiting for the consumer, at most (bounds
/// memory whichever side is slower).
const BLOCKS_QUEUED: usize = 1;

#[derive(Debug, thiserror::Error)]
pub enum RecordReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}:{line}: not a llmbench request record: {source}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{}:{line}: a line over {MAX_RECORD_BYTES} bytes is not a llmbench request record", path.display())]
    TooLong { path: PathBuf, line: usize },
}

/// A last line cut short: no newline, and its JSON stops before the record ends. It is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornLine {
    /// Its line number, from 1.
    pub line: usize,
    pub bytes: usize,
}

impl std::fmt::Display for TornLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "its last line ({}, {} bytes, no newline) is cut short, as a crash or a full disk leaves it; skipped, every record before it is used",
            self.line, self.bytes
        )
    }
}

/// Calls `each` with every record of a JSONL file, in file order; a bad line is an error naming
/// file and line. A torn last line is skipped and returned.
pub fn for_each_record(
    path: &Path,
    each: impl FnMut(&RequestRecord),
) -> Result<Option<TornLine>, RecordReadError> {
    let file = File::open(path).map_err(|source| RecordReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_each(file, path, each)
}

/// Every record of a JSONL file, in memory (for small files: prefer `for_each_record`); a torn
/// last line is left out.
pub fn read_records(path: &Path) -> Result<Vec<RequestRecord>, RecordReadError> {
    let mut records = Vec::new();
    for_each_record(path, |r| records.push(r.clone()))?;
    Ok(records)
}

/// Every record from `reader` (`path` names it in errors), in memory; a torn last line is left
/// out.
pub fn parse_records(
    reader: impl Read + Send,
    path: &Path,
) -> Result<Vec<RequestRecord>, RecordReadError> {
    let mut records = Vec::new();
    parse_each(reader, path, |r| records.push(r.clone()))?;
    Ok(records)
}

/// Calls `each` with every record from `reader` (`path` names it in errors), in order, on this
/// thread, while other threads read and deserialize the ones after it. A torn last line is
/// skipped and returned.
pub fn parse_each(
    reader: impl Read + Send,
    path: &Path,
    mut each: impl FnMut(&RequestRecord),
) -> Result<Option<TornLine>, RecordReadError> {
    let parsers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    std::thread::scope(|scope| {
        // Every channel end this thread uses lives inside the scope: if `each` panics, unwinding
        // drops them, each other thread's next send or receive fails and it stops, and the
        // scope's join returns.
        let (spent_tx, spent_rx) = mpsc::channel();
        let mut to_parsers = Vec::new();
        let mut from_parsers = Vec::new();
        for _ in 0..parsers {
            let (block_tx, block_rx) = mpsc::sync_channel(BLOCKS_QUEUED);
            let (parsed_tx, parsed_rx) = mpsc::sync_channel(BLOCKS_QUEUED);
            let (done_tx, done_rx) = mpsc::channel();
            let spent_tx = spent_tx.clone();
            scope.spawn(move || parse_blocks(path, block_rx, parsed_tx, done_rx, spent_tx));
            to_parsers.push(block_tx);
            from_parsers.push((parsed_rx, done_tx));
        }
        drop(spent_tx);
        scope.spawn(move || split_blocks(reader, path, to_parsers, spent_rx));
        // Block k went to parser k % parsers, which answers in the order it received: reading
        // the parsers in turn gives the records in file order.
        let mut lines_before = 0;
        let mut torn = None;
        for block in 0.. {
            let (parsed_rx, done_tx) = &from_parsers[block % parsers];
            let Ok(parsed) = parsed_rx.recv() else {
                return Ok(torn); // the input ended
            };
            parsed.records.iter().for_each(&mut each);
            if let Some(e) = parsed.error {
                return Err(e.after_lines(lines_before));
            }
            if let Some(t) = parsed.torn {
                torn = Some(TornLine {
                    line: t.line + lines_before,
                    ..t
                });
            }
            lines_before += parsed.lines;
            // Handed back to be emptied where the records were allocated.
            let _ = done_tx.send(parsed.records);
        }
        Ok(torn)
    })
}

/// One block's records, or the error that ends the input (line numbers counted from the start
/// of the block).
struct Parsed {
    records: Vec<RequestRecord>,
    /// Lines in the block.
    lines: usize,
    error: Option<RecordReadError>,
    /// The block's last line, torn (only the input's last block can have one).
    torn: Option<TornLine>,
}

impl RecordReadError {
    /// The same error with its line counted after `lines` earlier lines.
    fn after_lines(mut self, lines: usize) -> Self {
        match &mut self {
            Self::Io { .. } => {}
            Self::Parse { line, .. } | Self::TooLong { line, .. } => *line += lines,
        }
        self
    }
}

/// Reads `reader` into blocks of whole lines and deals them to the parsers in turn; a read
/// error, or a line growing past `MAX_RECORD_BYTES`, is dealt as the last block.
fn split_blocks(
    mut reader: impl Read,
    path: &Path,
    parsers: Vec<mpsc::SyncSender<Result<Vec<u8>, RecordReadError>>>,
    spent: mpsc::Receiver<Vec<u8>>,
) {
    let mut turn = parsers.iter().cycle();
    let mut deal = |block| turn.next().is_some_and(|p| p.send(block).is_ok());
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK_BYTES);
    loop {
        let read = match (&mut reader).take(BLOCK_BYTES as u64).read_to_end(&mut buf) {
            Ok(n) => n,
            Err(source) => {
                // The whole lines read before the error come first.
                if let Some(last) = memchr::memrchr(b'\n', &buf) {
                    buf.truncate(last + 1);
                    if !deal(Ok(buf)) {
                        return;
                    }
                }
                deal(Err(RecordReadError::Io {
                    path: path.to_owned(),
                    source,
                }));
                return;
            }
        };
        if read == 0 {
            if buf.len() > MAX_RECORD_BYTES {
                deal(Err(RecordReadError::TooLong {
                    path: path.to_owned(),
                    line: 1,
                }));
            } else if !buf.is_empty() {
                deal(Ok(buf));
            }
            return;
        }
        let Some(last) = memchr::memrchr(b'\n', &buf) else {
            if buf.len() > MAX_RECORD_BYTES {
                deal(Err(RecordReadError::TooLong {
                    path: path.to_owned(),
                    line: 1,
                }));
                return;
            }
            continue;
        };
        // The next block starts with the unfinished line, in a buffer a parser is done with.
        let mut next = spent
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK_BYTES));
        next.clear();
        next.extend_from_slice(&buf[last + 1..]);
        buf.truncate(last + 1);
        if !deal(Ok(std::mem::replace(&mut buf, next))) {
            return;
        }
    }
}

/// Deserializes the blocks dealt to one parser, in order, and passes on their records.
fn parse_blocks(
    path: &Path,
    blocks: mpsc::Receiver<Result<Vec<u8>, RecordReadError>>,
    parsed: mpsc::SyncSender<Parsed>,
    done: mpsc::Receiver<Vec<RequestRecord>>,
    spent: mpsc::Sender<Vec<u8>>,
) {
    for block in blocks {
        let mut records = done.try_recv().unwrap_or_default();
        records.clear();
        let (lines, error, torn) = match block {
            Ok(bytes) => {
                let read = parse_lines(&bytes, path, &mut records);
                let _ = spent.send(bytes);
                read
            }
            Err(e) => (0, Some(e), None),
        };
        let last = error.is_some();
        if parsed
            .send(Parsed {
                records,
                lines,
                error,
                torn,
            })
            .is_err()
            || last
        {
            return;
        }
    }
}

/// Appends the records of a block of lines to `records` until a bad line; returns the number of
/// lines read, the error, if any, and a torn last line (lines counted from the block's start).
fn parse_lines(
    block: &[u8],
    path: &Path,
    records: &mut Vec<RequestRecord>,
) -> (usize, Option<RecordReadError>, Option<TornLine>) {
    let mut line = 0;
    let mut start = 0;
    // Every line ends with a newline except, at the end of the input, the last one.
    let unterminated = block.last().is_some_and(|b| *b != b'\n');
    let ends = memchr::memchr_iter(b'\n', block).chain(unterminated.then_some(block.len()));
    for end in ends {
        line += 1;
        match parse_line(&block[start..end], path, line) {
            Ok(Some(record)) => records.push(record),
            Ok(None) => {}
            // The input's last line, without a newline, ending inside the record: torn.
            Err(RecordReadError::Parse { source, .. })
                if unterminated && end == block.len() && source.is_eof() =>
            {
                let torn = TornLine {
                    line,
                    bytes: end - start,
                };
                return (line, None, Some(torn));
            }
            Err(e) => return (line, Some(e), None),
        }
        start = end + 1;
    }
    (line, None, None)
}

/// The record on line `n` (without its newline); `None` for a blank line.
fn parse_line(
    bytes: &[u8],
    path: &Path,
    n: usize,
) -> Result<Option<RequestRecord>, RecordReadError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(RecordReadError::TooLong {
            path: path.to_owned(),
            line: n,
        });
    }
    let text = bytes.trim_ascii();
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(text)
        .map(Some)
        .map_err(|source| RecordReadError::Parse {
            path: path.to_owned(),
            line: n,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    #[test]
    fn an_endless_line_is_refused_without_holding_it() {
        let endless = std::io::repeat(b'x').take(MAX_RECORD_BYTES as u64 * 2);
        let err = parse_records(endless, Path::new("big.jsonl")).unwrap_err();
        assert!(err.to_string().starts_with("big.jsonl:1:"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_records_or_an_error(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = parse_records(&bytes[..], Path::new("fuzz.jsonl"));
        }

        #[test]
        fn damaged_records_are_an_error_naming_the_line(cut in 0usize..400, flip in 0usize..400, byte in proptest::num::u8::ANY) {
            let mut text = serde_json::to_vec(&sample()).unwrap();
            text.push(b'\n');
            let good = text.len();
            text.extend_from_slice(&text.clone());
            let i = flip % text.len();
            text[i] = byte;
            text.truncate(cut.max(1).min(text.len()) + good / 2);
            match parse_records(&text[..], Path::new("r.jsonl")) {
                Ok(records) => proptest::prop_assert!(records.len() <= 2),
                Err(e) => proptest::prop_assert!(e.to_string().starts_with("r.jsonl:")),
            }
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_reported_anything_else_bad_is_an_error() {
        let (records, text) = lines(3_000);
        let whole = text.len();
        let last_start = text[..whole - 1].iter().rposition(|b| *b == b'\n').unwrap() + 1;
        for cut in [
            last_start + 1,
            last_start + 7,
            (last_start + whole) / 2,
            whole - 2,
        ] {
            let mut seen = 0;
            let torn = parse_each(&text[..cut], Path::new("r.jsonl"), |_| seen += 1).unwrap();
            assert_eq!(seen, 2_999, "{cut}");
            assert_eq!(
                torn,
                Some(TornLine {
                    line: 3_000,
                    bytes: cut - last_start
                })
            );
        }
        // The whole last record without its newline is a record, not torn.
        assert_eq!(
            parse_each(&text[..whole - 1], Path::new("r.jsonl"), |_| {}).unwrap(),
            None
        );
        assert_eq!(
            parse_records(&text[..whole - 1], Path::new("r.jsonl")).unwrap(),
            records
        );
        // Cut short in the middle of the file, or garbage at its end: errors.
        let mut middle = text[..last_start - 10].to_vec();
        middle.push(b'\n');
        middle.extend_from_slice(&text[last_start..]);
        assert!(parse_records(&middle[..], Path::new("r.jsonl")).is_err());
        let mut garbage = text.clone();
        garbage.extend_from_slice(b"{oops");
        assert!(parse_records(&garbage[..], Path::new("r.jsonl")).is_err());
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        let good = serde_json::to_string(&sample()).unwrap();
        std::fs::write(&path, format!("{good}\n{{oops\n")).unwrap();
        let err = read_records(&path).unwrap_err().to_string();
        assert!(err.contains("bad.jsonl:2"), "{err}");
    }

    /// `n` distinct records as JSONL.
    fn lines(n: u64) -> (Vec<RequestRecord>, Vec<u8>) {
        let records: Vec<_> = (0..n)
            .map(|id| RequestRecord::synthetic(id, "p", 0, id * 1000, 500, 100, 64))
            .collect();
        let mut text = Vec::new();
        for r in &records {
            serde_json::to_writer(&mut text, r).unwrap();
            text.push(b'\n');
        }
        (records, text)
    }

    #[test]
    fn records_spanning_many_blocks_and_batches_arrive_whole_and_in_order() {
        let (records, text) = lines(5_000);
        assert!(text.len() > 3 * BLOCK_BYTES && records.len() > 3_000);
        assert_eq!(
            parse_records(&text[..], Path::new("r.jsonl")).unwrap(),
            records
        );
        let mut ids = Vec::new();
        parse_each(&text[..], Path::new("r.jsonl"), |r| ids.push(r.id)).unwrap();
        assert_eq!(ids, (0..5_000).collect::<Vec<_>>());
    }

    #[test]
    fn blank_lines_count_and_a_last_line_needs_no_newline() {
        let (records, text) = lines(3);
        let mut text = text
            .split(|&b| b == b'\n')
            .collect::<Vec<_>>()
            .join(&b"\n \r\n"[..]);
        while text.last().is_some_and(u8::is_ascii_whitespace) {
            text.pop();
        }
        assert_eq!(
            parse_records(&text[..], Path::new("r.jsonl")).unwrap(),
            records
        );
        text.extend_from_slice(b"\n\n{oops");
        let err = parse_records(&text[..], Path::new("r.jsonl")).unwrap_err();
        // Records on lines 1, 3, 5; blank lines 2, 4, 6; the bad one on line 7.
        assert!(err.to_string().starts_with("r.jsonl:7:"), "{err}");
    }

    #[test]
    fn every_record_before_a_bad_line_is_consumed_first() {
        let (_, mut text) = lines(2_000);
        text.extend_from_slice(b"{oops\n");
        text.extend_from_slice(&lines(10).1);
        let mut seen = 0;
        let err = parse_each(&text[..], Path::new("r.jsonl"), |_| seen += 1).unwrap_err();
        assert_eq!(seen, 2_000);
        assert!(err.to_string().starts_with("r.jsonl:2001:"), "{err}");
    }

    #[test]
    fn the_longest_line_allowed_is_max_record_bytes() {
        let mut text = vec![b' '; MAX_RECORD_BYTES];
        text.push(b'\n');
        assert!(
            parse_records(&text[..], Path::new("r.jsonl"))
                .unwrap()
                .is_empty()
        );
        text.insert(0, b' ');
        let err = parse_records(&text[..], Path::new("r.jsonl")).unwrap_err();
        assert!(
            matches!(err, RecordReadError::TooLong { line: 1, .. }),
            "{err}"
        );
    }

    /// Gives `data` a few bytes at a time, then fails.
    struct Failing<'a>(&'a [u8]);

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_ends_the_stream_after_the_whole_lines_before_it() {
        let (_, text) = lines(3_000);
        let mut seen = 0;
        let err = parse_each(Failing(&text), Path::new("r.jsonl"), |_| seen += 1).unwrap_err();
        assert_eq!(seen, 3_000);
        assert!(
            err.to_string()
                .contains("cannot read r.jsonl: disk on fire"),
            "{err}"
        );
    }

    #[test]
    fn a_consumer_that_panics_stops_every_thread() {
        let (_, text) = lines(3_000);
        let panicked = std::panic::catch_unwind(|| {
            let mut seen = 0;
            parse_each(&text[..], Path::new("r.jsonl"), |_| {
                seen += 1;
                assert!(seen < 1_500, "consumer gives up");
            })
        });
        assert!(panicked.is_err());
    }
}
