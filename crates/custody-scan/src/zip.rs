//! A minimal, tolerant zip reader that sees archives the way loaders do.
//!
//! PyTorch (miniz) and Python's `zipfile` locate members through the **central directory** and
//! then skip the local header using the *local* name and extra lengths. They do not care about
//! the local name, the file extension, or (torch) the CRC. Attackers use exactly those gaps to
//! hide a pickle from scanners that are stricter than the loader, so this reader is *lenient*:
//! CRC mismatches, local/central name mismatches, odd general-purpose flag bits and unexpected
//! extensions are reported as anomalies, never as reasons to skip a member. When the central
//! directory is missing or broken we fall back to walking local headers.
//!
//! An archive is in memory or in a file ([`Archive`]). For a file, [`read_index_at`] reads the
//! central directory and local headers by position, so only the members that need scanning are
//! read; it accepts only the plain layout (members tiling the file up to the central directory,
//! nothing encrypted, renamed or unusual), and anything else is read whole and goes through
//! [`read_index`], so both see the same members.

use std::borrow::Cow;

use crate::source::FileSrc;

const LOCAL_SIG: &[u8; 4] = b"PK\x03\x04";
const CENTRAL_SIG: &[u8; 4] = b"PK\x01\x02";
const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
const ZIP64_LOCATOR_SIG: &[u8; 4] = b"PK\x06\x07";
const ZIP64_EOCD_SIG: &[u8; 4] = b"PK\x06\x06";

/// General-purpose flag: the member is encrypted (traditional PKWARE or strong encryption).
pub(crate) const FLAG_ENCRYPTED: u16 = 0x0001;
const FLAG_STRONG_ENCRYPTION: u16 = 0x0040;
const FLAG_DATA_DESCRIPTOR: u16 = 0x0008;

/// Compression methods we can read.
pub(crate) const METHOD_STORED: u16 = 0;
pub(crate) const METHOD_DEFLATE: u16 = 8;

/// One member as the loader would see it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Name from the central directory (what loaders look up).
    pub name: String,
    /// General-purpose flags (central directory).
    pub flags: u16,
    /// Compression method.
    pub method: u16,
    /// Compressed size (central directory, ZIP64-aware).
    pub compressed_size: u64,
    /// Declared CRC-32.
    pub crc32: u32,
    /// Offset of the member's data in the archive.
    pub data_start: usize,
    /// Whether the compressed size is unknown (local-header fallback with a data descriptor).
    pub size_unknown: bool,
}

impl Entry {
    /// Whether a flag bit says the data is encrypted.
    pub(crate) fn encrypted(&self) -> bool {
        self.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0
    }
}

/// The members of an archive plus structural oddities worth reporting.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Members in central-directory order.
    pub entries: Vec<Entry>,
    /// Human-readable anomalies (name mismatches, prepended data...).
    pub anomalies: Vec<String>,
    /// Why the central directory could not be used, if it could not (loaders would fail to
    /// open the archive; members were found by walking local headers instead).
    pub broken_central: Option<String>,
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at + 8).map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    })
}

/// Read the archive's member list. Errors only when no member can be found at all.
pub(crate) fn read_index(data: &[u8], max_entries: usize) -> Result<Index, String> {
    let mut index = Index::default();
    match read_central(data, &mut index, max_entries) {
        Ok(()) if !index.entries.is_empty() => Ok(index),
        Ok(()) => {
            read_local_headers(data, &mut index, max_entries);
            if !index.entries.is_empty() {
                index.broken_central = Some("central directory lists no members".into());
            }
            Ok(index)
        }
        Err(e) => {
            index.broken_central = Some(e.clone());
            index.entries.clear();
            read_local_headers(data, &mut index, max_entries);
            if index.entries.is_empty() { Err(e) } else { Ok(index) }
        }
    }
}

fn find_eocd(data: &[u8]) -> Option<usize> {
    if data.len() < 22 {
        return None;
    }
    let lowest = data.len().saturating_sub(22 + 65535);
    (lowest..=data.len() - 22).rev().find(|&i| &data[i..i + 4] == EOCD_SIG)
}

fn read_central(data: &[u8], index: &mut Index, max_entries: usize) -> Result<(), String> {
    let eocd = find_eocd(data).ok_or("no end-of-central-directory record")?;
    let mut total = u64::from(u16_at(data, eocd + 10).ok_or("truncated EOCD")?);
    let mut cd_size = u64::from(u32_at(data, eocd + 12).ok_or("truncated EOCD")?);
    let mut cd_offset = u64::from(u32_at(data, eocd + 16).ok_or("truncated EOCD")?);
    // Where the central directory should end: at the ZIP64 record if there is one.
    let mut cd_end_actual = eocd as u64;
    // ZIP64: the locator sits just before the EOCD record.
    if eocd >= 20 && &data[eocd - 20..eocd - 16] == ZIP64_LOCATOR_SIG {
        let rec = u64_at(data, eocd - 12).ok_or("truncated ZIP64 locator")?;
        let rec = usize::try_from(rec).map_err(|_| "ZIP64 record out of range")?;
        if data.get(rec..rec + 4) == Some(&ZIP64_EOCD_SIG[..]) {
            total = u64_at(data, rec + 32).ok_or("truncated ZIP64 EOCD")?;
            cd_size = u64_at(data, rec + 40).ok_or("truncated ZIP64 EOCD")?;
            cd_offset = u64_at(data, rec + 48).ok_or("truncated ZIP64 EOCD")?;
            cd_end_actual = rec as u64;
        }
    }
    // Data prepended to the archive shifts every offset (zipfile tolerates this; so do we).
    let expected_end = cd_offset.saturating_add(cd_size);
    let shift = cd_end_actual.saturating_sub(expected_end);
    if shift > 0 {
        index.anomalies.push(format!("{shift} bytes precede the archive"));
    }
    let mut pos = usize::try_from(cd_offset.saturating_add(shift)).map_err(|_| "central directory out of range")?;
    let mut seen = 0u64;
    while seen < total {
        if index.entries.len() >= max_entries {
            return Err(format!("more than {max_entries} members"));
        }
        if data.get(pos..pos + 4) != Some(&CENTRAL_SIG[..]) {
            return Err(format!("bad central directory entry at {pos}"));
        }
        let fixed = data.get(pos..pos + 46).ok_or("truncated central directory")?;
        let flags = u16_at(fixed, 8).unwrap_or(0);
        let method = u16_at(fixed, 10).unwrap_or(0);
        let crc32 = u32_at(fixed, 16).unwrap_or(0);
        let mut csize = u64::from(u32_at(fixed, 20).unwrap_or(0));
        let mut usize_ = u64::from(u32_at(fixed, 24).unwrap_or(0));
        let name_len = usize::from(u16_at(fixed, 28).unwrap_or(0));
        let extra_len = usize::from(u16_at(fixed, 30).unwrap_or(0));
        let comment_len = usize::from(u16_at(fixed, 32).unwrap_or(0));
        let mut local = u64::from(u32_at(fixed, 42).unwrap_or(0));
        let name_bytes = data.get(pos + 46..pos + 46 + name_len).ok_or("truncated member name")?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let extra = data.get(pos + 46 + name_len..pos + 46 + name_len + extra_len).unwrap_or(&[]);
        apply_zip64_extra(extra, &mut usize_, &mut csize, &mut local);
        pos += 46 + name_len + extra_len + comment_len;
        seen += 1;

        let local = usize::try_from(local.saturating_add(shift)).map_err(|_| "local header out of range")?;
        match local_data_start(data, local) {
            Some((data_start, local_name)) => {
                if local_name != name_bytes {
                    index.anomalies.push(format!(
                        "member `{name}`: local header names it `{}`",
                        String::from_utf8_lossy(local_name)
                    ));
                }
                index.entries.push(Entry {
                    name,
                    flags,
                    method,
                    compressed_size: csize,
                    crc32,
                    data_start,
                    size_unknown: false,
                });
            }
            None => index.anomalies.push(format!("member `{name}`: no local header at {local}")),
        }
    }
    Ok(())
}

/// ZIP64 extended information: the 64-bit values present are those whose 32-bit field is full.
fn apply_zip64_extra(mut extra: &[u8], usize_: &mut u64, csize: &mut u64, local: &mut u64) {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0).unwrap_or(0);
        let len = usize::from(u16_at(extra, 2).unwrap_or(0));
        let body = extra.get(4..4 + len).unwrap_or(&[]);
        if id == 0x0001 {
            let mut at = 0;
            for field in [&mut *usize_, &mut *csize, &mut *local] {
                if *field == u64::from(u32::MAX) {
                    if let Some(v) = u64_at(body, at) {
                        *field = v;
                    }
                    at += 8;
                }
            }
        }
        extra = extra.get(4 + len..).unwrap_or(&[]);
    }
}

/// Where a member's data starts, given its local header offset, and the local name.
fn local_data_start(data: &[u8], at: usize) -> Option<(usize, &[u8])> {
    if data.get(at..at + 4)? != LOCAL_SIG {
        return None;
    }
    let name_len = usize::from(u16_at(data, at + 26)?);
    let extra_len = usize::from(u16_at(data, at + 28)?);
    let name = data.get(at + 30..at + 30 + name_len)?;
    let start = at + 30 + name_len + extra_len;
    (start <= data.len()).then_some((start, name))
}

/// Fallback: find members by scanning for local header signatures.
fn read_local_headers(data: &[u8], index: &mut Index, max_entries: usize) {
    let mut pos = 0;
    while let Some(off) = find(data, LOCAL_SIG, pos) {
        if index.entries.len() >= max_entries {
            break;
        }
        let Some((data_start, name)) = local_data_start(data, off) else {
            pos = off + 4;
            continue;
        };
        let flags = u16_at(data, off + 6).unwrap_or(0);
        let method = u16_at(data, off + 8).unwrap_or(0);
        let crc32 = u32_at(data, off + 14).unwrap_or(0);
        let csize = u64::from(u32_at(data, off + 18).unwrap_or(0));
        let size_unknown = flags & FLAG_DATA_DESCRIPTOR != 0 && csize == 0;
        index.entries.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            flags,
            method,
            compressed_size: csize,
            crc32,
            data_start,
            size_unknown,
        });
        pos = if size_unknown { data_start } else { data_start.saturating_add(csize as usize).max(off + 4) };
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// Why a member's bytes could not be produced.
#[derive(Debug)]
pub(crate) enum DataError {
    /// Unsupported compression method.
    Method(u16),
    /// The compressed data is corrupt (or encrypted).
    Corrupt(String),
    /// Output would exceed the limit.
    TooLarge,
}

/// Largest central directory [`read_index_at`] reads.
const MAX_CENTRAL_AT: u64 = 64 << 20;

/// The member list of an archive in a file, read from its end and the local headers, never
/// from member data. Only for the plain layout that writers such as `torch.save` and
/// `zipfile` produce: `None` whenever [`read_index`] could see anything else (no or a damaged
/// central directory, ZIP64 records out of place, prepended data, a local header missing or
/// naming another file, encryption or unusual flag bits, other compression methods, members
/// that do not tile the file from its start to the central directory with no gap or overlap),
/// and the caller then reads the whole file. What it returns is what [`read_index`] returns on
/// the file's bytes.
pub(crate) fn read_index_at(src: &FileSrc, max_entries: usize) -> Option<Index> {
    let len = src.len();
    let (eocd, eocd_rec) = find_eocd_at(src)?;
    let comment_len = u64::from(u16_at(&eocd_rec, 20)?);
    if eocd + 22 + comment_len != len {
        return None;
    }
    let (total, cd_size, cd_offset, cd_end) = central_bounds_at(src, eocd, &eocd_rec)?;
    if cd_offset.checked_add(cd_size)? != cd_end || cd_size > MAX_CENTRAL_AT || total == 0 {
        return None;
    }
    let cd = src.read_vec(cd_offset, usize::try_from(cd_size).ok()?)?;
    let mut entries = Vec::new();
    // (local header offset, end of data and any data descriptor's possible lengths).
    let mut spans = Vec::new();
    let mut pos = 0usize;
    for _ in 0..total {
        if entries.len() >= max_entries {
            return None;
        }
        let (entry, local, next) = central_entry_at(src, &cd, pos)?;
        let end = (entry.data_start as u64).checked_add(entry.compressed_size)?;
        spans.push((local, end, entry.flags & FLAG_DATA_DESCRIPTOR != 0));
        entries.push(entry);
        pos = next;
    }
    if pos != cd.len() || !tiles(&mut spans, cd_offset) {
        return None;
    }
    Some(Index { entries, anomalies: Vec::new(), broken_central: None })
}

/// The EOCD record the way [`find_eocd`] finds it (the last signature in the last 64 KiB).
fn find_eocd_at(src: &FileSrc) -> Option<(u64, Vec<u8>)> {
    let len = usize::try_from(src.len()).ok()?;
    if len < 22 {
        return None;
    }
    let lowest = len.saturating_sub(22 + 65535);
    let tail = src.read_vec(lowest as u64, len - lowest)?;
    let at = (0..=tail.len() - 22).rev().find(|&i| &tail[i..i + 4] == EOCD_SIG)?;
    Some(((lowest + at) as u64, tail[at..].to_vec()))
}

/// (entries, central directory size, offset, where it must end), from the EOCD or ZIP64 record.
fn central_bounds_at(src: &FileSrc, eocd: u64, rec: &[u8]) -> Option<(u64, u64, u64, u64)> {
    let plain = (u64::from(u16_at(rec, 10)?), u64::from(u32_at(rec, 12)?), u64::from(u32_at(rec, 16)?), eocd);
    if eocd < 20 {
        return Some(plain);
    }
    let locator = src.read_vec(eocd - 20, 20)?;
    if &locator[..4] != ZIP64_LOCATOR_SIG {
        return Some(plain);
    }
    let at = u64_at(&locator, 8)?;
    let z = src.read_vec(at, 56)?;
    // The ZIP64 record must end where the locator starts.
    let size = u64_at(&z, 4)?;
    if &z[..4] != ZIP64_EOCD_SIG || at.checked_add(12)?.checked_add(size)? != eocd - 20 {
        return None;
    }
    Some((u64_at(&z, 32)?, u64_at(&z, 40)?, u64_at(&z, 48)?, at))
}

/// The central directory entry at `pos` of `cd` with its local header checked: (entry, local
/// header offset, position of the next entry).
fn central_entry_at(src: &FileSrc, cd: &[u8], pos: usize) -> Option<(Entry, u64, usize)> {
    let fixed = cd.get(pos..pos + 46)?;
    if &fixed[..4] != CENTRAL_SIG {
        return None;
    }
    let flags = u16_at(fixed, 8)?;
    let method = u16_at(fixed, 10)?;
    if flags & !0x0809 != 0 || flags & FLAG_ENCRYPTED != 0 || !matches!(method, METHOD_STORED | METHOD_DEFLATE) {
        return None;
    }
    let crc32 = u32_at(fixed, 16)?;
    let mut csize = u64::from(u32_at(fixed, 20)?);
    let mut usize_ = u64::from(u32_at(fixed, 24)?);
    let name_len = usize::from(u16_at(fixed, 28)?);
    let extra_len = usize::from(u16_at(fixed, 30)?);
    let comment_len = usize::from(u16_at(fixed, 32)?);
    let mut local = u64::from(u32_at(fixed, 42)?);
    let name_bytes = cd.get(pos + 46..pos + 46 + name_len)?;
    let extra = cd.get(pos + 46 + name_len..pos + 46 + name_len + extra_len)?;
    let next = pos + 46 + name_len + extra_len + comment_len;
    if next > cd.len() {
        return None;
    }
    apply_zip64_extra(extra, &mut usize_, &mut csize, &mut local);
    let header = src.read_vec(local, 30)?;
    if &header[..4] != LOCAL_SIG || usize::from(u16_at(&header, 26)?) != name_len {
        return None;
    }
    let local_extra = u64::from(u16_at(&header, 28)?);
    if src.read_vec(local + 30, name_len)? != name_bytes {
        return None;
    }
    let data_start = local + 30 + name_len as u64 + local_extra;
    if data_start > src.len() {
        return None;
    }
    let entry = Entry {
        name: String::from_utf8_lossy(name_bytes).into_owned(),
        flags,
        method,
        compressed_size: csize,
        crc32,
        data_start: usize::try_from(data_start).ok()?,
        size_unknown: false,
    };
    Some((entry, local, next))
}

/// Whether members (local header offset, data end, has a data descriptor) cover the file from
/// its start to the central directory exactly: no prepended bytes, gaps or overlaps where
/// something the central directory does not list could hide.
fn tiles(spans: &mut [(u64, u64, bool)], cd_offset: u64) -> bool {
    spans.sort_unstable();
    let (mut at, mut descriptor) = (0u64, false);
    for &(local, end, has_descriptor) in spans.iter() {
        if !follows(at, descriptor, local) || end < local {
            return false;
        }
        (at, descriptor) = (end, has_descriptor);
    }
    follows(at, descriptor, cd_offset)
}

/// Whether `next` starts right after data ending at `end` and its data descriptor, if any
/// (12 or 20 bytes, 16 or 24 with the optional signature).
fn follows(end: u64, descriptor: bool, next: u64) -> bool {
    match next.checked_sub(end) {
        Some(0) => !descriptor,
        Some(12 | 16 | 20 | 24) => descriptor,
        _ => false,
    }
}

/// The raw (still compressed) bytes of a member.
pub(crate) fn raw_data<'a>(data: &'a [u8], e: &Entry) -> &'a [u8] {
    let start = e.data_start.min(data.len());
    if e.size_unknown {
        // Stored members with a data descriptor: up to the next signature.
        let end = [&b"PK\x07\x08"[..], LOCAL_SIG, CENTRAL_SIG]
            .iter()
            .filter_map(|sig| find(data, sig, start))
            .min()
            .unwrap_or(data.len());
        return &data[start..end];
    }
    let end = usize::try_from(e.compressed_size).ok().and_then(|c| start.checked_add(c)).unwrap_or(usize::MAX);
    &data[start..end.min(data.len())]
}

/// Decompress a member's raw bytes (at most `limit` bytes of output). Stored members are
/// passed through, not copied. CRCs are deliberately not checked: torch does not check them.
fn decode<'a>(raw: Cow<'a, [u8]>, method: u16, limit: usize) -> Result<Cow<'a, [u8]>, DataError> {
    match method {
        METHOD_STORED => {
            if raw.len() > limit {
                return Err(DataError::TooLarge);
            }
            Ok(raw)
        }
        METHOD_DEFLATE => match miniz_oxide::inflate::decompress_to_vec_with_limit(&raw, limit) {
            Ok(v) => Ok(Cow::Owned(v)),
            Err(err) if err.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput => Err(DataError::TooLarge),
            Err(err) => {
                // Truncated streams still give the loader (and us) their first bytes.
                if !err.output.is_empty() && err.status == miniz_oxide::inflate::TINFLStatus::FailedCannotMakeProgress {
                    Ok(Cow::Owned(err.output))
                } else {
                    Err(DataError::Corrupt(format!("deflate error: {:?}", err.status)))
                }
            }
        },
        m => Err(DataError::Method(m)),
    }
}

/// The first up to `n` bytes of a member, decompressing only that much.
fn decode_prefix(raw: &[u8], method: u16, n: usize) -> Option<Vec<u8>> {
    match method {
        METHOD_STORED => Some(raw[..raw.len().min(n)].to_vec()),
        METHOD_DEFLATE => match miniz_oxide::inflate::decompress_to_vec_with_limit(raw, n) {
            Ok(v) => Some(v),
            Err(err) => (!err.output.is_empty()).then_some(err.output),
        },
        _ => None,
    }
}

/// Where an archive's bytes are: in memory, or in a file read by position (only the members
/// asked for are read).
#[derive(Clone, Copy)]
pub(crate) enum Archive<'a> {
    Mem(&'a [u8]),
    /// Only with an index from [`read_index_at`] (no member of unknown size).
    File(&'a FileSrc),
}

impl<'a> Archive<'a> {
    /// Length of a member's raw bytes.
    pub(crate) fn raw_len(&self, e: &Entry) -> usize {
        match self {
            Archive::Mem(d) => raw_data(d, e).len(),
            Archive::File(src) => {
                let left = usize::try_from(src.len()).unwrap_or(usize::MAX).saturating_sub(e.data_start);
                usize::try_from(e.compressed_size).unwrap_or(usize::MAX).min(left)
            }
        }
    }

    /// The first `n` raw bytes of a member (all of them if `n` is larger); empty if unreadable.
    fn raw(&self, e: &Entry, n: usize) -> Cow<'a, [u8]> {
        match self {
            Archive::Mem(d) => {
                let raw = raw_data(d, e);
                Cow::Borrowed(&raw[..raw.len().min(n)])
            }
            Archive::File(src) => {
                let n = self.raw_len(e).min(n);
                Cow::Owned(src.read_vec(e.data_start as u64, n).unwrap_or_default())
            }
        }
    }

    /// A member's bytes, decompressed (at most `limit` of them).
    pub(crate) fn member_data(&self, e: &Entry, limit: usize) -> Result<Cow<'a, [u8]>, DataError> {
        if e.method == METHOD_STORED && self.raw_len(e) > limit {
            return Err(DataError::TooLarge);
        }
        decode(self.raw(e, usize::MAX), e.method, limit)
    }

    /// The first up to `n` bytes of a member, decompressing only that much.
    pub(crate) fn member_prefix(&self, e: &Entry, n: usize) -> Option<Vec<u8>> {
        // A stored member's prefix is its first bytes; a deflated one is decoded from the start.
        let raw_n = if e.method == METHOD_STORED { n } else { usize::MAX };
        decode_prefix(&self.raw(e, raw_n), e.method, n)
    }
}

/// CRC-32 (IEEE) of `data`, to report (not enforce) mismatches.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}
