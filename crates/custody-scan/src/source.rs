//! Where a pickle stream's bytes come from: a slice in memory, or a file read by position.
//!
//! [`crate::scan_path`] reads a large pickle through an [`Input`] over the file instead of
//! reading the whole file: the opcode stream goes through a window of [`WINDOW`] bytes, a
//! payload (`BINBYTES8`, `BINUNICODE8`, joblib array bytes...) is skipped by moving the position
//! past it, and only the payload bytes a check needs are read (the first bytes of a constant,
//! a `str` to validate as UTF-8 in chunks, a loader's argument). Positions are always relative
//! to the stream, so a walk reports the same offsets whatever backs it.
//!
//! A read that fails or comes back short (the file shrank while it was scanned) is remembered
//! by the [`FileSrc`]; the walk then sees truncated data, and `scan_path` returns the error
//! instead of the report.

use std::borrow::Cow;
use std::cell::Cell;
use std::fs::File;

/// Bytes read from a file at a time for the opcode stream (and for chunked UTF-8 checks).
pub(crate) const WINDOW: usize = 256 << 10;

/// An open file read by position, with the first error any read met.
pub(crate) struct FileSrc {
    file: File,
    len: u64,
    /// Bytes per window read (smaller in tests, to exercise every boundary).
    window: usize,
    error: Cell<Option<std::io::Error>>,
}

impl FileSrc {
    /// `len` is the length the file had when opened: bytes beyond it are never read.
    pub(crate) fn new(file: File, len: u64, window: usize) -> Self {
        FileSrc { file, len, window: window.max(1), error: Cell::new(None) }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Fill `buf` from `offset`. False (the error kept) if the file could not give every byte.
    /// Bytes beyond the length the file had when opened are never asked for, and not an
    /// error: just false.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> bool {
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.len) {
            return false;
        }
        match read_exact_at(&self.file, buf, offset) {
            Ok(()) => true,
            Err(e) => {
                let first = self.error.take();
                self.error.set(Some(first.unwrap_or(e)));
                false
            }
        }
    }

    /// `n` bytes from `offset`, or `None` (the error kept).
    pub(crate) fn read_vec(&self, offset: u64, n: usize) -> Option<Vec<u8>> {
        if offset.checked_add(n as u64).is_none_or(|end| end > self.len) {
            return None;
        }
        let mut buf = vec![0; n];
        self.read_exact_at(&mut buf, offset).then_some(buf)
    }

    /// Bytes per window read.
    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// The first error a read met, if any.
    pub(crate) fn take_error(&self) -> Option<std::io::Error> {
        self.error.take()
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// A stream of `len` bytes that a pickle walk reads.
pub(crate) struct Input<'a> {
    len: usize,
    store: Store<'a>,
}

enum Store<'a> {
    Mem(&'a [u8]),
    /// Stream position `p` is file offset `origin + p`; `buf` holds positions `start..`.
    File {
        src: &'a FileSrc,
        origin: u64,
        buf: Vec<u8>,
        start: usize,
    },
}

impl<'a> Input<'a> {
    pub(crate) fn mem(data: &'a [u8]) -> Self {
        Input { len: data.len(), store: Store::Mem(data) }
    }

    /// The `len` bytes of `src` from file offset `origin`.
    pub(crate) fn file(src: &'a FileSrc, origin: u64, len: usize) -> Self {
        Input { len, store: Store::File { src, origin, buf: Vec::new(), start: 0 } }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Positions `start..start + len` as a stream of their own (clamped to this one).
    pub(crate) fn sub(&self, start: usize, len: usize) -> Input<'a> {
        let start = start.min(self.len);
        let len = len.min(self.len - start);
        match &self.store {
            Store::Mem(d) => Input::mem(d.get(start..start + len).unwrap_or_default()),
            Store::File { src, origin, .. } => Input::file(src, origin + start as u64, len),
        }
    }

    /// The same stream with a window of its own (for a walk nested in another's stream).
    pub(crate) fn fresh(&self) -> Input<'a> {
        self.sub(0, self.len)
    }

    /// The bytes at `pos..pos + n`, through the window (which is moved if it must be).
    pub(crate) fn bytes(&mut self, pos: usize, n: usize) -> Option<&[u8]> {
        let end = pos.checked_add(n).filter(|&e| e <= self.len)?;
        match &mut self.store {
            Store::Mem(d) => d.get(pos..end),
            Store::File { src, origin, buf, start } => {
                if pos < *start || end > *start + buf.len() {
                    let want = n.max(src.window).min(self.len - pos);
                    if buf.capacity() > 4 * want.max(src.window) {
                        // A long line grew the window once: don't keep that memory for good.
                        *buf = Vec::new();
                    }
                    buf.clear();
                    buf.resize(want, 0);
                    *start = pos;
                    if !src.read_exact_at(buf, *origin + pos as u64) {
                        buf.clear();
                        return None;
                    }
                }
                buf.get(pos - *start..end - *start)
            }
        }
    }

    /// Length of the line at `pos` (without its newline), which the window then holds; `None`
    /// if no newline follows.
    pub(crate) fn line(&mut self, pos: usize) -> Option<usize> {
        match &mut self.store {
            Store::Mem(d) => d.get(pos..)?.iter().position(|&b| b == b'\n'),
            Store::File { .. } => self.file_line(pos),
        }
    }

    fn file_line(&mut self, pos: usize) -> Option<usize> {
        self.bytes(pos, 1)?;
        let len = self.len;
        let Store::File { src, origin, buf, start } = &mut self.store else { return None };
        let mut searched = pos - *start;
        loop {
            if let Some(i) = buf[searched..].iter().position(|&b| b == b'\n') {
                return Some(searched + i - (pos - *start));
            }
            searched = buf.len();
            let have_end = *start + buf.len();
            if have_end >= len {
                return None;
            }
            // Long lines grow the window (protocol-0 strings can be as long as the file).
            let more = buf.len().max(src.window).min(len - have_end);
            buf.resize(searched + more, 0);
            if !src.read_exact_at(&mut buf[searched..], *origin + have_end as u64) {
                buf.clear();
                return None;
            }
        }
    }

    /// The bytes at `pos..pos + n` if the window holds them (as it does a line just found by
    /// [`Input::line`]); empty otherwise.
    pub(crate) fn held(&self, pos: usize, n: usize) -> &[u8] {
        self.in_memory(pos, n).unwrap_or_default()
    }

    /// The bytes at `pos..pos + n` if they are in memory (always, for a slice).
    pub(crate) fn in_memory(&self, pos: usize, n: usize) -> Option<&[u8]> {
        let end = pos.checked_add(n)?;
        match &self.store {
            Store::Mem(d) => d.get(pos..end),
            Store::File { buf, start, .. } => buf.get(pos.checked_sub(*start)?..end - *start),
        }
    }

    /// The bytes at `pos..pos + n` without moving the window: borrowed when in memory, read
    /// otherwise. `None` if out of range or unreadable.
    pub(crate) fn span(&self, pos: usize, n: usize) -> Option<Cow<'_, [u8]>> {
        let end = pos.checked_add(n).filter(|&e| e <= self.len)?;
        match &self.store {
            Store::Mem(d) => d.get(pos..end).map(Cow::Borrowed),
            Store::File { src, origin, buf, start } => {
                if pos >= *start && end <= *start + buf.len() {
                    return buf.get(pos - *start..end - *start).map(Cow::Borrowed);
                }
                src.read_vec(*origin + pos as u64, n).map(Cow::Owned)
            }
        }
    }

    /// Feed the bytes at `pos..pos + n` to `f` in pieces of at most a window, in order, until
    /// `f` returns false. False if they could not all be read.
    pub(crate) fn for_each_chunk(&self, pos: usize, n: usize, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        let step = match &self.store {
            Store::Mem(_) => n.max(1),
            Store::File { src, .. } => src.window,
        };
        let mut at = pos;
        let end = pos.saturating_add(n);
        while at < end {
            let take = step.min(end - at);
            let Some(chunk) = self.span(at, take) else { return false };
            if !f(&chunk) {
                return true;
            }
            at += take;
        }
        true
    }
}

/// Whether bytes are valid for CPython's `utf-8` decoder with `surrogatepass` (encoded
/// surrogates `ED A0..BF 80..BF` allowed), fed in pieces.
#[derive(Default)]
pub(crate) struct SurrogatepassUtf8 {
    /// Raw bytes held back: a possible surrogate that a piece boundary cuts (at most 2).
    pending: Vec<u8>,
    /// Bytes with surrogates replaced, not yet validated (an incomplete character's start).
    out: Vec<u8>,
    invalid: bool,
}

impl SurrogatepassUtf8 {
    /// Take the next piece. Returns false once the bytes are known to be invalid.
    pub(crate) fn feed(&mut self, piece: &[u8]) -> bool {
        if self.invalid {
            return false;
        }
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(piece);
        let mut i = 0;
        while let Some(j) = data[i..].iter().position(|&b| b == 0xed) {
            let at = i + j;
            self.out.extend_from_slice(&data[i..at]);
            if at + 3 > data.len() {
                self.pending = data[at..].to_vec();
                return self.validate(false);
            }
            if is_surrogate(&data[at..at + 3]) {
                self.out.extend_from_slice("\u{fffd}".as_bytes());
                i = at + 3;
            } else {
                self.out.push(0xed);
                i = at + 1;
            }
        }
        self.out.extend_from_slice(&data[i..]);
        self.validate(false)
    }

    /// Whether everything fed was valid.
    pub(crate) fn finish(mut self) -> bool {
        let pending = std::mem::take(&mut self.pending);
        self.out.extend_from_slice(&pending);
        !self.invalid && self.validate(true)
    }

    fn validate(&mut self, last: bool) -> bool {
        match std::str::from_utf8(&self.out) {
            Ok(_) => self.out.clear(),
            Err(e) if e.error_len().is_none() && !last => {
                self.out.drain(..e.valid_up_to());
            }
            Err(_) => self.invalid = true,
        }
        !self.invalid
    }
}

fn is_surrogate(b: &[u8]) -> bool {
    b[0] == 0xed && (0xa0..=0xbf).contains(&b[1]) && (0x80..=0xbf).contains(&b[2])
}
