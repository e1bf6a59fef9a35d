//! Writing the raw records file: one JSON line per record, each written whole or not at all.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use super::RequestRecord;

/// Appends records to a JSONL file, one line each, flushed as written.
pub struct RecordWriter {
    path: PathBuf,
    file: File,
    /// Bytes of whole records in the file.
    pub(super) len: u64,
    line: Vec<u8>,
}

impl RecordWriter {
    /// Creates `path`, failing if it already exists (a run never overwrites another).
    pub fn create_new(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(Self::on(path, file))
    }

    pub(super) fn on(path: &Path, file: File) -> Self {
        Self {
            path: path.to_owned(),
            file,
            len: 0,
            line: Vec::with_capacity(1024),
        }
    }

    /// Writes one record, whole or not at all, and hands it to the operating system (one
    /// write per record). A write that fails part-way (a full disk) is cut back to the last
    /// whole record, so the file stays readable.
    pub fn append(&mut self, record: &RequestRecord) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(io::Error::other)?;
        self.line.push(b'\n');
        match self.file.write_all(&self.line) {
            Ok(()) => {
                self.len += self.line.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(io::SeekFrom::Start(self.len));
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
