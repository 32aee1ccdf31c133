//! safetensors: an 8-byte little-endian header length N, N bytes of JSON header, then the data
//! buffer. Nothing in it is executed by a loader, so the risks are a malformed layout (loaders
//! that disagree on it, or crash on it) and metadata that other tools render (chat templates).
//! The checks follow the reference implementation's `validate`: every tensor's byte range
//! matches its shape and dtype, and the ranges tile the buffer with no overlap and no hole.

use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;

use crate::container::Ctx;
use crate::report::{RuleId, Severity};
use crate::template;
use crate::text::shorten as esc;

/// The reference implementation refuses headers over 100 MiB.
const MAX_HEADER: u64 = 100 << 20;

/// Whether `data` looks like safetensors: a JSON object right after the length, and the length
/// within the file. `strong` also requires the header to fit, so that it may take precedence over
/// the two-byte magics of zlib and gzip (which a header length can spell by chance).
pub(crate) fn looks_like(data: &[u8], strong: bool) -> bool {
    let Some(n) = header_len(data) else { return false };
    if data.get(8) != Some(&b'{') {
        return false;
    }
    if strong {
        (2..=MAX_HEADER).contains(&n) && n <= (data.len() as u64).saturating_sub(8)
    } else {
        // A plausible (if too large) length: the top half of the u64 is zero.
        n >> 32 == 0
    }
}

fn header_len(data: &[u8]) -> Option<u64> {
    let b: [u8; 8] = data.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// Bits per element, for the dtypes the reference implementation knows.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" | "F8_E4M3FNUZ" | "F8_E5M2FNUZ" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "C64" | "F64" | "I64" | "U64" => 64,
        _ => return None,
    })
}

/// A JSON object's entries in file order, duplicates kept (serde_json's map keeps only the last,
/// and a header whose keys repeat is read differently by different parsers).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

struct Tensor {
    name: String,
    begin: u64,
    end: u64,
}

/// Scan a safetensors file. Returns true if it is well-formed.
pub(crate) fn scan(ctx: &mut Ctx<'_>, data: &[u8], member: &str) -> bool {
    match check(ctx, data, member) {
        Ok(()) => true,
        Err((msg, offset)) => {
            ctx.add(RuleId::SAFETENSORS_MALFORMED, Severity::Low, msg, member, Some(offset));
            false
        }
    }
}

type Fail = (String, u64);

fn check(ctx: &mut Ctx<'_>, data: &[u8], member: &str) -> Result<(), Fail> {
    let n = header_len(data).ok_or_else(|| ("file shorter than the 8-byte header length".to_string(), 0))?;
    let available = (data.len() as u64).saturating_sub(8);
    if n > MAX_HEADER {
        return Err((format!("header length {n} exceeds the 100 MiB limit"), 0));
    }
    if n > available {
        return Err((format!("header length {n} exceeds the {available} bytes after it"), 0));
    }
    // `n <= available < data.len()`, so the conversion and the slice cannot fail.
    let header_end = 8 + usize::try_from(n).map_err(|_| ("header length overflows".to_string(), 0))?;
    let header = data.get(8..header_end).ok_or_else(|| ("header out of bounds".to_string(), 0))?;
    if std::str::from_utf8(header).is_err() {
        return Err(("header is not valid UTF-8".into(), 8));
    }
    if header.first() != Some(&b'{') {
        return Err(("header does not start with `{`".into(), 8));
    }
    let entries: Entries =
        serde_json::from_slice(header).map_err(|e| (format!("header is not a valid JSON object: {e}"), 8))?;
    let buffer_len = (data.len() - header_end) as u64;

    let mut seen = std::collections::HashSet::new();
    let mut tensors = Vec::with_capacity(entries.0.len());
    for (name, value) in entries.0 {
        if !seen.insert(name.clone()) {
            return Err((format!("duplicate header key `{}`", esc(&name)), 8));
        }
        if name == "__metadata__" {
            metadata(ctx, &value, member)?;
            continue;
        }
        tensors.push(tensor(&name, &value, buffer_len)?);
    }

    // The ranges must tile the buffer: sorted by start, each begins where the previous ended.
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut pos = 0u64;
    for t in &tensors {
        if t.begin < pos {
            return Err((format!("tensor `{}` overlaps the previous tensor (starts at {})", esc(&t.name), t.begin), 8));
        }
        if t.begin > pos {
            return Err((format!("hole in the data buffer: bytes {pos}..{} belong to no tensor", t.begin), 8));
        }
        pos = t.end;
    }
    if pos != buffer_len {
        return Err((format!("data buffer is {buffer_len} bytes but tensors cover only {pos}"), header_end as u64));
    }
    Ok(())
}

fn tensor(name: &str, value: &Value, buffer_len: u64) -> Result<Tensor, Fail> {
    let bad = |what: &str| (format!("tensor `{}`: {what}", esc(name)), 8u64);
    let obj = value.as_object().ok_or_else(|| bad("entry is not an object"))?;
    let dtype = obj.get("dtype").and_then(Value::as_str).ok_or_else(|| bad("missing or non-string `dtype`"))?;
    let bits = dtype_bits(dtype).ok_or_else(|| bad(&format!("unknown dtype `{}`", esc(dtype))))?;
    let shape = obj.get("shape").and_then(Value::as_array).ok_or_else(|| bad("missing or non-array `shape`"))?;
    let mut elements: u64 = 1;
    for d in shape {
        let d = d.as_u64().ok_or_else(|| bad("shape holds something other than a non-negative integer"))?;
        elements = elements.checked_mul(d).ok_or_else(|| bad("element count overflows"))?;
    }
    let offsets = obj.get("data_offsets").and_then(Value::as_array).ok_or_else(|| bad("missing `data_offsets`"))?;
    let (begin, end) = match offsets.as_slice() {
        [b, e] => (
            b.as_u64().ok_or_else(|| bad("data_offsets are not non-negative integers"))?,
            e.as_u64().ok_or_else(|| bad("data_offsets are not non-negative integers"))?,
        ),
        _ => return Err(bad("data_offsets is not a [begin, end] pair")),
    };
    if begin > end {
        return Err(bad(&format!("data_offsets begin {begin} > end {end}")));
    }
    if end > buffer_len {
        return Err(bad(&format!("data_offsets end {end} is past the {buffer_len}-byte data buffer")));
    }
    let total_bits = elements.checked_mul(bits).ok_or_else(|| bad("byte size overflows"))?;
    if total_bits % 8 != 0 {
        return Err(bad("sub-byte dtype does not end on a byte boundary"));
    }
    if total_bits / 8 != end - begin {
        return Err(bad(&format!(
            "{} bytes in data_offsets, but shape and dtype `{}` need {}",
            end - begin,
            esc(dtype),
            total_bits / 8
        )));
    }
    Ok(Tensor { name: name.to_string(), begin, end })
}

/// `__metadata__` must map strings to strings; keys that other tools act on are noted.
fn metadata(ctx: &mut Ctx<'_>, value: &Value, member: &str) -> Result<(), Fail> {
    // The reference implementation reads it as an optional map: `null` is no metadata.
    if value.is_null() {
        return Ok(());
    }
    let obj = value.as_object().ok_or_else(|| ("`__metadata__` is not an object".to_string(), 8))?;
    for (key, v) in obj {
        let text = v.as_str().ok_or_else(|| (format!("`__metadata__` value of `{}` is not a string", esc(key)), 8))?;
        if !worth_review(key) {
            continue;
        }
        let patterns = template::risky_patterns(text);
        // Loaders of safetensors never render metadata; only tools built on top might, so a
        // dangerous-looking template is worth a look, not a block.
        let (severity, extra) = if patterns.is_empty() {
            (Severity::Info, String::new())
        } else {
            (
                Severity::Low,
                format!("; contains {}", patterns.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")),
            )
        };
        ctx.add(
            RuleId::SAFETENSORS_METADATA,
            severity,
            format!("metadata key `{}` ({} bytes) is worth review{extra}", esc(key), text.len()),
            member,
            Some(8),
        );
    }
    Ok(())
}

/// Metadata keys that hold templates or code-like content for tools downstream.
fn worth_review(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["template", "code", "script", "auto_map", "remote", "module", "exec", "jinja"].iter().any(|w| k.contains(w))
}
