//! Known scanner-bypass classes, each as hand-written opcode bytes (or a hand-built container).
//! Every payload here would run `os.system` (or similar) under CPython's unpickler.

// Tests may panic and print; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::time::{Duration, Instant};

use custody_scan::{FileReport, Format, RuleId, ScanOptions, Severity, Verdict, scan_bytes, scan_pickles};

fn scan(data: &[u8]) -> FileReport {
    scan_bytes("test", data, &ScanOptions::default())
}

fn has_rule(r: &FileReport, rule: RuleId) -> bool {
    r.findings.iter().any(|f| f.rule == rule)
}

fn mentions(r: &FileReport, needle: &str) -> bool {
    r.findings.iter().any(|f| f.message.contains(needle))
}

fn called(r: &FileReport, callee: &str) -> bool {
    r.pickles.iter().any(|p| p.calls.iter().any(|c| c.callee == callee))
}

#[track_caller]
fn assert_malicious(r: &FileReport, needle: &str) {
    assert_eq!(r.verdict, Verdict::Malicious, "{:#?}", r.findings);
    assert!(mentions(r, needle), "no finding mentions `{needle}`: {:#?}", r.findings);
}

/// protocol 4 `os.system("id")` body (without PROTO), for embedding.
const OS_SYSTEM_BODY: &[u8] = b"\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.";

fn os_system_p4() -> Vec<u8> {
    [&b"\x80\x04"[..], OS_SYSTEM_BODY].concat()
}

// ----- memo confusion -----------------------------------------------------------------------

#[test]
fn memo_overwrite_safe_global_with_dangerous_one() {
    // PUT 0 = collections.OrderedDict, then BINPUT 0 = os.system overwrites it; GET 0 is called.
    let p = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93q\x000\
\x8c\x02os\x8c\x06system\x93q\x000\
h\x00\x8c\x02id\x85R.";
    let r = scan(p);
    assert_malicious(&r, "os.system");
    assert!(called(&r, "os.system"), "{:#?}", r.pickles);
    assert!(!called(&r, "collections.OrderedDict"));
}

#[test]
fn memoize_index_is_number_of_filled_slots() {
    // PUT 1 "collections" fills one slot, so MEMOIZE stores at index 1 and *overwrites* it with
    // "os". A scanner that appends MEMOIZE at max+1 resolves GET 1 to "collections".
    let p = b"\x80\x04\x8c\x0bcollectionsq\x010\x8c\x02os\x940h\x01\x8c\x06system\x93\x8c\x02id\x85R.";
    let r = scan(p);
    assert_malicious(&r, "os.system");
    let imp = &r.pickles[0].imports[0];
    assert_eq!((imp.module.as_str(), imp.name.as_str(), imp.operand_from_memo), ("os", "system", true));
}

#[test]
fn stack_global_operands_from_memo_gets() {
    // Text PUT/GET (protocol 0 style) feeding STACK_GLOBAL, decoy strings in between.
    let p = b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0VFloatStorage\np1\n0g2\ng3\n\x93(Vid\ntR.";
    assert_malicious(&scan(p), "os.system");
}

#[test]
fn pop_on_a_mark_pops_the_mark() {
    // After MARK, POP finds the stack top at the mark and pops the *mark* (load_pop), so "os"
    // survives. A scanner that pops "os" sees STACK_GLOBAL("x"...) instead.
    let p = b"\x80\x04\x8c\x02os(0\x8c\x06system\x93\x8c\x02id\x85R.";
    assert_malicious(&scan(p), "os.system");
}

// ----- STACK_GLOBAL fed by string variants --------------------------------------------------

#[test]
fn stack_global_from_string_opcodes() {
    let cases: &[&[u8]] = &[
        // STRING with quotes.
        b"S'os'\nS'system'\n\x93S'id'\n\x85R.",
        // STRING with escapes: 'o\x73' == 'os', "sys\164em" == 'system'.
        b"S'o\\x73'\nS\"sys\\164em\"\n\x93S'id'\n\x85R.",
        // UNICODE raw-unicode-escape: o\u0073.
        b"Vo\\u0073\nVsystem\n\x93Vid\n\x85R.",
        // BINSTRING / SHORT_BINSTRING.
        b"T\x02\x00\x00\x00osU\x06system\x93U\x02id\x85R.",
        // BINUNICODE / BINUNICODE8.
        b"\x80\x04X\x02\x00\x00\x00os\x8d\x06\x00\x00\x00\x00\x00\x00\x00system\x93\x8c\x02id\x85R.",
    ];
    for (i, p) in cases.iter().enumerate() {
        let r = scan(p);
        assert_eq!(r.verdict, Verdict::Malicious, "case {i}: {:#?}", r.findings);
        assert!(mentions(&r, "os.system"), "case {i}: {:#?}", r.findings);
    }
}

#[test]
fn stack_global_with_bytes_operands_is_not_an_import() {
    // BINBYTES operands: CPython raises "STACK_GLOBAL requires str": nothing is imported.
    let p = b"\x80\x04C\x02osC\x06system\x93.";
    let r = scan(p);
    assert!(r.pickles[0].imports.is_empty());
    assert_eq!(r.verdict, Verdict::Inconclusive);
}

// ----- BUILD attribute rewrite --------------------------------------------------------------

#[test]
fn build_rewrites_attribute_of_allowed_global() {
    // collections.OrderedDict is allowed, but BUILD on the class itself rewrites it.
    let dict_state = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93}\x8c\n__reduce__K\x01sb.";
    let r = scan(dict_state);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(has_rule(&r, RuleId::ATTRIBUTE_REWRITE));
    assert_eq!(r.pickles[0].rewrites[0].target, "collections.OrderedDict");
    // Slot-state form: BUILD with (None, {...}) uses setattr, which works on classes.
    let slot_state = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93N}\x8c\x04keysK\x01s\x86b.";
    assert!(has_rule(&scan(slot_state), RuleId::ATTRIBUTE_REWRITE));
}

#[test]
fn setitem_on_imported_global_is_a_rewrite() {
    // os.environ would be denied anyway; use an allowed global to isolate the mutation rule.
    let p = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93\x8c\x01kK\x01s.";
    assert!(has_rule(&scan(p), RuleId::ATTRIBUTE_REWRITE));
}

// ----- dotted names and aliases ---------------------------------------------------------------

fn stack_global(module: &str, name: &str) -> Vec<u8> {
    let mut p = b"\x80\x04".to_vec();
    for s in [module, name] {
        p.push(0x8c);
        p.push(s.len() as u8);
        p.extend_from_slice(s.as_bytes());
    }
    p.extend_from_slice(b"\x93)R.");
    p
}

#[test]
fn dotted_and_aliased_names_match_the_deny_list() {
    let cases = [
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("__builtin__", "eval"),
        ("torch", "load"),
        ("torch", "serialization.load"),
        ("os", "path.join"),
        ("posixpath", "os.system"),
        ("os.path", "exists"),
        ("collections", "OrderedDict.__class__.__base__.__subclasses__"),
        ("torch._utils", "_rebuild_tensor.__globals__"),
        ("numpy", "load"),
        ("operator", "attrgetter"),
        ("_operator", "methodcaller"),
        ("functools", "partial"),
        ("copy_reg", "add_extension"),
        ("httplib", "HTTPConnection"),
    ];
    for (m, n) in cases {
        let r = scan(&stack_global(m, n));
        assert_eq!(r.verdict, Verdict::Malicious, "{m}.{n}: {:#?}", r.findings);
    }
    // An unknown module is suspicious, never clean.
    assert_eq!(scan(&stack_global("mypkg.models", "Net")).verdict, Verdict::Suspicious);
}

// ----- protocol-0 text opcodes ------------------------------------------------------------------

#[test]
fn inst_and_global_text_forms() {
    assert_malicious(&scan(b"(S'id'\nios\nsystem\n."), "os.system");
    assert_malicious(&scan(b"cos\nsystem\n(S'id'\ntR."), "os.system");
    // Benign protocol-0 numbers and strings parse cleanly.
    let benign = b"(I01\nI-42\nI0x10\nL12345678901234567890L\nF1.5e3\nS'a\\'b'\nVx\\u00e9\ntp0\n.";
    let r = scan(benign);
    assert_eq!(r.verdict, Verdict::Clean, "{:#?}", r.findings);
    // Malformed text arguments fail like CPython (and are never clean).
    assert_eq!(scan(b"I12a\n.").verdict, Verdict::Inconclusive);
    assert_eq!(scan(b"S'unterminated\n.").verdict, Verdict::Inconclusive);
    assert_eq!(scan(b"S'\\x4'\n.").verdict, Verdict::Inconclusive);
}

// ----- frames ---------------------------------------------------------------------------------------

#[test]
fn frame_boundary_straddle_is_followed_like_the_c_unpickler() {
    // The frame covers 3 bytes, so SHORT_BINUNICODE "os" straddles it. _pickle.c does not care.
    let mut p = b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00".to_vec();
    p.extend_from_slice(OS_SYSTEM_BODY);
    let r = scan(&p);
    assert_malicious(&r, "os.system");
    assert!(has_rule(&r, RuleId::FRAME_DIVERGENCE));
}

#[test]
fn frame_longer_than_input_still_reports_payload() {
    // _pickle.c fails at this FRAME, but pickle.py's unframer accepts a short frame.
    let mut p = b"\x80\x04\x95\xff\xff\x00\x00\x00\x00\x00\x00".to_vec();
    p.extend_from_slice(OS_SYSTEM_BODY);
    assert_malicious(&scan(&p), "os.system");
}

// ----- truncation after the call ----------------------------------------------------------------

#[test]
fn truncated_tail_after_call_still_reports_call() {
    let mut p = os_system_p4();
    p.pop(); // drop STOP
    p.extend_from_slice(b"X\xff\xff\xff\x7f"); // BINUNICODE claiming 2 GiB
    let r = scan(&p);
    assert_malicious(&r, "os.system");
    assert!(has_rule(&r, RuleId::MALFORMED));
    assert!(called(&r, "os.system"));
}

// ----- several pickles in one stream ------------------------------------------------------------

#[test]
fn payload_in_a_later_pickle_of_a_legacy_torch_file() {
    let mut p = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e".to_vec(); // magic
    p.extend_from_slice(b"\x80\x02M\xe9\x03."); // protocol 1001
    p.extend_from_slice(b"\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03u."); // sys_info
    let model_at = p.len() as u64;
    p.extend_from_slice(b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.");
    p.extend_from_slice(&[0xe8, 0x03, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]); // storage bytes
    let r = scan(&p);
    assert_eq!(r.format, Format::TorchLegacy);
    assert_malicious(&r, "posix.system");
    let f = r.findings.iter().find(|f| f.message.contains("posix.system")).expect("finding");
    assert_eq!(f.location.offset.map(|o| o >= model_at), Some(true));
}

#[test]
fn second_pickle_after_stop_is_scanned() {
    let mut p = b"\x80\x04]\x94.".to_vec();
    p.extend_from_slice(&os_system_p4());
    assert_malicious(&scan(&p), "os.system");
}

// ----- joblib ----------------------------------------------------------------------------------------

/// A joblib stream: a NumpyArrayWrapper for a float64 array of shape (2,), aligned, whose 16
/// array bytes are all `.` (STOP) to derail scanners that read them as opcodes, then a payload.
fn joblib_with_payload_after_array() -> Vec<u8> {
    let mut p = b"\x80\x04\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93)\x81}(".to_vec();
    p.extend_from_slice(b"\x8c\x05dtype\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02f8\x89\x88\x87R");
    p.extend_from_slice(b"\x8c\x05shapeK\x02\x85");
    p.extend_from_slice(b"\x8c\x1bnumpy_array_alignment_bytesK\x10ub");
    p.extend_from_slice(b"\x03...");
    p.extend_from_slice(&[b'.'; 16]);
    p.extend_from_slice(b"\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R\x86.");
    p
}

#[test]
fn joblib_payload_after_array_bytes() {
    let r = scan(&joblib_with_payload_after_array());
    assert_eq!(r.format, Format::Joblib);
    assert_malicious(&r, "os.system");
}

#[test]
fn joblib_payload_inside_zlib_and_gzip() {
    let raw = joblib_with_payload_after_array();
    let z = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
    assert_malicious(&scan(&z), "os.system");
    let deflated = miniz_oxide::deflate::compress_to_vec(&raw, 6);
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(&deflated);
    gz.extend_from_slice(&[0; 8]);
    assert_malicious(&scan(&gz), "os.system");
}

// ----- EXT opcodes -------------------------------------------------------------------------------------

#[test]
fn ext_opcodes_are_never_clean() {
    for p in [&b"\x80\x02\x82\x01)R."[..], b"\x80\x02\x83\x01\x02)R.", b"\x80\x02\x84\x01\x02\x03\x04)R."] {
        let r = scan(p);
        assert!(has_rule(&r, RuleId::EXT_OPCODE), "{:#?}", r.findings);
        assert!(r.verdict >= Verdict::Suspicious);
    }
}

// ----- nested pickles ------------------------------------------------------------------------------

#[test]
fn nested_pickle_in_loads_argument() {
    let inner = os_system_p4();
    let mut p = b"\x80\x04\x8c\x07_pickle\x8c\x05loads\x93C".to_vec();
    p.push(inner.len() as u8);
    p.extend_from_slice(&inner);
    p.extend_from_slice(b"\x85R.");
    let r = scan(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    let nested = r.findings.iter().find(|f| f.message.contains("os.system")).expect("inner payload reported");
    assert!(nested.location.member.contains("nested@"), "{nested:?}");
}

#[test]
fn base64_pickle_in_a_plain_string_constant() {
    // The outer pickle is just a dict holding a string; the string is base64 of os.system(...).
    let b64 = b"gASMAm9zjAZzeXN0ZW2TjAJpZIVSLg==";
    let mut p = b"\x80\x04}\x8c\x01k\x8c".to_vec();
    p.push(b64.len() as u8);
    p.extend_from_slice(b64);
    p.extend_from_slice(b"s.");
    assert_malicious(&scan(&p), "os.system");
}

#[test]
fn raw_pickle_in_a_bytes_constant() {
    let inner = os_system_p4();
    let mut p = b"\x80\x04C".to_vec();
    p.push(inner.len() as u8);
    p.extend_from_slice(&inner);
    p.push(b'.');
    assert_malicious(&scan(&p), "os.system");
}

// ----- expansion and budgets ---------------------------------------------------------------------

/// 40 levels of lists each holding the previous level 10 times: 10^40 logical elements.
fn billion_laughs() -> Vec<u8> {
    let mut p = b"\x80\x04]\x94".to_vec();
    for level in 0u32..40 {
        p.extend_from_slice(b"](");
        for _ in 0..10 {
            p.push(b'j');
            p.extend_from_slice(&level.to_le_bytes());
        }
        p.extend_from_slice(b"e\x94");
        p.extend_from_slice(b"2e"); // DUP + APPEND of itself, for good measure... (DUP then APPEND)
    }
    p.push(b'.');
    p
}

#[test]
fn billion_laughs_is_linear() {
    let p = billion_laughs();
    let t = Instant::now();
    let r = scan(&p);
    assert!(t.elapsed() < Duration::from_secs(2));
    // Malformed or not, it must never explode; here the structure is valid but pointless.
    assert_ne!(r.verdict, Verdict::Malicious);
}

#[test]
fn stack_and_memo_budgets_are_inconclusive() {
    let mut p = b"\x80\x04N".to_vec();
    p.extend(std::iter::repeat_n(b'2', 5000)); // DUP x5000
    p.push(b'.');
    let opts = ScanOptions { max_stack: 1000, ..ScanOptions::default() };
    let r = scan_bytes("dup", &p, &opts);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(r.findings.iter().any(|f| f.rule == RuleId::PICKLE_BUDGET));

    let mut p = b"\x80\x04N".to_vec();
    p.extend(std::iter::repeat_n(0x94u8, 5000)); // MEMOIZE x5000
    p.push(b'.');
    let opts = ScanOptions { max_memo: 1000, ..ScanOptions::default() };
    assert_eq!(scan_bytes("memo", &p, &opts).verdict, Verdict::Inconclusive);
}

#[test]
fn deep_nesting_budget() {
    // A zip inside a zip ... deeper than max_depth is reported, not silently passed.
    let mut blob = os_system_p4();
    for i in 0..8 {
        blob = build_zip(&[ZipMember::stored(&format!("level{i}.zip"), &blob)]);
    }
    let r = scan(&blob);
    assert!(r.verdict != Verdict::Clean);
    assert!(has_rule(&r, RuleId::ARCHIVE_BUDGET), "{:#?}", r.findings);
}

// ----- zip tricks ----------------------------------------------------------------------------------

struct ZipMember<'a> {
    central_name: String,
    local_name: String,
    data: &'a [u8],
    flags: u16,
    deflate: bool,
    bad_crc: bool,
}

impl<'a> ZipMember<'a> {
    fn stored(name: &str, data: &'a [u8]) -> Self {
        ZipMember { central_name: name.into(), local_name: name.into(), data, flags: 0, deflate: false, bad_crc: false }
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Build a zip archive by hand (so tests control every field).
fn build_zip(members: &[ZipMember<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let payload = if m.deflate { miniz_oxide::deflate::compress_to_vec(m.data, 6) } else { m.data.to_vec() };
        let crc = if m.bad_crc { crc32(m.data) ^ 0xdead_beef } else { crc32(m.data) };
        let method: u16 = if m.deflate { 8 } else { 0 };
        let offset = out.len() as u32;
        let mut fields = Vec::new();
        fields.extend_from_slice(&20u16.to_le_bytes());
        fields.extend_from_slice(&m.flags.to_le_bytes());
        fields.extend_from_slice(&method.to_le_bytes());
        fields.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
        fields.extend_from_slice(&crc.to_le_bytes());
        fields.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        fields.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&fields);
        out.extend_from_slice(&(m.local_name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(m.local_name.as_bytes());
        out.extend_from_slice(&payload);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&0x031eu16.to_le_bytes());
        central.extend_from_slice(&fields);
        central.extend_from_slice(&(m.central_name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]); // extra len, comment len, disk, int attr, ext attr
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(m.central_name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[test]
fn zip_tricks() {
    let evil = os_system_p4();
    let benign_tensor = [0u8, 0, 128, 63, 0, 0, 0, 64];
    let cases: Vec<(&str, Vec<ZipMember<'_>>)> = vec![
        ("plain", vec![ZipMember::stored("archive/data.pkl", &evil)]),
        ("crc", vec![ZipMember { bad_crc: true, ..ZipMember::stored("archive/data.pkl", &evil) }]),
        (
            "name mismatch",
            vec![ZipMember { local_name: "archive/data.txt".into(), ..ZipMember::stored("archive/data.pkl", &evil) }],
        ),
        ("wrong ext", vec![ZipMember::stored("weights/config.json", &evil)]),
        ("flag 0x1", vec![ZipMember { flags: 0x1, ..ZipMember::stored("m/data.pkl", &evil) }]),
        ("flag 0x20", vec![ZipMember { flags: 0x20, ..ZipMember::stored("m/data.pkl", &evil) }]),
        ("flag 0x40", vec![ZipMember { flags: 0x40, ..ZipMember::stored("m/data.pkl", &evil) }]),
        ("deflate", vec![ZipMember { deflate: true, ..ZipMember::stored("archive/data.pkl", &evil) }]),
        (
            "after tensors",
            vec![ZipMember::stored("archive/data/0", &benign_tensor), ZipMember::stored("archive/data/1", &evil)],
        ),
    ];
    for (what, members) in &cases {
        let z = build_zip(members);
        let r = scan(&z);
        assert_eq!(r.format, Format::Zip, "{what}");
        assert_eq!(r.verdict, Verdict::Malicious, "{what}: {:#?}", r.findings);
    }
    // Nested: a zip inside a zip.
    let inner = build_zip(&[ZipMember::stored("archive/data.pkl", &evil)]);
    let outer = build_zip(&[ZipMember::stored("model.bin", &inner)]);
    let r = scan(&outer);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(r.findings.iter().any(|f| f.location.member == "model.bin!archive/data.pkl"), "{:#?}", r.findings);
    // No central directory at all: local headers are walked.
    let z = build_zip(&[ZipMember::stored("archive/data.pkl", &evil)]);
    let cut = z.windows(4).position(|w| w == b"PK\x01\x02").expect("central directory");
    assert_eq!(scan(&z[..cut]).verdict, Verdict::Malicious);
}

#[test]
fn benign_zip_checkpoint_is_clean() {
    let pkl = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x02tq\x07QK\x00K\x02\x85q\x08K\x01\x85q\x09\x89ccollections\nOrderedDict\nq\x0a)Rq\x0btq\x0cRq\x0ds.";
    let z = build_zip(&[
        ZipMember::stored("archive/data.pkl", pkl),
        ZipMember::stored("archive/data/0", &[0, 0, 128, 63, 0, 0, 0, 64]),
        ZipMember::stored("archive/version", b"3\n"),
    ]);
    let r = scan(&z);
    assert_eq!(r.verdict, Verdict::Clean, "{:#?}", r.findings);
    assert!(r.findings.iter().all(|f| f.severity <= Severity::Info));
}

#[test]
fn encrypted_member_is_inconclusive_not_clean() {
    let z = build_zip(&[ZipMember { flags: 0x1, ..ZipMember::stored("secret.bin", &[0x9f, 0x33, 0x12, 0xee, 0x01]) }]);
    assert_eq!(scan(&z).verdict, Verdict::Inconclusive);
}

#[test]
fn scan_pickles_reads_every_pickle_in_a_stream() {
    let mut p = b"\x80\x04]\x94.".to_vec();
    p.extend_from_slice(b"\x80\x04K\x01.");
    p.extend_from_slice(&os_system_p4());
    let r = scan_pickles("stream", &p, &ScanOptions::default());
    assert_eq!(r.pickles.len(), 3);
    assert_malicious(&r, "os.system");
}

#[test]
fn report_serializes_to_json() {
    let r = scan(&os_system_p4());
    let v = serde_json::to_value(&r).expect("serializable");
    assert_eq!(v["verdict"], "malicious");
    assert_eq!(v["format"], "pickle");
    assert_eq!(v["findings"][0]["rule"], "pickle.dangerous-global");
    assert_eq!(v["findings"][0]["severity"], "critical");
    assert_eq!(v["pickles"][0]["imports"][0]["via"], "STACK_GLOBAL");
    assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
}
