//! Generated inputs for the tests that compare `scan_path` with `scan_bytes`: pickle streams
//! whose payloads have sizes around given thresholds (read windows), payloads that hide
//! pickles (raw, base64, Latin-1), `str` payloads valid or not, joblib arrays, truncation and
//! trailing data; and zips in torch's layout with the tricks the whole-file path tolerates.
//! Shared with the crate's unit tests (`src/path_tests.rs`), which use tiny windows.

#![allow(dead_code)]

/// A small deterministic generator (splitmix64), so every case is reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// protocol 4: `builtins.eval("print('hi')")`.
pub const EVIL: &[u8] = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x0bprint('hi')\x85R.";

/// A size: tiny, just around one of `thresholds`, or anything up to twice the largest.
pub fn size(r: &mut Rng, thresholds: &[usize]) -> usize {
    match r.below(4) {
        0 => r.below(16),
        1 | 2 => {
            let t = *r.pick(thresholds);
            (t + r.below(9)).saturating_sub(4)
        }
        _ => r.below(2 * thresholds.iter().copied().max().unwrap_or(16) + 1),
    }
}

fn base64(data: &[u8]) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for c in data.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i)) as usize & 63]);
        }
    }
    while out.len() % 4 != 0 {
        out.push(b'=');
    }
    out
}

fn latin1_as_utf8(data: &[u8]) -> Vec<u8> {
    data.iter().map(|&b| char::from(b)).collect::<String>().into_bytes()
}

/// Text with multi-byte characters and encoded surrogates (which CPython accepts), at any
/// position, so they straddle read boundaries.
fn text(r: &mut Rng, n: usize, broken: bool) -> Vec<u8> {
    let pieces: [&[u8]; 6] = [b"a", b"xyz", "é".as_bytes(), "中".as_bytes(), "😀".as_bytes(), b"\xed\xa0\x80"];
    let mut out = Vec::with_capacity(n + 4);
    while out.len() < n {
        out.extend_from_slice(pieces[r.below(pieces.len())]);
    }
    if broken && !out.is_empty() {
        let at = r.below(out.len());
        match r.below(3) {
            0 => out[at] = 0xff,
            1 => out.truncate(at.max(1)),
            _ => out.insert(at, 0xed),
        }
        if r.chance(30) {
            out.push(*r.pick(&[0xc3u8, 0xe4, 0xf0, 0xed]));
        }
    }
    out
}

/// A payload of about `n` bytes of some kind.
pub fn payload(r: &mut Rng, n: usize) -> Vec<u8> {
    let mut p = match r.below(9) {
        0 => r.bytes(n),
        1 => vec![0; n],
        2 => EVIL.to_vec(),
        3 => base64(EVIL),
        4 => latin1_as_utf8(EVIL),
        5 => text(r, n, false),
        6 => text(r, n, true),
        7 => b"gAR".to_vec(),
        _ => vec![0x80, r.below(7) as u8],
    };
    if p.len() < n {
        let fill = if r.chance(50) { b'A' } else { r.next() as u8 };
        p.resize(n, fill);
    }
    p
}

fn len_prefixed(op: u8, width: usize, data: &[u8]) -> Vec<u8> {
    let mut v = vec![op];
    v.extend_from_slice(&(data.len() as u64).to_le_bytes()[..width]);
    v.extend_from_slice(data);
    v
}

fn short_str(s: &str) -> Vec<u8> {
    len_prefixed(0x8c, 1, s.as_bytes())
}

const CALLEES: &[(&str, &str)] = &[
    ("builtins", "eval"),
    ("pickle", "loads"),
    ("_pickle", "loads"),
    ("collections", "OrderedDict"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("os", "system"),
    ("_codecs", "encode"),
];

fn sized_payload(r: &mut Rng, t: &[usize], max: usize) -> Vec<u8> {
    let n = size(r, t).min(max);
    payload(r, n)
}

/// Opcodes that push exactly one value.
fn value(r: &mut Rng, t: &[usize], depth: usize) -> Vec<u8> {
    let kind = if depth > 2 { r.below(9) } else { r.below(17) };
    match kind {
        0 => len_prefixed(0x8e, 8, &sized_payload(r, t, usize::MAX)),
        1 => len_prefixed(0x8d, 8, &sized_payload(r, t, usize::MAX)),
        2 => len_prefixed(b'B', 4, &sized_payload(r, t, usize::MAX)),
        3 => len_prefixed(b'X', 4, &sized_payload(r, t, usize::MAX)),
        4 => len_prefixed(b'C', 1, &sized_payload(r, t, 255)),
        5 => len_prefixed(b'T', 4, &sized_payload(r, t, usize::MAX)),
        6 => len_prefixed(0x96, 8, &sized_payload(r, t, usize::MAX)),
        7 => len_prefixed(0x8c, 1, &sized_payload(r, t, 255)),
        8 => {
            // Protocol 0: a quoted STRING or a raw-unicode-escape UNICODE line, long or not.
            let n = size(r, t);
            let body: Vec<u8> = (0..n).map(|i| b"abcXYZ  \\x41"[i % 12]).collect();
            let mut v = if r.chance(50) { b"S'".to_vec() } else { b"V".to_vec() };
            v.extend_from_slice(&body);
            if v[0] == b'S' {
                v.push(b'\'');
            }
            v.push(b'\n');
            v
        }
        9 | 10 => {
            let (m, n) = *r.pick(CALLEES);
            let mut v = if r.chance(50) {
                format!("c{m}\n{n}\n").into_bytes()
            } else {
                [short_str(m), short_str(n), vec![0x93]].concat()
            };
            v.extend(value(r, t, depth + 1));
            v.extend_from_slice(b"\x85R");
            v
        }
        11 => {
            let mut v = value(r, t, depth + 1);
            v.extend_from_slice(b"\x94h\x00");
            v
        }
        12 => r.pick(&[&b"I123\n"[..], b"L99999999999999999999L\n", b"F1.5\n", b"I01\n", b"Ix\n"]).to_vec(),
        13 => {
            let n = if r.chance(50) { r.below(9) } else { size(r, t) };
            len_prefixed(0x8b, 4, &r.bytes(n))
        }
        14 => joblib_array(r, t),
        15 => {
            // A GLOBAL whose lines are long enough to cross read windows.
            let m = "m".repeat(size(r, t));
            format!("c{m}\nname\n").into_bytes()
        }
        _ => [b"G".to_vec(), r.bytes(8)].concat(),
    }
}

/// joblib's `NumpyArrayWrapper`: BUILD, then the array's bytes inline (or a whole pickle for
/// an object array).
fn joblib_array(r: &mut Rng, t: &[usize]) -> Vec<u8> {
    let object = r.chance(20);
    let n = size(r, t) / 4;
    let mut v = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(".to_vec();
    v.extend(short_str("dtype"));
    v.extend_from_slice(b"cnumpy\ndtype\n");
    v.extend(short_str(if object { "O8" } else { "f4" }));
    v.extend_from_slice(b"\x85R");
    v.extend(short_str("shape"));
    v.push(b'J');
    v.extend_from_slice(&(n as u32).to_le_bytes());
    v.push(0x85);
    let aligned = r.chance(50);
    if aligned {
        v.extend(short_str("numpy_array_alignment_bytes"));
        v.extend_from_slice(b"K\x10");
    }
    v.extend_from_slice(b"ub");
    if aligned {
        let pad = r.below(16);
        v.push(pad as u8);
        v.extend(vec![0xff; pad]);
    }
    if object {
        v.extend_from_slice(if r.chance(50) { EVIL } else { b"\x80\x04]." });
    } else {
        v.extend(payload(r, n * 4));
    }
    v
}

/// One pickle: `PROTO`, a list of generated values, `STOP`.
pub fn one_pickle(r: &mut Rng, t: &[usize]) -> Vec<u8> {
    let mut body = b"]".to_vec();
    let count = 1 + r.below(4);
    body.push(b'(');
    for _ in 0..count {
        body.extend(value(r, t, 0));
    }
    body.extend_from_slice(b"e.");
    let mut v = vec![0x80, 2 + r.below(4) as u8];
    if r.chance(20) {
        // A frame of the right length, or a wrong one.
        let len = if r.chance(70) { body.len() } else { r.below(body.len() * 2 + 2) };
        v.push(0x95);
        v.extend_from_slice(&(len as u64).to_le_bytes());
    }
    v.extend(body);
    v
}

/// A pickle stream: one or more pickles, maybe trailing data, maybe cut or damaged.
pub fn pickle_stream(r: &mut Rng, t: &[usize]) -> Vec<u8> {
    let mut v = one_pickle(r, t);
    match r.below(6) {
        0 => v.extend(one_pickle(r, t)),
        1 => v.extend(EVIL),
        2 => v.extend(sized_payload(r, t, usize::MAX)),
        _ => {}
    }
    if r.chance(25) {
        let cut = r.below(v.len());
        v.truncate(cut.max(2));
    }
    if r.chance(10) {
        let at = r.below(v.len());
        v[at] = r.next() as u8;
    }
    v
}

/// One zip member as written: name in the local header may differ from the central one.
struct Member {
    name: String,
    local_name: String,
    data: Vec<u8>,
    raw: Vec<u8>,
    method: u16,
    flags: u16,
    crc: u32,
    extra: Vec<u8>,
    descriptor: bool,
}

fn member(r: &mut Rng, name: &str, data: Vec<u8>) -> Member {
    let deflate = r.chance(20);
    let raw = if deflate { miniz_oxide::deflate::compress_to_vec(&data, 6) } else { data.clone() };
    // torch pads the local extra field so data is 64-byte aligned.
    let extra = if r.chance(50) {
        let pad = r.below(64);
        [b"FB".to_vec(), (pad as u16).to_le_bytes().to_vec(), vec![b'Z'; pad]].concat()
    } else {
        Vec::new()
    };
    Member {
        name: name.to_string(),
        local_name: name.to_string(),
        crc: crc32fast::hash(&data),
        data,
        raw,
        method: if deflate { 8 } else { 0 },
        flags: 0,
        extra,
        descriptor: false,
    }
}

fn local_header(m: &Member) -> Vec<u8> {
    let mut v = b"PK\x03\x04\x14\x00".to_vec();
    v.extend_from_slice(&m.flags.to_le_bytes());
    v.extend_from_slice(&m.method.to_le_bytes());
    v.extend_from_slice(&[0; 4]);
    let (crc, size) = if m.descriptor { (0, 0) } else { (m.crc, m.raw.len() as u32) };
    v.extend_from_slice(&crc.to_le_bytes());
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(&(if m.descriptor { 0 } else { m.data.len() as u32 }).to_le_bytes());
    v.extend_from_slice(&(m.local_name.len() as u16).to_le_bytes());
    v.extend_from_slice(&(m.extra.len() as u16).to_le_bytes());
    v.extend_from_slice(m.local_name.as_bytes());
    v.extend_from_slice(&m.extra);
    v
}

fn central_entry(m: &Member, offset: u32) -> Vec<u8> {
    let mut v = b"PK\x01\x02\x14\x00\x14\x00".to_vec();
    v.extend_from_slice(&m.flags.to_le_bytes());
    v.extend_from_slice(&m.method.to_le_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&m.crc.to_le_bytes());
    v.extend_from_slice(&(m.raw.len() as u32).to_le_bytes());
    v.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
    v.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
    v.extend_from_slice(&[0; 12]);
    v.extend_from_slice(&offset.to_le_bytes());
    v.extend_from_slice(m.name.as_bytes());
    v
}

/// Ways a zip can differ from the plain layout, as bits of a mask.
pub mod trick {
    pub const PREPEND: u32 = 1;
    pub const HIDDEN_GAP: u32 = 2;
    pub const NAME_MISMATCH: u32 = 4;
    pub const BAD_CRC: u32 = 8;
    pub const ENCRYPTED_FLAG: u32 = 16;
    pub const DESCRIPTOR: u32 = 32;
    pub const ODD_METHOD: u32 = 64;
    pub const COMMENT: u32 = 128;
    pub const TRAILING: u32 = 256;
    pub const TRUNCATE: u32 = 512;
    pub const DUPLICATE: u32 = 1024;
    pub const WRONG_COUNT: u32 = 2048;
    pub const WRONG_OFFSET: u32 = 4096;
    pub const ODD_FLAGS: u32 = 8192;
}

/// A torch-style checkpoint: `archive/data.pkl`, a storage, small metadata members.
pub fn torch_members(r: &mut Rng, t: &[usize], pkl: Vec<u8>, storage: usize) -> Vec<(String, Vec<u8>)> {
    let mut s = r.bytes(storage);
    if r.chance(10) && !s.is_empty() {
        s[0] = 0x80;
    }
    let mut members = vec![("archive/data.pkl".to_string(), pkl), ("archive/byteorder".into(), b"little".to_vec())];
    members.push(("archive/data/0".into(), s));
    members.push(("archive/version".into(), b"3\n".to_vec()));
    if r.chance(20) {
        members.push(("archive/extra.pkl".into(), pickle_stream(r, t)));
    }
    if r.chance(10) {
        // A Keras archive's documents (read by name, through the same member reader).
        members.push(("metadata.json".into(), br#"{"keras_version": "3.1.0"}"#.to_vec()));
        let config = br#"{"class_name": "Lambda", "config": {"function": "exec"}}"#;
        members.push(("config.json".into(), config.to_vec()));
    }
    if r.chance(10) {
        members.push(("model.npy".into(), b"\x93NUMPY\x01\x00\x76\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }                                                                          \n\x80\x04]."[..].to_vec()));
    }
    members
}

/// A zip of `members` with the tricks in `mask` (each applied to a random member).
pub fn zip_with(r: &mut Rng, members: Vec<(String, Vec<u8>)>, mask: u32) -> Vec<u8> {
    let mut ms: Vec<Member> = members.into_iter().map(|(n, d)| member(r, &n, d)).collect();
    let k = r.below(ms.len());
    if mask & trick::NAME_MISMATCH != 0 {
        ms[k].local_name = "innocent.txt".into();
    }
    if mask & trick::BAD_CRC != 0 {
        ms[k].crc ^= 1;
    }
    if mask & trick::ENCRYPTED_FLAG != 0 {
        ms[k].flags |= 1;
    }
    if mask & trick::ODD_FLAGS != 0 {
        ms[k].flags |= 0x0800 | 0x0002;
    }
    if mask & trick::DESCRIPTOR != 0 {
        ms[k].flags |= 8;
        ms[k].descriptor = true;
    }
    if mask & trick::ODD_METHOD != 0 {
        ms[k].method = 12;
    }
    let mut out = Vec::new();
    if mask & trick::PREPEND != 0 {
        let n = 1 + r.below(40);
        out.extend(r.bytes(n));
    }
    let mut offsets = Vec::new();
    for (i, m) in ms.iter().enumerate() {
        if mask & trick::HIDDEN_GAP != 0 && i == k {
            let hidden = member(r, "hidden.pkl", EVIL.to_vec());
            out.extend(local_header(&hidden));
            out.extend(&hidden.raw);
        }
        offsets.push(out.len() as u32);
        out.extend(local_header(m));
        out.extend(&m.raw);
        if m.descriptor {
            if r.chance(50) {
                out.extend_from_slice(b"PK\x07\x08");
            }
            out.extend_from_slice(&m.crc.to_le_bytes());
            out.extend_from_slice(&(m.raw.len() as u32).to_le_bytes());
            out.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
        }
    }
    let cd_offset = out.len();
    let mut count = ms.len();
    for (m, &off) in ms.iter().zip(&offsets) {
        let off = if mask & trick::WRONG_OFFSET != 0 && std::ptr::eq(m, &ms[k]) { off + 7 } else { off };
        out.extend(central_entry(m, off));
    }
    if mask & trick::DUPLICATE != 0 {
        out.extend(central_entry(&ms[k], offsets[k]));
        count += 1;
    }
    if mask & trick::WRONG_COUNT != 0 {
        count = if r.chance(50) { count + 1 } else { count - 1 };
    }
    let cd_size = out.len() - cd_offset;
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&(count as u16).to_le_bytes());
    out.extend_from_slice(&(count as u16).to_le_bytes());
    out.extend_from_slice(&(cd_size as u32).to_le_bytes());
    out.extend_from_slice(&(cd_offset as u32).to_le_bytes());
    let comment = if mask & trick::COMMENT != 0 { b"a comment PK\x05\x06".to_vec() } else { Vec::new() };
    out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
    out.extend(comment);
    if mask & trick::TRAILING != 0 {
        let n = 1 + r.below(30);
        out.extend(r.bytes(n));
    }
    if mask & trick::TRUNCATE != 0 {
        let cut = r.below(out.len());
        out.truncate(cut.max(4));
    }
    out
}

/// A generated zip: torch layout, with zero, one or two tricks.
pub fn zip_file(r: &mut Rng, t: &[usize]) -> Vec<u8> {
    let pkl = if r.chance(30) { EVIL.to_vec() } else { pickle_stream(r, t) };
    let storage = size(r, t);
    let members = torch_members(r, t, pkl, storage);
    let mut mask = 0;
    for _ in 0..r.below(3) {
        mask |= 1 << r.below(14);
    }
    zip_with(r, members, mask)
}
