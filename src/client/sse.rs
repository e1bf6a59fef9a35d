//! A pure, incremental Server-Sent Events parser: bytes in, events out, in any split.
//!
//! Follows the SSE rules that matter to OpenAI-style streams: lines end in LF, CRLF or CR (even
//! when a CRLF is split across reads); `data:` with or without the space; several `data:` lines
//! join with a newline; lines starting with `:` are comments (keep-alives); a blank line ends an
//! event. At the end of input, a pending event is still delivered (lenient: some servers close
//! without the final blank line).

/// Longest line the parser holds (a chunk of one token is a few hundred bytes).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Largest event (all its `data:` lines together).
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// The input broke a size limit; the parser keeps nothing more and reports this on every feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("SSE line longer than {MAX_LINE_BYTES} bytes without a line end")]
    LineTooLong,
    #[error("SSE event larger than {MAX_EVENT_BYTES} bytes")]
    EventTooLarge,
}

/// One complete event. `data` borrows the parser's buffer until the callback returns.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, if the server named one.
    pub event: Option<&'a str>,
    pub data: &'a [u8],
}

/// Incremental parser; feed it network reads as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    /// The last byte seen was CR: a following LF belongs to the same line end.
    after_cr: bool,
    /// Comment lines seen (keep-alives).
    pub comments: u64,
    /// A size limit was broken; nothing more is parsed.
    failed: Option<SseError>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `bytes`, calling `on_event` for each event they complete. Memory stays bounded:
    /// a line or event over the limits is an error, and the parser stops there.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>),
    ) -> Result<(), SseError> {
        while !bytes.is_empty() {
            if let Some(e) = self.failed {
                return Err(e);
            }
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    if self.line.len() + end > MAX_LINE_BYTES {
                        return self.fail(SseError::LineTooLong);
                    }
                    self.line.extend_from_slice(&bytes[..end]);
                    self.after_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                    self.end_line(&mut on_event);
                }
                None => {
                    if self.line.len() + bytes.len() > MAX_LINE_BYTES {
                        return self.fail(SseError::LineTooLong);
                    }
                    self.line.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
        }
        match self.failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Bytes held for an unfinished line and event (bounded by the limits).
    pub fn buffered(&self) -> usize {
        self.line.len() + self.data.len() + self.event.as_ref().map_or(0, String::len)
    }

    fn fail(&mut self, e: SseError) -> Result<(), SseError> {
        self.failed = Some(e);
        self.line = Vec::new();
        self.data = Vec::new();
        self.has_data = false;
        Err(e)
    }

    /// Ends the input: a last line without its terminator, and a pending event, still count.
    pub fn finish(&mut self, mut on_event: impl FnMut(SseEvent<'_>)) {
        if self.failed.is_some() {
            return;
        }
        if !self.line.is_empty() {
            self.end_line(&mut on_event);
        }
        self.dispatch(&mut on_event);
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(SseEvent<'_>)) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(on_event);
        } else if line[0] == b':' {
            self.comments += 1;
        } else {
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (&line[..], &b""[..]),
            };
            match field {
                b"data" => {
                    if self.data.len() + value.len() + 1 > MAX_EVENT_BYTES {
                        self.failed = Some(SseError::EventTooLarge);
                        self.data = Vec::new();
                        self.has_data = false;
                        self.line = Vec::new();
                        return;
                    }
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(value);
                    self.has_data = true;
                }
                b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
                _ => {} // id, retry and unknown fields do not matter here
            }
        }
        // Keep the line's allocation for the next line.
        self.line = line;
        self.line.clear();
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent<'_>)) {
        if self.has_data {
            on_event(SseEvent {
                event: self.event.as_deref(),
                data: &self.data,
            });
        }
        self.data.clear();
        self.has_data = false;
        self.event = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<(Option<String>, String)> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut push = |e: SseEvent<'_>| {
            out.push((
                e.event.map(str::to_owned),
                String::from_utf8(e.data.to_vec()).unwrap(),
            ))
        };
        for chunk in input.chunks(piece.max(1)) {
            p.feed(chunk, &mut push).unwrap();
        }
        p.finish(&mut push);
        out
    }

    fn data(events: &[(Option<String>, String)]) -> Vec<&str> {
        events.iter().map(|(_, d)| d.as_str()).collect()
    }

    #[test]
    fn splits_events_on_blank_lines_in_any_read_size() {
        let input = b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n";
        for piece in 1..input.len() {
            assert_eq!(
                data(&parse_in_pieces(input, piece)),
                vec!["{\"a\":1}", "{\"a\":2}", "[DONE]"],
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn handles_crlf_and_cr_even_when_split() {
        let input = b"data: one\r\n\r\ndata: two\r\rdata:three\n\n";
        for piece in 1..input.len() {
            assert_eq!(
                data(&parse_in_pieces(input, piece)),
                vec!["one", "two", "three"]
            );
        }
    }

    #[test]
    fn data_without_space_comments_and_multiline() {
        let input = b": keep-alive\n\ndata:x\ndata: y\n\n:ping\nevent: error\ndata: {}\n\n";
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(input, |e| {
            out.push((
                e.event.map(str::to_owned),
                String::from_utf8(e.data.to_vec()).unwrap(),
            ))
        })
        .unwrap();
        assert_eq!(
            out,
            vec![
                (None, "x\ny".to_string()),
                (Some("error".into()), "{}".to_string())
            ]
        );
        assert_eq!(p.comments, 2);
    }

    #[test]
    fn a_pending_event_is_delivered_at_the_end() {
        assert_eq!(data(&parse_in_pieces(b"data: last", 3)), vec!["last"]);
        assert_eq!(parse_in_pieces(b"", 1), vec![]);
        assert_eq!(parse_in_pieces(b"\n\n\n", 1), vec![]);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let mut seed = 0x2545F4914F6CDD1D_u64;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b"data: \r\n:x{}"[(seed % 12) as usize]
                })
                .collect();
            parse_in_pieces(&bytes, (seed % 7) as usize + 1);
        }
    }

    #[test]
    fn an_endless_line_or_event_is_an_error_not_a_growing_buffer() {
        let mut p = SseParser::new();
        let block = vec![b'a'; 64 * 1024];
        let mut result = Ok(());
        for _ in 0..40 {
            result = p.feed(&block, |_| {});
            assert!(p.buffered() <= MAX_LINE_BYTES);
        }
        assert_eq!(result, Err(SseError::LineTooLong));
        assert_eq!(p.buffered(), 0);

        let mut p = SseParser::new();
        let mut line = b"data: ".to_vec();
        line.extend(vec![b'x'; 512 * 1024]);
        line.push(b'\n');
        let mut result = Ok(());
        for _ in 0..12 {
            result = p.feed(&line, |_| panic!("no event is complete"));
            assert!(p.buffered() <= MAX_EVENT_BYTES + MAX_LINE_BYTES);
        }
        assert_eq!(result, Err(SseError::EventTooLarge));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_in_any_pieces_never_panic(
            bytes in proptest::collection::vec(proptest::sample::select(b"data: \r\n:{}[]\"DONE event x".to_vec()), 0..512),
            piece in 1usize..64,
        ) {
            let mut p = SseParser::new();
            for chunk in bytes.chunks(piece) {
                let _ = p.feed(chunk, |e| {
                    let _ = crate::client::chunk::parse_stream_data(e.data);
                });
            }
            p.finish(|e| {
                let _ = crate::client::chunk::parse_stream_data(e.data);
            });
        }

        #[test]
        fn events_do_not_depend_on_how_the_input_is_split(
            datas in proptest::collection::vec("[a-z{}\\[\\] ]{0,20}", 0..8),
            piece in 1usize..32,
            crlf in proptest::bool::ANY,
        ) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let input: String = datas.iter().map(|d| format!("data: {d}{nl}{nl}")).collect();
            let whole = parse_in_pieces(input.as_bytes(), input.len().max(1));
            let split = parse_in_pieces(input.as_bytes(), piece);
            proptest::prop_assert_eq!(&whole, &split);
            let want: Vec<&str> = datas.iter().map(String::as_str).collect();
            proptest::prop_assert_eq!(data(&whole), want);
        }
    }
}
