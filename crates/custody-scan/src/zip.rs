//! A minimal, tolerant zip reader that sees archives the way loaders do.
//!
//! PyTorch (miniz) and Python's `zipfile` locate members through the **central directory** and
//! then skip the local header using the *local* name and extra lengths. They do not care about
//! the local name, the file extension, or (torch) the CRC. Attackers use exactly those gaps to
//! hide a pickle from scanners that are stricter than the loader, so this reader is *lenient*:
//! CRC mismatches, local/central name mismatches, odd general-purpose flag bits and unexpected
//! extensions are reported as anomalies, never as reasons to skip a member. When the central
//! directory is missing or broken we fall back to walking local headers.

use std::borrow::Cow;

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

/// Decompress a member's bytes (at most `limit` bytes of output). Stored members are borrowed,
/// not copied. CRCs are deliberately not checked: torch does not check them either.
pub(crate) fn member_data<'a>(data: &'a [u8], e: &Entry, limit: usize) -> Result<Cow<'a, [u8]>, DataError> {
    let raw = raw_data(data, e);
    match e.method {
        METHOD_STORED => {
            if raw.len() > limit {
                return Err(DataError::TooLarge);
            }
            Ok(Cow::Borrowed(raw))
        }
        METHOD_DEFLATE => match miniz_oxide::inflate::decompress_to_vec_with_limit(raw, limit) {
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
pub(crate) fn member_prefix(data: &[u8], e: &Entry, n: usize) -> Option<Vec<u8>> {
    let raw = raw_data(data, e);
    match e.method {
        METHOD_STORED => Some(raw[..raw.len().min(n)].to_vec()),
        METHOD_DEFLATE => match miniz_oxide::inflate::decompress_to_vec_with_limit(raw, n) {
            Ok(v) => Some(v),
            Err(err) => (!err.output.is_empty()).then_some(err.output),
        },
        _ => None,
    }
}

/// CRC-32 (IEEE) of `data`, to report (not enforce) mismatches.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}
