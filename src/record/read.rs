//! Reading raw records back (`results/raw/<id>.jsonl`), streamed: memory is bounded by a few
//! batches of records, never by the number of records in the file.
//!
//! A reader thread reads the file in large blocks, splits them into lines and deserializes each
//! line; it hands the records over in batches, in file order, to the caller's thread, which
//! consumes them (on two cores, parsing and the caller's work overlap). The first bad line is
//! an error naming the file and the line (every line before it has been consumed); a line over
//! `MAX_RECORD_BYTES` is refused without being held whole; no input makes this panic.

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
/// Records handed to the consumer at a time.
const BATCH_RECORDS: usize = 512;
/// Full batches waiting for the consumer at most (bounds memory when the consumer is slower).
const BATCHES_QUEUED: usize = 4;

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

/// Calls `each` with every record of a JSONL file, in file order; a bad line is an error naming
/// file and line.
pub fn for_each_record(
    path: &Path,
    each: impl FnMut(&RequestRecord),
) -> Result<(), RecordReadError> {
    let file = File::open(path).map_err(|source| RecordReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_each(file, path, each)
}

/// Every record of a JSONL file, in memory (for small files: prefer `for_each_record`).
pub fn read_records(path: &Path) -> Result<Vec<RequestRecord>, RecordReadError> {
    let mut records = Vec::new();
    for_each_record(path, |r| records.push(r.clone()))?;
    Ok(records)
}

/// Every record from `reader` (`path` names it in errors), in memory.
pub fn parse_records(
    reader: impl Read + Send,
    path: &Path,
) -> Result<Vec<RequestRecord>, RecordReadError> {
    let mut records = Vec::new();
    parse_each(reader, path, |r| records.push(r.clone()))?;
    Ok(records)
}

/// Calls `each` with every record from `reader` (`path` names it in errors), in order, on this
/// thread, while another thread reads and deserializes the ones after it.
pub fn parse_each(
    reader: impl Read + Send,
    path: &Path,
    mut each: impl FnMut(&RequestRecord),
) -> Result<(), RecordReadError> {
    std::thread::scope(|scope| {
        // Declared inside the scope: if `each` panics, unwinding drops the receivers first, so
        // the reader's next send fails and it stops instead of blocking the scope's join.
        let (full_tx, full_rx) = mpsc::sync_channel(BATCHES_QUEUED);
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<RequestRecord>>();
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH_RECORDS);
            let hand_over = |batch: &mut Vec<RequestRecord>| {
                // A batch the consumer is done with is reused: its records are dropped here,
                // on the thread that allocated them.
                let mut next = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BATCH_RECORDS));
                next.clear();
                full_tx.send(Ok(std::mem::replace(batch, next))).is_ok()
            };
            let read = parse_lines(reader, path, |record| {
                batch.push(record);
                batch.len() < BATCH_RECORDS || hand_over(&mut batch)
            });
            if !batch.is_empty() {
                hand_over(&mut batch);
            }
            if let Err(e) = read {
                let _ = full_tx.send(Err(e));
            }
        });
        for message in full_rx {
            let batch = message?;
            batch.iter().for_each(&mut each);
            let _ = empty_tx.send(batch);
        }
        Ok(())
    })
}

/// Reads `reader` block by block and passes each record to `sink` until the input ends, a line
/// is bad, or `sink` returns false.
fn parse_lines(
    mut reader: impl Read,
    path: &Path,
    mut sink: impl FnMut(RequestRecord) -> bool,
) -> Result<(), RecordReadError> {
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK_BYTES);
    let mut line = 0usize;
    loop {
        let read = (&mut reader)
            .take(BLOCK_BYTES as u64)
            .read_to_end(&mut buf)
            .map_err(|source| RecordReadError::Io {
                path: path.to_owned(),
                source,
            })?;
        let at_end = read == 0;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf) {
            line += 1;
            if let Some(record) = parse_line(&buf[start..nl], path, line)?
                && !sink(record)
            {
                return Ok(());
            }
            start = nl + 1;
        }
        // What is left is the start of a line (or, at the end, a last line with no newline).
        let rest = buf.len() - start;
        if rest > MAX_RECORD_BYTES {
            return Err(RecordReadError::TooLong {
                path: path.to_owned(),
                line: line + 1,
            });
        }
        if at_end {
            if rest > 0 {
                if let Some(record) = parse_line(&buf[start..], path, line + 1)? {
                    sink(record);
                }
            }
            return Ok(());
        }
        buf.copy_within(start.., 0);
        buf.truncate(rest);
    }
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
        assert!(text.len() > 3 * BLOCK_BYTES && records.len() > 3 * BATCH_RECORDS);
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
}
