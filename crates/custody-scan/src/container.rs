//! Format detection (by content, never by extension) and the containers that hold pickles:
//! zip (PyTorch checkpoints, `.npz`), NumPy `.npy`, joblib (plain or zlib/gzip/xz/lzma/lz4
//! compressed), 7z, and archives nested in each other, all under resource budgets. The model
//! formats that hold no pickle (safetensors, GGUF, ONNX, Keras, HDF5) are detected here too and
//! analysed by their own modules.

use std::io::Read;
use std::time::Instant;

use crate::ScanOptions;
use crate::pickle::{self, Mode};
use crate::report::{Finding, Format, Location, PickleReport, RuleId, Severity};
use crate::source::Input;
use crate::{gguf, keras, onnx, safetensors, zip};

/// The PyTorch legacy format's first pickle: protocol 2, LONG1 of the magic number, STOP.
const TORCH_LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e";
/// The HDF5 superblock signature.
const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// HDF5 allows a user block before the superblock: the signature is then at 512, 1024, 2048...
fn hdf5_after_user_block(data: &[u8]) -> bool {
    let mut at = 512usize;
    while at < data.len() && at <= 1 << 30 {
        if data.get(at..).is_some_and(|d| d.starts_with(HDF5_MAGIC)) {
            return true;
        }
        at *= 2;
    }
    false
}

/// Member names that loaders unpickle whatever their content looks like.
fn is_pickle_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".pkl") || lower.ends_with(".pickle") || lower.ends_with(".joblib") || lower.ends_with(".dill")
}

/// A PyTorch checkpoint's tensor storage (`<archive>/data/<key>`): torch reads these members as
/// raw bytes for the storages `data.pkl` names, and never unpickles them, so their contents
/// (random-looking floats that often parse as a few pickle opcodes) are not scanned as pickles.
fn is_torch_storage(name: &str) -> bool {
    let mut parts = name.rsplit('/');
    let (Some(key), Some(dir)) = (parts.next(), parts.next()) else { return false };
    dir == "data" && !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit())
}

/// Detect a format from the first bytes (ONNX, which has no magic, from a parse of the whole
/// message's top level).
///
/// Order matters where signatures are short: a safetensors header length can spell the gzip or
/// zlib magic by chance, so a safetensors header that fits the file wins over them; GGUF, HDF5
/// and safetensors all start with bytes that are also pickle opcodes, so they are tried before
/// pickle (and [`Ctx::scan_blob`] still scans them as pickles in case they are both).
pub fn detect_format(data: &[u8]) -> Format {
    detect(data, true)
}

/// [`detect_format`], optionally without the precedence safetensors takes over compressed
/// streams (to learn what else a safetensors file could be read as).
fn detect(data: &[u8], safetensors_first: bool) -> Format {
    let starts = |m: &[u8]| data.starts_with(m);
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
        Format::Zip
    } else if starts(b"\x93NUMPY") {
        Format::Npy
    } else if starts(b"7z\xbc\xaf\x27\x1c") {
        Format::SevenZ
    } else if safetensors_first && safetensors::looks_like(data, true) {
        Format::Safetensors
    } else if starts(b"\x1f\x8b") {
        Format::Gzip
    } else if starts(b"\xfd7zXZ\x00") {
        Format::Xz
    } else if starts(b"\x04\x22\x4d\x18") {
        Format::Lz4
    } else if starts(b"\x28\xb5\x2f\xfd") {
        Format::Zstd
    } else if data.len() >= 10 && starts(b"BZh") && (b'1'..=b'9').contains(&data[3]) && &data[4..10] == b"1AY&SY" {
        Format::Bzip2
    } else if starts(b"ZF") && data.len() > 21 && is_zlib(&data[21..]) {
        // joblib < 0.10: "ZF", the hex length padded to 19 bytes, then a zlib stream.
        Format::Zlib
    } else if is_zlib(data) {
        Format::Zlib
    } else if is_lzma_alone(data) {
        Format::Lzma
    } else if starts(b"GGUF") {
        Format::Gguf
    } else if starts(HDF5_MAGIC) {
        Format::Hdf5
    } else if safetensors::looks_like(data, false) {
        Format::Safetensors
    } else if starts(TORCH_LEGACY_MAGIC) {
        Format::TorchLegacy
    } else if data.first().is_some_and(|&b| crate::opcodes::name(b).is_some())
        && !(data[0] == crate::opcodes::PROTO && data.get(1).is_none_or(|&p| p > crate::opcodes::HIGHEST_PROTOCOL))
    {
        Format::Pickle
    } else if hdf5_after_user_block(data) {
        Format::Hdf5
    } else if onnx::probe(data) {
        Format::Onnx
    } else {
        Format::Unknown
    }
}

fn is_zlib(d: &[u8]) -> bool {
    d.len() >= 2 && d[0] == 0x78 && (u16::from(d[0]) << 8 | u16::from(d[1])) % 31 == 0
}

/// `.lzma` ("lzma-alone", joblib's `lzma` compressor): properties byte 0x5d, a dictionary
/// size, then the uncompressed size (often "unknown", all 0xff).
fn is_lzma_alone(d: &[u8]) -> bool {
    d.len() >= 13 && d[0] == 0x5d && d[1] == 0 && (d[5..13].iter().all(|&b| b == 0xff) || d[12] == 0)
}

fn child(member: &str, name: &str) -> String {
    if member.is_empty() { name.to_string() } else { format!("{member}!{name}") }
}

/// State shared by everything scanned for one file: options, findings, budgets.
pub(crate) struct Ctx<'o> {
    pub opts: &'o ScanOptions,
    pub findings: Vec<Finding>,
    pub pickles: Vec<PickleReport>,
    pub members: Vec<String>,
    pub bytes_scanned: u64,
    pub decompressed: u64,
    pub nested_scans: u32,
    pub deadline: Option<Instant>,
}

impl<'o> Ctx<'o> {
    pub(crate) fn new(opts: &'o ScanOptions) -> Self {
        Ctx {
            opts,
            findings: Vec::new(),
            pickles: Vec::new(),
            members: Vec::new(),
            bytes_scanned: 0,
            decompressed: 0,
            nested_scans: 0,
            deadline: opts.time_budget.map(|d| Instant::now() + d),
        }
    }

    pub(crate) fn add(&mut self, rule: RuleId, severity: Severity, message: String, member: &str, offset: Option<u64>) {
        self.findings.push(Finding {
            rule,
            severity,
            message,
            location: Location { member: member.to_string(), offset, ..Location::default() },
        });
    }

    /// How many more bytes may be decompressed for an input of `compressed` bytes.
    pub(crate) fn decompress_limit(&self, compressed: usize) -> usize {
        let remaining = self.opts.max_decompressed.saturating_sub(self.decompressed);
        let by_ratio = (compressed as u64).saturating_mul(self.opts.max_ratio).max(16 << 20);
        let limit = remaining.min(self.opts.max_member_size).min(by_ratio);
        usize::try_from(limit).unwrap_or(usize::MAX)
    }

    /// Scan one blob of bytes of any format. Returns the detected format.
    pub(crate) fn scan_blob(&mut self, data: &[u8], member: &str, depth: u32) -> Format {
        if depth > self.opts.max_depth {
            self.add(
                RuleId::ARCHIVE_BUDGET,
                Severity::Low,
                format!("nesting deeper than {} levels; not scanned", self.opts.max_depth),
                member,
                None,
            );
            return Format::Unknown;
        }
        self.bytes_scanned += data.len() as u64;
        let format = detect_format(data);
        match format {
            Format::Zip => return self.scan_zip(data, member, depth),
            Format::Npy => self.scan_npy(data, member, depth),
            Format::SevenZ => self.scan_7z(data, member, depth),
            Format::Gzip | Format::Zlib | Format::Xz | Format::Lz4 => {
                self.scan_compressed(format, data, member, depth);
            }
            Format::Lzma => {
                if !self.scan_compressed(format, data, member, depth) {
                    // Not LZMA after all (']' is also EMPTY_LIST): read it as a pickle.
                    return self.scan_pickle_stream(data, member, depth);
                }
            }
            Format::Bzip2 | Format::Zstd => self.add(
                RuleId::UNSUPPORTED_FORMAT,
                Severity::Low,
                format!("{format:?} stream: no decoder built in, content not scanned"),
                member,
                Some(0),
            ),
            Format::Pickle | Format::TorchLegacy | Format::Joblib => {
                return self.scan_pickle_stream(data, member, depth);
            }
            Format::Safetensors => {
                safetensors::scan(self, data, member);
                let other = detect(data, false);
                if matches!(other, Format::Gzip | Format::Zlib | Format::Xz | Format::Lz4 | Format::Lzma) {
                    self.scan_polyglot_compressed(other, data, member, depth);
                }
                self.scan_polyglot_pickle(data, member, depth, "safetensors");
            }
            Format::Gguf => {
                gguf::scan(self, data, member);
                self.scan_polyglot_pickle(data, member, depth, "GGUF");
            }
            Format::Hdf5 => {
                keras::scan_hdf5(self, data, member);
                self.scan_polyglot_pickle(data, member, depth, "HDF5");
            }
            Format::Onnx => onnx::scan(self, data, member),
            // Only returned by `scan_zip`, never by detection.
            Format::Keras => {}
            // Notebooks and text are routed by `scan_bytes`, dependency files are recognised by
            // name: `detect_format` never returns them, and as model files they are unknown data.
            Format::Unknown
            | Format::Notebook
            | Format::Text
            | Format::Requirements
            | Format::PoetryLock
            | Format::UvLock
            | Format::PipfileLock
            | Format::CargoLock
            | Format::PackageLock => self.add(
                RuleId::UNKNOWN_FORMAT,
                Severity::Low,
                "content is not a pickle or a known container; nothing could be verified".into(),
                member,
                Some(0),
            ),
        }
        format
    }

    /// A file of another format whose first byte is also a pickle opcode is a candidate
    /// polyglot: a loader that picks by extension (`torch.load` on `model.bin`) would unpickle
    /// it. It is walked speculatively; if it does not parse as a pickle, nothing is kept.
    fn scan_polyglot_pickle(&mut self, data: &[u8], member: &str, depth: u32, what: &str) {
        if data.first().is_none_or(|&b| crate::opcodes::name(b).is_none()) {
            return;
        }
        let (findings, pickles, nested) = (self.findings.len(), self.pickles.len(), self.nested_scans);
        let out = pickle::scan_pickle(self, data, 0, member, depth, Mode::Speculative);
        if out.end.is_none() && !out.dangerous {
            self.findings.truncate(findings);
            self.pickles.truncate(pickles);
            self.nested_scans = nested;
            return;
        }
        self.add(
            RuleId::NESTED,
            Severity::Info,
            format!("this {what} file also parses as a pickle, which a loader choosing by extension would run"),
            member,
            Some(0),
        );
    }

    /// A safetensors file whose header length spells a compression magic (gzip `1f 8b`, zlib
    /// `78 01`...) would be decompressed by a loader that sniffs those (joblib). Almost always
    /// the stream is invalid, or decodes to nothing a loader could use, and nothing is reported;
    /// if it decodes to a recognised format, that content is scanned.
    fn scan_polyglot_compressed(&mut self, format: Format, data: &[u8], member: &str, depth: u32) {
        let (label, limit, result) = self.decode(format, data);
        match result {
            Ok(out) if detect_format(&out) != Format::Unknown => {
                let path = child(member, label);
                self.decompressed += out.len() as u64;
                self.members.push(path.clone());
                self.add(
                    RuleId::NESTED,
                    Severity::Info,
                    format!("this safetensors file also decodes as a {format:?} stream, scanned as `{path}`"),
                    member,
                    Some(0),
                );
                self.scan_blob(&out, &path, depth + 1);
            }
            Err(Decomp::TooLarge) => self.add(
                RuleId::ARCHIVE_BUDGET,
                Severity::Low,
                format!("this safetensors file also starts a {label} stream, which exceeds the budget ({limit} bytes)"),
                member,
                Some(0),
            ),
            _ => {}
        }
    }

    fn scan_pickle_stream(&mut self, data: &[u8], member: &str, depth: u32) -> Format {
        self.scan_pickle_stream_input(&Input::mem(data), data, member, depth)
    }

    /// A whole pickle stream (`head` is its first bytes, at least the torch legacy magic's
    /// length when there are that many).
    pub(crate) fn scan_pickle_stream_input(
        &mut self,
        input: &Input<'_>,
        head: &[u8],
        member: &str,
        depth: u32,
    ) -> Format {
        let out = pickle::scan_stream_input(self, input, 0, member, depth, Mode::Primary);
        if head.starts_with(TORCH_LEGACY_MAGIC) {
            Format::TorchLegacy
        } else if out.failed_at.is_some_and(|p| p < 8) {
            // Failing within a few bytes: not a pickle at all, whatever its first byte.
            Format::Unknown
        } else if out.joblib {
            Format::Joblib
        } else {
            Format::Pickle
        }
    }

    /// A pickle found inside a pickle (loader argument, embedded constant, base64).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn scan_nested_pickle(
        &mut self,
        bytes: Input<'_>,
        member: &str,
        depth: u32,
        mode: Mode,
        what: &str,
        parent: &str,
        offset: u64,
    ) {
        if depth > self.opts.max_depth || self.nested_scans >= self.opts.max_nested {
            let severity = if mode == Mode::Primary { Severity::Low } else { Severity::Info };
            self.add(
                RuleId::PICKLE_BUDGET,
                severity,
                format!("nested pickle ({what}) not scanned: limit reached"),
                parent,
                Some(offset),
            );
            return;
        }
        self.nested_scans += 1;
        let before = self.findings.len();
        let len = bytes.len();
        let out = pickle::scan_pickle_input(self, bytes, 0, member, depth, mode);
        if out.end.is_some() || self.findings.len() > before {
            self.members.push(member.to_string());
            self.add(
                RuleId::NESTED,
                Severity::Info,
                format!("nested pickle ({what}, {len} bytes) scanned as `{member}`"),
                parent,
                Some(offset),
            );
        }
    }

    // ----- zip ---------------------------------------------------------------------------

    /// Scan a zip's members; returns [`Format::Keras`] for a `.keras` archive.
    fn scan_zip(&mut self, data: &[u8], member: &str, depth: u32) -> Format {
        let index = match zip::read_index(data, self.opts.max_members) {
            Ok(i) => i,
            Err(e) => {
                self.add(RuleId::ARCHIVE_MALFORMED, Severity::Low, format!("unreadable zip: {e}"), member, None);
                return Format::Zip;
            }
        };
        self.scan_zip_index(zip::Archive::Mem(data), &index, member, depth)
    }

    /// Scan the members of an archive whose index has been read; only members that need a
    /// look are read.
    pub(crate) fn scan_zip_index(
        &mut self,
        data: zip::Archive<'_>,
        index: &zip::Index,
        member: &str,
        depth: u32,
    ) -> Format {
        if let Some(why) = &index.broken_central {
            self.add(
                RuleId::ARCHIVE_MALFORMED,
                Severity::Low,
                format!("central directory unusable ({why}); members found by walking local headers"),
                member,
                None,
            );
        }
        for a in &index.anomalies {
            self.add(RuleId::ARCHIVE_ANOMALY, Severity::Info, a.clone(), member, None);
        }
        for e in &index.entries {
            let path = child(member, &e.name);
            if e.name.ends_with('/') && e.compressed_size == 0 {
                continue;
            }
            let pickle_named = is_pickle_name(&e.name);
            let prefix = data.member_prefix(e, 16).unwrap_or_default();
            let prefix_format = detect_format(&prefix);
            if e.encrypted() {
                // Flag bits are only a claim: if the bytes are a plain pickle or container, the
                // loader that ignores the flag reads them, so we do too.
                if prefix_format == Format::Unknown
                    || (prefix_format == Format::Pickle && prefix.first() != Some(&0x80))
                {
                    self.add(
                        RuleId::ARCHIVE_ENCRYPTED,
                        Severity::Low,
                        format!("member `{}` is encrypted (flags {:#06x}); not scanned", e.name, e.flags),
                        member,
                        Some(e.data_start as u64),
                    );
                    continue;
                }
                self.add(
                    RuleId::ARCHIVE_ANOMALY,
                    Severity::Info,
                    format!("member `{}` has encryption flag bits {:#06x} but plain content", e.name, e.flags),
                    member,
                    Some(e.data_start as u64),
                );
            }
            if e.flags & !0x0809 != 0 {
                self.add(
                    RuleId::ARCHIVE_ANOMALY,
                    Severity::Info,
                    format!("member `{}` has unusual general-purpose flags {:#06x}", e.name, e.flags),
                    member,
                    Some(e.data_start as u64),
                );
            }
            // Raw tensor storages and other opaque data are skipped without decompressing. ONNX
            // has no magic to see in a prefix, so its usual name is a reason to look.
            let onnx_named = e.name.to_ascii_lowercase().ends_with(".onnx");
            let storage = is_torch_storage(&e.name) && prefix.first() != Some(&0x80);
            let interesting = pickle_named || onnx_named || (prefix_format != Format::Unknown && !storage);
            if !interesting {
                continue;
            }
            let limit = self.decompress_limit(data.raw_len(e));
            let content = match data.member_data(e, limit) {
                Ok(c) => c,
                Err(err) => {
                    let (rule, why) = match err {
                        zip::DataError::Method(m) => {
                            (RuleId::ARCHIVE_MALFORMED, format!("uses unsupported compression method {m}"))
                        }
                        zip::DataError::TooLarge => (RuleId::ARCHIVE_BUDGET, "exceeds the decompression budget".into()),
                        zip::DataError::Corrupt(msg) => (RuleId::ARCHIVE_MALFORMED, format!("is unreadable: {msg}")),
                    };
                    let message = format!("member `{}` {why}", e.name);
                    self.add(rule, Severity::Low, message, member, Some(e.data_start as u64));
                    continue;
                }
            };
            if e.method != zip::METHOD_STORED {
                self.decompressed += content.len() as u64;
            }
            if content.len() <= 64 << 20 && zip::crc32(&content) != e.crc32 {
                self.add(
                    RuleId::ARCHIVE_ANOMALY,
                    Severity::Info,
                    format!("member `{}` fails its CRC check (torch ignores CRCs)", e.name),
                    member,
                    Some(e.data_start as u64),
                );
            }
            self.members.push(path.clone());
            let fmt = detect_format(&content);
            match fmt {
                // `*.pkl` members are unpickled whatever their first byte.
                _ if pickle_named && matches!(fmt, Format::Unknown | Format::Pickle | Format::TorchLegacy) => {
                    self.bytes_scanned += content.len() as u64;
                    pickle::scan_stream(self, &content, 0, &path, depth + 1, Mode::Primary);
                }
                // Anything else that merely starts like a pickle: speculative.
                Format::Pickle => {
                    self.bytes_scanned += content.len() as u64;
                    pickle::scan_stream(self, &content, 0, &path, depth + 1, Mode::Speculative);
                }
                _ => {
                    self.scan_blob(&content, &path, depth + 1);
                }
            }
        }
        if keras::scan_keras_zip(self, data, index, member) { Format::Keras } else { Format::Zip }
    }

    // ----- npy ---------------------------------------------------------------------------

    fn scan_npy(&mut self, data: &[u8], member: &str, depth: u32) {
        let header = npy_header(data);
        let Some((text, body_start)) = header else {
            self.add(RuleId::NPY_MALFORMED, Severity::Low, "invalid .npy header".into(), member, Some(0));
            return;
        };
        if !text.contains("'descr'") || !text.contains("'shape'") {
            self.add(RuleId::NPY_MALFORMED, Severity::Low, "'.npy header lacks descr/shape".into(), member, Some(0));
            return;
        }
        if npy_has_objects(&text) {
            // Object arrays are stored as a pickle right after the header (np.load with
            // allow_pickle=True unpickles it).
            self.bytes_scanned += (data.len() - body_start) as u64;
            pickle::scan_stream(self, data, body_start, member, depth, Mode::Primary);
        }
    }

    // ----- 7z ----------------------------------------------------------------------------

    fn scan_7z(&mut self, data: &[u8], member: &str, depth: u32) {
        let cursor = std::io::Cursor::new(data);
        let mem_kb = usize::try_from((self.opts.max_member_size / 1024).min(1 << 22)).unwrap_or(1 << 22);
        let mut reader =
            match sevenz_rust2::ArchiveReader::new_with_memory_limit(cursor, sevenz_rust2::Password::empty(), mem_kb) {
                Ok(r) => r,
                Err(e) => {
                    let (rule, what) = match e {
                        sevenz_rust2::Error::PasswordRequired | sevenz_rust2::Error::MaybeBadPassword(_) => {
                            (RuleId::ARCHIVE_ENCRYPTED, "7z archive is encrypted".to_string())
                        }
                        other => (RuleId::ARCHIVE_MALFORMED, format!("unreadable 7z archive: {other}")),
                    };
                    self.add(rule, Severity::Low, what, member, None);
                    return;
                }
            };
        reader.set_thread_count(1);
        let mut count = 0usize;
        let result = reader.for_each_entries(|entry, r| {
            count += 1;
            if count > self.opts.max_members {
                return Ok(false);
            }
            if entry.is_directory() {
                return Ok(true);
            }
            let path = child(member, entry.name());
            let limit = self.decompress_limit(data.len()) as u64;
            let mut buf = Vec::new();
            r.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
            if buf.len() as u64 > limit {
                self.add(
                    RuleId::ARCHIVE_BUDGET,
                    Severity::Low,
                    format!("member `{}` exceeds the decompression budget", entry.name()),
                    member,
                    None,
                );
                return Ok(true);
            }
            self.decompressed += buf.len() as u64;
            self.members.push(path.clone());
            if is_pickle_name(entry.name()) && matches!(detect_format(&buf), Format::Unknown) {
                pickle::scan_stream(self, &buf, 0, &path, depth + 1, Mode::Primary);
            } else {
                self.scan_blob(&buf, &path, depth + 1);
            }
            Ok(true)
        });
        if let Err(e) = result {
            let rule = match e {
                sevenz_rust2::Error::PasswordRequired | sevenz_rust2::Error::MaybeBadPassword(_) => {
                    RuleId::ARCHIVE_ENCRYPTED
                }
                _ => RuleId::ARCHIVE_MALFORMED,
            };
            self.add(rule, Severity::Low, format!("7z extraction failed: {e}"), member, None);
        }
    }

    // ----- compressed streams ------------------------------------------------------------

    /// Decompress and scan the result. Returns false if the stream could not be decoded at all.
    fn scan_compressed(&mut self, format: Format, data: &[u8], member: &str, depth: u32) -> bool {
        let (label, limit, result) = self.decode(format, data);
        let path = child(member, label);
        match result {
            Ok(out) => {
                self.decompressed += out.len() as u64;
                self.members.push(path.clone());
                self.scan_blob(&out, &path, depth + 1);
                true
            }
            Err(Decomp::TooLarge) => {
                self.add(
                    RuleId::ARCHIVE_BUDGET,
                    Severity::Low,
                    format!("{label} stream exceeds the decompression budget ({limit} bytes)"),
                    member,
                    Some(0),
                );
                true
            }
            Err(Decomp::Corrupt(msg)) => {
                if format == Format::Lzma {
                    return false;
                }
                self.add(RuleId::ARCHIVE_MALFORMED, Severity::Low, format!("{label} stream: {msg}"), member, Some(0));
                true
            }
        }
    }

    /// Decompress a stream within the budget: (label for member paths, limit used, result).
    fn decode(&self, format: Format, data: &[u8]) -> (&'static str, usize, Result<Vec<u8>, Decomp>) {
        let limit = self.decompress_limit(data.len());
        let label = match format {
            Format::Gzip => "<gzip>",
            Format::Zlib => "<zlib>",
            Format::Xz => "<xz>",
            Format::Lzma => "<lzma>",
            _ => "<lz4>",
        };
        let result = match format {
            Format::Gzip => gunzip(data, limit),
            Format::Zlib => {
                let body = if data.starts_with(b"ZF") { &data[21..] } else { data };
                inflate_zlib(body, limit)
            }
            Format::Xz => read_limited(lzma_rust2::XzReader::new(std::io::Cursor::new(data), true), limit),
            Format::Lzma => match lzma_rust2::LzmaReader::new_mem_limit(std::io::Cursor::new(data), 1 << 20, None) {
                Ok(r) => read_limited(r, limit),
                Err(e) => Err(Decomp::Corrupt(e.to_string())),
            },
            _ => read_limited(lz4_flex::frame::FrameDecoder::new(std::io::Cursor::new(data)), limit),
        };
        (label, limit, result)
    }
}

enum Decomp {
    TooLarge,
    Corrupt(String),
}

fn read_limited(r: impl Read, limit: usize) -> Result<Vec<u8>, Decomp> {
    let mut out = Vec::new();
    let cap = (limit as u64).saturating_add(1);
    match r.take(cap).read_to_end(&mut out) {
        Ok(_) if out.len() > limit => Err(Decomp::TooLarge),
        Ok(_) => Ok(out),
        // A truncated stream still yields what was decoded; the pickle walker judges the rest.
        Err(_) if !out.is_empty() => Ok(out),
        Err(e) => Err(Decomp::Corrupt(e.to_string())),
    }
}

fn inflate_result(r: Result<Vec<u8>, miniz_oxide::inflate::DecompressError>) -> Result<Vec<u8>, Decomp> {
    use miniz_oxide::inflate::TINFLStatus;
    match r {
        Ok(v) => Ok(v),
        Err(e) if e.status == TINFLStatus::HasMoreOutput => Err(Decomp::TooLarge),
        Err(e) if !e.output.is_empty() => Ok(e.output),
        Err(e) => Err(Decomp::Corrupt(format!("{:?}", e.status))),
    }
}

fn inflate_zlib(data: &[u8], limit: usize) -> Result<Vec<u8>, Decomp> {
    inflate_result(miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, limit))
}

/// gzip (RFC 1952): skip the header, inflate the first member.
fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, Decomp> {
    let bad = || Decomp::Corrupt("bad gzip header".into());
    if data.len() < 18 || data[2] != 8 {
        return Err(bad());
    }
    let flags = data[3];
    let mut pos = 10usize;
    if flags & 0x04 != 0 {
        let xlen =
            usize::from(u16::from_le_bytes([*data.get(pos).ok_or_else(bad)?, *data.get(pos + 1).ok_or_else(bad)?]));
        pos += 2 + xlen;
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            let rest = data.get(pos..).ok_or_else(bad)?;
            pos += rest.iter().position(|&b| b == 0).ok_or_else(bad)? + 1;
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    let body = data.get(pos..).ok_or_else(bad)?;
    inflate_result(miniz_oxide::inflate::decompress_to_vec_with_limit(body, limit))
}

/// The header text of a `.npy` file and where the array data starts.
fn npy_header(data: &[u8]) -> Option<(String, usize)> {
    let major = *data.get(6)?;
    let (len, start): (usize, usize) = match major {
        1 => (usize::from(u16::from_le_bytes([*data.get(8)?, *data.get(9)?])), 10),
        2 | 3 => (u32::from_le_bytes([*data.get(8)?, *data.get(9)?, *data.get(10)?, *data.get(11)?]) as usize, 12),
        _ => return None,
    };
    let text = data.get(start..start.checked_add(len)?)?;
    Some((String::from_utf8_lossy(text).into_owned(), start + len))
}

/// Whether a header's `descr` has object items: a quoted type code `O`, `|O`, `O8`...
/// (field *names* such as `'Owner'` don't count).
fn npy_has_objects(header: &str) -> bool {
    let descr = match header.find("'descr'") {
        Some(i) => &header[i + 7..],
        None => return true,
    };
    let end = descr.find("'fortran_order'").or_else(|| descr.find("'shape'")).unwrap_or(descr.len());
    let descr = &descr[..end];
    descr.split('\'').skip(1).step_by(2).any(|tok| {
        let t = tok.trim_start_matches(['<', '>', '|', '=']);
        t.starts_with('O') && t[1..].chars().all(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::is_torch_storage;

    #[test]
    fn torch_storages_are_recognised_by_name() {
        for yes in ["archive/data/0", "model/data/17", "a/b/data/123"] {
            assert!(is_torch_storage(yes), "{yes}");
        }
        for no in ["archive/data.pkl", "archive/data/0.pkl", "archive/data/", "archive/code/0", "x/data/1a"] {
            assert!(!is_torch_storage(no), "{no}");
        }
    }
}
