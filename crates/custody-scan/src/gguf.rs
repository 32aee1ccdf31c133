//! GGUF (llama.cpp / ggml, versions 2 and 3): a header, metadata key/value pairs, tensor
//! infos, then the aligned data section. Loading executes nothing, but the metadata carries the
//! Jinja chat template that inference servers render, so templates are reported for review and
//! elevated when they look like a sandbox escape. The layout is checked the way llama.cpp's
//! reader checks it (counts, string lengths, dimensions, alignment, tensor bounds), with every
//! count bounded by the bytes left so that a lying header cannot make us allocate.

use std::collections::HashSet;

use crate::container::Ctx;
use crate::report::{RuleId, Severity};
use crate::template;
use crate::text::shorten as esc;

const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`: llama.cpp rejects more.
const MAX_DIMS: u32 = 4;
/// Arrays nested deeper than this are not written by any tool; the limit bounds recursion.
const MAX_ARRAY_DEPTH: u32 = 8;

const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

/// (block size in elements, bytes per block) of a ggml tensor type, where known. Q8_1 is left
/// out on purpose: ggml (36 bytes) and gguf-py (40) disagree, and it is never a storage type.
fn type_size(t: u32) -> Option<(u64, u64)> {
    Some(match t {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        40 => (64, 36),   // NVFP4
        41 => (128, 18),  // Q1_0
        _ => return None,
    })
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

type Res<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn remaining(&self) -> u64 {
        (self.data.len() - self.pos.min(self.data.len())) as u64
    }

    fn take(&mut self, n: u64) -> Res<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| "length overflows".to_string())?;
        let end = self.pos.checked_add(n).ok_or("length overflows")?;
        let s = self.data.get(self.pos..end).ok_or_else(|| format!("truncated: {n} bytes needed at {}", self.pos))?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let s = self.take(N as u64)?;
        s.try_into().map_err(|_| "truncated".to_string())
    }

    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Res<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Res<&'a [u8]> {
        let n = self.u64()?;
        if n > self.remaining() {
            return Err(format!("string length {n} at {} exceeds the file", self.pos - 8));
        }
        self.take(n)
    }
}

/// A metadata value, as far as we keep it.
enum Val<'a> {
    Int(u64),
    Str(&'a [u8]),
    Other,
}

fn fixed_size(t: u32) -> Option<u64> {
    Some(match t {
        T_U8 | T_I8 | T_BOOL => 1,
        T_U16 | T_I16 => 2,
        T_U32 | T_I32 | T_F32 => 4,
        T_U64 | T_I64 | T_F64 => 8,
        _ => return None,
    })
}

fn value<'a>(r: &mut Reader<'a>, t: u32, depth: u32) -> Res<Val<'a>> {
    if let Some(size) = fixed_size(t) {
        let b = r.take(size)?;
        let mut le = [0u8; 8];
        if let Some(dst) = le.get_mut(..b.len()) {
            dst.copy_from_slice(b);
        }
        let v = u64::from_le_bytes(le);
        return Ok(match t {
            T_U8 | T_U16 | T_U32 | T_U64 => Val::Int(v),
            _ => Val::Other,
        });
    }
    match t {
        T_STRING => Ok(Val::Str(r.string()?)),
        T_ARRAY => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(format!("arrays nested deeper than {MAX_ARRAY_DEPTH}"));
            }
            let et = r.u32()?;
            let n = r.u64()?;
            let min = match et {
                T_STRING => 8,
                T_ARRAY => 12,
                _ => fixed_size(et).ok_or_else(|| format!("unknown array element type {et}"))?,
            };
            let need = n.checked_mul(min).ok_or("array length overflows")?;
            if need > r.remaining() {
                return Err(format!("array of {n} elements exceeds the file"));
            }
            if let Some(size) = fixed_size(et) {
                r.take(n * size)?;
            } else {
                for _ in 0..n {
                    value(r, et, depth + 1)?;
                }
            }
            Ok(Val::Other)
        }
        _ => Err(format!("unknown value type {t}")),
    }
}

struct TensorInfo {
    name: String,
    offset: u64,
    size: Option<u64>,
}

/// Scan a GGUF file. Returns true if it parsed fully.
pub(crate) fn scan(ctx: &mut Ctx<'_>, data: &[u8], member: &str) -> bool {
    let mut r = Reader { data, pos: 0 };
    match parse(ctx, &mut r, member) {
        Ok(()) => true,
        Err(msg) => {
            let at = r.pos as u64;
            ctx.add(RuleId::GGUF_MALFORMED, Severity::Low, format!("invalid GGUF: {msg}"), member, Some(at));
            false
        }
    }
}

fn parse(ctx: &mut Ctx<'_>, r: &mut Reader<'_>, member: &str) -> Res<()> {
    r.take(4)?; // magic, checked by detection
    let version = r.u32()?;
    if version != 2 && version != 3 {
        let hint = if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
            " (big-endian files are not supported)"
        } else {
            ""
        };
        return Err(format!("unsupported version {version}{hint}"));
    }
    let tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    // The smallest key/value pair is 13 bytes (empty key, type, one-byte value); the smallest
    // tensor info 24 (empty name, no dimensions, type, offset).
    if kv_count.checked_mul(13).is_none_or(|n| n > r.remaining()) {
        return Err(format!("metadata count {kv_count} cannot fit in the file"));
    }
    if tensor_count.checked_mul(24).is_none_or(|n| n > r.remaining()) {
        return Err(format!("tensor count {tensor_count} cannot fit in the file"));
    }

    let mut alignment = DEFAULT_ALIGNMENT;
    let mut keys = HashSet::new();
    let mut templates = Vec::new();
    for _ in 0..kv_count {
        let key_at = r.pos as u64;
        let key = String::from_utf8_lossy(r.string()?).into_owned();
        let t = r.u32()?;
        let v = value(r, t, 0)?;
        if !keys.insert(key.clone()) {
            // llama.cpp refuses duplicate keys; other readers keep the first or the last.
            return Err(format!("duplicate metadata key `{}`", esc(&key)));
        }
        if key == "general.alignment" {
            alignment = match v {
                Val::Int(a) if a > 0 && a.is_power_of_two() => a,
                Val::Int(a) => return Err(format!("general.alignment {a} is not a power of two")),
                _ => return Err("general.alignment is not an unsigned integer".into()),
            };
        } else if key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.") {
            match v {
                Val::Str(s) => templates.push((key, String::from_utf8_lossy(s).into_owned(), key_at)),
                _ => return Err(format!("`{}` is not a string", esc(&key))),
            }
        }
    }

    let mut names = HashSet::new();
    let mut tensors = Vec::new();
    let mut unknown_types = Vec::new();
    for _ in 0..tensor_count {
        let name = String::from_utf8_lossy(r.string()?).into_owned();
        let n_dims = r.u32()?;
        if n_dims > MAX_DIMS {
            return Err(format!("tensor `{}` has {n_dims} dimensions (at most {MAX_DIMS})", esc(&name)));
        }
        let mut dims = [1u64; MAX_DIMS as usize];
        let mut elements: u64 = 1;
        for d in dims.iter_mut().take(n_dims as usize) {
            *d = r.u64()?;
            // llama.cpp keeps the element count within int64.
            elements = elements
                .checked_mul(*d)
                .filter(|&e| e <= i64::MAX as u64)
                .ok_or_else(|| format!("tensor `{}`: element count overflows", esc(&name)))?;
        }
        let ty = r.u32()?;
        let offset = r.u64()?;
        let size = match type_size(ty) {
            Some((block, bytes)) => {
                if dims[0] % block != 0 {
                    return Err(format!(
                        "tensor `{}`: first dimension {} is not a multiple of the block size {block} of type {ty}",
                        esc(&name),
                        dims[0]
                    ));
                }
                Some((elements / block).checked_mul(bytes).ok_or("tensor size overflows")?)
            }
            None => {
                unknown_types.push(ty);
                None
            }
        };
        if !names.insert(name.clone()) {
            return Err(format!("duplicate tensor name `{}`", esc(&name)));
        }
        if offset % alignment != 0 {
            return Err(format!(
                "tensor `{}`: offset {offset} is not a multiple of the alignment {alignment}",
                esc(&name)
            ));
        }
        tensors.push(TensorInfo { name, offset, size });
    }

    // The data section starts at the next multiple of the alignment.
    let data_start = (r.pos as u64).div_ceil(alignment).checked_mul(alignment).ok_or("data offset overflows")?;
    let data_len = (r.data.len() as u64).saturating_sub(data_start);
    tensors.sort_by_key(|t| t.offset);
    let mut prev_end = 0u64;
    let mut prev_name = "";
    for t in &tensors {
        if t.offset < prev_end {
            return Err(format!("tensor `{}` overlaps tensor `{}`", esc(&t.name), esc(prev_name)));
        }
        let end = match t.size {
            Some(s) => t.offset.checked_add(s).ok_or("tensor end overflows")?,
            None => t.offset,
        };
        if end > data_len || (t.size.is_none() && t.offset > data_len) {
            return Err(format!(
                "tensor `{}` (bytes {}..{end} of the data section) is past the end of the {data_len}-byte data section",
                esc(&t.name),
                t.offset
            ));
        }
        if t.size.is_some() {
            prev_end = end;
            prev_name = &t.name;
        }
    }

    if !unknown_types.is_empty() {
        unknown_types.sort_unstable();
        unknown_types.dedup();
        ctx.add(
            RuleId::GGUF_NOTE,
            Severity::Info,
            format!("tensor types of unknown size {unknown_types:?}: their sizes and overlaps were not checked"),
            member,
            None,
        );
    }
    for (key, text, at) in templates {
        chat_template(ctx, &key, &text, member, at);
    }
    Ok(())
}

fn chat_template(ctx: &mut Ctx<'_>, key: &str, text: &str, member: &str, at: u64) {
    let found = template::findings(text);
    let severity = found.iter().map(|(_, s)| *s).max().unwrap_or(Severity::Low).max(Severity::Low);
    let mut msg = format!("chat template `{}` ({} bytes) is rendered by Jinja at inference", esc(key), text.len());
    if found.is_empty() {
        msg.push_str("; review it");
    } else {
        let list: Vec<String> = found.iter().map(|(p, _)| format!("`{p}`")).collect();
        msg.push_str(&format!("; it contains template-injection patterns: {}", list.join(", ")));
    }
    ctx.add(RuleId::GGUF_CHAT_TEMPLATE, severity, msg, member, Some(at));
}
