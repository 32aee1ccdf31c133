//! The model formats beyond pickle: safetensors, GGUF, ONNX, Keras (`.keras` zip and legacy
//! HDF5), each built by hand here, valid and broken; real files written by the reference Python
//! libraries (`scripts/gen-real-formats.py`, directory in `CUSTODY_TEST_REAL_FORMATS`); and properties over
//! arbitrary bytes behind each magic.

// Tests may panic and print; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::path::PathBuf;

use custody_scan::{FileReport, Format, RuleId, ScanOptions, Severity, Verdict, detect_format, scan_bytes, scan_path};
use proptest::prelude::*;

fn scan(data: &[u8]) -> FileReport {
    scan_bytes("test", data, &ScanOptions::default())
}

fn has(r: &FileReport, rule: RuleId, severity: Severity) -> bool {
    r.findings.iter().any(|f| f.rule == rule && f.severity == severity)
}

#[track_caller]
fn assert_clean(r: &FileReport) {
    let loud: Vec<_> = r.findings.iter().filter(|f| f.severity > Severity::Info).collect();
    assert!(r.verdict == Verdict::Clean && loud.is_empty(), "{}: {:?} {loud:#?}", r.name, r.verdict);
}

#[track_caller]
fn assert_inconclusive(r: &FileReport, rule: RuleId, needle: &str) {
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:#?}", r.findings);
    assert!(
        r.findings.iter().any(|f| f.rule == rule && f.message.contains(needle)),
        "no {rule} mentioning {needle:?}: {:#?}",
        r.findings
    );
}

// ----- safetensors -------------------------------------------------------------------------------

fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn safetensors_valid_is_clean() {
    let h = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},"empty":{"dtype":"I64","shape":[0],"data_offsets":[22,22]}}   "#;
    let r = scan(&safetensors(h, &[0u8; 22]));
    assert_eq!(r.format, Format::Safetensors);
    assert_clean(&r);
    // Null metadata, a sub-byte dtype, and tensors listed out of order.
    let h = r#"{"__metadata__":null,"z":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"f4":{"dtype":"F4","shape":[2,2],"data_offsets":[0,2]}}"#;
    assert_clean(&scan(&safetensors(h, &[0u8; 3])));
    // An empty file: no tensors, no data.
    assert_clean(&scan(&safetensors("{}      ", &[])));
}

#[test]
fn safetensors_chat_template_metadata_is_noted() {
    let h =
        r#"{"__metadata__":{"chat_template":"{{ messages }}"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
    let r = scan(&safetensors(h, &[7]));
    assert_clean(&r);
    assert!(has(&r, RuleId::SAFETENSORS_METADATA, Severity::Info), "{:#?}", r.findings);
}

#[test]
fn safetensors_malformed_is_inconclusive() {
    let t = |dtype: &str, shape: &str, b: u64, e: u64| {
        format!(r#"{{"dtype":"{dtype}","shape":{shape},"data_offsets":[{b},{e}]}}"#)
    };
    let cases: Vec<(&str, String, usize)> = vec![
        ("overlaps", format!(r#"{{"a":{},"b":{}}}"#, t("F32", "[2]", 0, 8), t("F32", "[2]", 4, 12)), 12),
        ("hole", format!(r#"{{"a":{},"b":{}}}"#, t("F32", "[1]", 0, 4), t("F32", "[1]", 8, 12)), 12),
        ("past the", format!(r#"{{"a":{}}}"#, t("F32", "[4]", 0, 16)), 8),
        ("cover only", format!(r#"{{"a":{}}}"#, t("F32", "[1]", 0, 4)), 8),
        ("unknown dtype", format!(r#"{{"a":{}}}"#, t("F33", "[1]", 0, 4)), 4),
        ("need", format!(r#"{{"a":{}}}"#, t("F16", "[3]", 0, 4)), 4),
        ("overflows", format!(r#"{{"a":{}}}"#, t("F64", "[4294967296,4294967296]", 0, 8)), 8),
        ("non-negative", format!(r#"{{"a":{}}}"#, t("F32", "[-1]", 0, 4)), 4),
        ("begin", format!(r#"{{"a":{}}}"#, t("F32", "[0]", 4, 0)), 4),
        ("not a string", r#"{"__metadata__":{"k":1}}"#.to_string(), 0),
        ("duplicate", format!(r#"{{"a":{},"a":{}}}"#, t("U8", "[1]", 0, 1), t("U8", "[1]", 0, 1)), 1),
        ("not a valid JSON", r#"{"a":{"dtype":"F32""#.to_string(), 0),
    ];
    for (needle, header, data_len) in cases {
        let r = scan(&safetensors(&header, &vec![0u8; data_len]));
        assert_eq!(r.format, Format::Safetensors, "{needle}");
        assert_inconclusive(&r, RuleId::SAFETENSORS_MALFORMED, needle);
    }
    // A header length past the end of the file (and one over 100 MiB).
    for (len, needle) in [(5000u64, "exceeds the"), (200 << 20, "100 MiB")] {
        let mut f = len.to_le_bytes().to_vec();
        f.extend_from_slice(br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#);
        let r = scan(&f);
        assert_eq!(r.format, Format::Safetensors);
        assert_inconclusive(&r, RuleId::SAFETENSORS_MALFORMED, needle);
    }
}

#[test]
fn safetensors_header_length_spelling_zlib_magic_is_still_safetensors() {
    // Header length 0x0178: its first bytes, 78 01, are a valid zlib header.
    let mut h = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#.to_string();
    while h.len() < 0x178 {
        h.push(' ');
    }
    let f = safetensors(&h, &[1]);
    assert_eq!(detect_format(&f), Format::Safetensors);
    assert_clean(&scan(&f));
}

// ----- GGUF --------------------------------------------------------------------------------------

#[derive(Default)]
struct Gguf {
    kv: Vec<u8>,
    kv_count: u64,
    tensors: Vec<u8>,
    tensor_count: u64,
}

impl Gguf {
    fn str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn kv_str(mut self, k: &str, v: &str) -> Self {
        Self::str(&mut self.kv, k);
        self.kv.extend_from_slice(&8u32.to_le_bytes());
        Self::str(&mut self.kv, v);
        self.kv_count += 1;
        self
    }
    fn kv_u32(mut self, k: &str, v: u32) -> Self {
        Self::str(&mut self.kv, k);
        self.kv.extend_from_slice(&4u32.to_le_bytes());
        self.kv.extend_from_slice(&v.to_le_bytes());
        self.kv_count += 1;
        self
    }
    /// An array of string arrays, to exercise nesting.
    fn kv_nested(mut self, k: &str) -> Self {
        Self::str(&mut self.kv, k);
        self.kv.extend_from_slice(&9u32.to_le_bytes());
        self.kv.extend_from_slice(&9u32.to_le_bytes());
        self.kv.extend_from_slice(&2u64.to_le_bytes());
        for words in [&["a", "b"][..], &["c"]] {
            self.kv.extend_from_slice(&8u32.to_le_bytes());
            self.kv.extend_from_slice(&(words.len() as u64).to_le_bytes());
            for w in words {
                Self::str(&mut self.kv, w);
            }
        }
        self.kv_count += 1;
        self
    }
    fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        Self::str(&mut self.tensors, name);
        self.tensors.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            self.tensors.extend_from_slice(&d.to_le_bytes());
        }
        self.tensors.extend_from_slice(&ty.to_le_bytes());
        self.tensors.extend_from_slice(&offset.to_le_bytes());
        self.tensor_count += 1;
        self
    }
    fn build(&self, data_len: usize) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&self.tensor_count.to_le_bytes());
        out.extend_from_slice(&self.kv_count.to_le_bytes());
        out.extend_from_slice(&self.kv);
        out.extend_from_slice(&self.tensors);
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        out.extend(std::iter::repeat_n(0u8, data_len));
        out
    }
}

fn gguf_base() -> Gguf {
    Gguf::default()
        .kv_str("general.architecture", "llama")
        .kv_u32("general.alignment", 32)
        .kv_nested("test.nested")
        .tensor("tok_embd", &[64, 2], 0, 0) // F32: 512 bytes
        .tensor("blk.0.q", &[64, 2], 8, 512) // Q8_0: 2 blocks per row × 2 rows × 34 bytes = 136
}

#[test]
fn gguf_valid_with_benign_template_is_low() {
    let t = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}";
    let r = scan(&gguf_base().kv_str("tokenizer.chat_template", t).build(512 + 136));
    assert_eq!(r.format, Format::Gguf);
    assert_eq!(r.verdict, Verdict::Clean, "{:#?}", r.findings);
    assert!(has(&r, RuleId::GGUF_CHAT_TEMPLATE, Severity::Low), "{:#?}", r.findings);
    // Without a template: nothing above info.
    assert_clean(&scan(&gguf_base().build(512 + 136)));
}

#[test]
fn gguf_ssti_template_is_malicious() {
    let t = "{{ cycler.__init__.__globals__.os.popen('id').read() }}";
    let r = scan(&gguf_base().kv_str("tokenizer.chat_template.tool_use", t).build(512 + 136));
    assert_eq!(r.verdict, Verdict::Malicious, "{:#?}", r.findings);
    assert!(has(&r, RuleId::GGUF_CHAT_TEMPLATE, Severity::High));
    let t = "{{ joiner().x }}";
    let r = scan(&gguf_base().kv_str("tokenizer.chat_template", t).build(512 + 136));
    assert_eq!(r.verdict, Verdict::Suspicious, "{:#?}", r.findings);
}

#[test]
fn gguf_malformed_is_inconclusive() {
    let data = 512 + 136;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("past the end", gguf_base().tensor("x", &[32], 0, 1024).build(data)),
        ("not a multiple of the alignment", gguf_base().tensor("x", &[8], 0, 700).build(data + 64)),
        ("overlaps", gguf_base().tensor("x", &[8], 0, 32).build(data)),
        ("block size", gguf_base().tensor("x", &[33], 8, 672).build(data + 64)),
        ("duplicate tensor", gguf_base().tensor("tok_embd", &[8], 0, 672).build(data + 64)),
        ("dimensions", gguf_base().tensor("x", &[1, 1, 1, 1, 1], 0, 672).build(data + 64)),
        ("power of two", Gguf::default().kv_u32("general.alignment", 24).build(0)),
        ("duplicate metadata", gguf_base().kv_str("general.architecture", "x").build(data)),
        ("truncated", gguf_base().build(data)[..100].to_vec()),
    ];
    for (needle, f) in cases {
        let r = scan(&f);
        assert_eq!(r.format, Format::Gguf, "{needle}");
        assert_inconclusive(&r, RuleId::GGUF_MALFORMED, needle);
    }
    // Counts that cannot fit, and a string length past the end.
    let mut f = b"GGUF".to_vec();
    f.extend_from_slice(&3u32.to_le_bytes());
    f.extend_from_slice(&u64::MAX.to_le_bytes());
    f.extend_from_slice(&0u64.to_le_bytes());
    assert_inconclusive(&scan(&f), RuleId::GGUF_MALFORMED, "tensor count");
    let mut f = b"GGUF\x03\x00\x00\x00".to_vec();
    f.extend_from_slice(&0u64.to_le_bytes());
    f.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert_inconclusive(&scan(&f), RuleId::GGUF_MALFORMED, "metadata count");
    let mut f = b"GGUF\x03\x00\x00\x00".to_vec();
    f.extend_from_slice(&0u64.to_le_bytes());
    f.extend_from_slice(&1u64.to_le_bytes());
    f.extend_from_slice(&(1u64 << 60).to_le_bytes());
    f.extend_from_slice(&[0u8; 16]);
    assert_inconclusive(&scan(&f), RuleId::GGUF_MALFORMED, "string length");
    let mut f = b"GGUF\x01\x00\x00\x00".to_vec();
    f.extend_from_slice(&[0u8; 16]);
    assert_inconclusive(&scan(&f), RuleId::GGUF_MALFORMED, "version");
}

#[test]
fn gguf_unknown_tensor_type_is_noted_not_failed() {
    let r = scan(&gguf_base().tensor("odd", &[64], 9, 672).build(512 + 136 + 64));
    assert_clean(&r);
    assert!(has(&r, RuleId::GGUF_NOTE, Severity::Info));
}

// ----- ONNX --------------------------------------------------------------------------------------

/// A tiny protobuf encoder.
#[derive(Default, Clone)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn int(mut self, field: u32, v: u64) -> Self {
        Self::varint(&mut self.0, u64::from(field) << 3);
        Self::varint(&mut self.0, v);
        self
    }
    fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        Self::varint(&mut self.0, (u64::from(field) << 3) | 2);
        Self::varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(self, field: u32, m: &Pb) -> Self {
        self.bytes(field, &m.0)
    }
}

fn onnx_tensor(name: &str, location: Option<&str>) -> Pb {
    let t = Pb::default().int(1, 4).int(2, 1).str(8, name);
    match location {
        Some(loc) => t
            .msg(13, &Pb::default().str(1, "location").str(2, loc))
            .msg(13, &Pb::default().str(1, "offset").str(2, "0"))
            .int(14, 1),
        None => t.bytes(9, &[0u8; 16]),
    }
}

fn onnx_node(op: &str, domain: &str) -> Pb {
    let n = Pb::default().str(1, "x").str(1, "w").str(2, "y").str(3, "n0").str(4, op);
    if domain.is_empty() { n } else { n.str(7, domain) }
}

fn onnx_model(graph: &Pb) -> Vec<u8> {
    Pb::default()
        .int(1, 8)
        .str(2, "hand")
        .msg(7, graph)
        .msg(8, &Pb::default().str(1, "").int(2, 17))
        .msg(14, &Pb::default().str(1, "author").str(2, "test"))
        .0
}

fn onnx_graph(nodes: &[Pb], inits: &[Pb]) -> Pb {
    let mut g = Pb::default().str(2, "g");
    for n in nodes {
        g = g.msg(1, n);
    }
    for i in inits {
        g = g.msg(5, i);
    }
    g.msg(11, &Pb::default().str(1, "x")).msg(12, &Pb::default().str(1, "y"))
}

#[test]
fn onnx_plain_model_is_clean() {
    let m = onnx_model(&onnx_graph(&[onnx_node("Add", "")], &[onnx_tensor("w", None)]));
    assert_eq!(detect_format(&m), Format::Onnx);
    let r = scan(&m);
    assert_eq!(r.format, Format::Onnx);
    assert_clean(&r);
}

#[test]
fn onnx_external_data_escape_is_high() {
    let m = onnx_model(&onnx_graph(&[onnx_node("Add", "")], &[onnx_tensor("w", Some("../../etc/passwd"))]));
    let r = scan(&m);
    assert_eq!(r.verdict, Verdict::Malicious, "{:#?}", r.findings);
    assert!(has(&r, RuleId::ONNX_EXTERNAL_DATA_ESCAPE, Severity::High));
    // Absolute, and hidden in an `If` branch subgraph of a node attribute.
    let sub = onnx_graph(&[], &[onnx_tensor("w2", Some("/etc/shadow"))]);
    let attr = Pb::default().str(1, "then_branch").int(20, 5).msg(6, &sub);
    let node = onnx_node("If", "").msg(5, &attr);
    let r = scan(&onnx_model(&onnx_graph(&[node], &[])));
    assert!(has(&r, RuleId::ONNX_EXTERNAL_DATA_ESCAPE, Severity::High), "{:#?}", r.findings);
}

#[test]
fn onnx_external_data_in_directory_is_info() {
    let m = onnx_model(&onnx_graph(&[onnx_node("Add", "")], &[onnx_tensor("w", Some("weights.bin"))]));
    let r = scan(&m);
    assert_clean(&r);
    assert!(has(&r, RuleId::ONNX_EXTERNAL_DATA, Severity::Info));
}

#[test]
fn onnx_custom_domain_is_low() {
    let m = onnx_model(&onnx_graph(
        &[onnx_node("Add", "ai.onnx"), onnx_node("MyOp", "com.evil.ops"), onnx_node("Attn", "com.microsoft")],
        &[],
    ));
    let r = scan(&m);
    assert_eq!(r.verdict, Verdict::Clean);
    let custom: Vec<_> = r.findings.iter().filter(|f| f.rule == RuleId::ONNX_CUSTOM_DOMAIN).collect();
    assert_eq!(custom.len(), 1, "{custom:#?}");
    assert_eq!(custom[0].severity, Severity::Low);
    assert!(custom[0].message.contains("com.evil.ops") && custom[0].message.contains("custom runtime library"));
    // A domain defined by the model's own functions is not custom.
    let f = Pb::default().str(1, "MyOp").str(10, "com.evil.ops").msg(7, &onnx_node("Add", ""));
    let mut m = onnx_model(&onnx_graph(&[onnx_node("MyOp", "com.evil.ops")], &[]));
    m.extend(Pb::default().msg(25, &f).0);
    assert_clean(&scan(&m));
}

#[test]
fn onnx_malformed_inside_is_inconclusive() {
    // The graph parses at the top level, but a node inside it is truncated.
    let bad_node = Pb(vec![0x22, 0x10, b'A']); // op_type of length 16 with one byte
    let m = onnx_model(&Pb::default().str(2, "g").msg(1, &bad_node));
    let r = scan(&m);
    assert_eq!(r.format, Format::Onnx);
    assert_inconclusive(&r, RuleId::ONNX_MALFORMED, "runs past the end");
    // No graph, or no ir_version: not ONNX at all.
    assert_eq!(detect_format(&Pb::default().int(1, 8).str(2, "x").0), Format::Unknown);
    assert_eq!(detect_format(&Pb::default().str(7, "").0), Format::Unknown);
}

// ----- Keras -------------------------------------------------------------------------------------

fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let offset = out.len() as u32;
        let mut fields = Vec::new();
        fields.extend_from_slice(&20u16.to_le_bytes());
        fields.extend_from_slice(&0u16.to_le_bytes()); // flags
        fields.extend_from_slice(&0u16.to_le_bytes()); // stored
        fields.extend_from_slice(&[0, 0, 0x21, 0]);
        fields.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        fields.extend_from_slice(&(data.len() as u32).to_le_bytes());
        fields.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&fields);
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&0x031eu16.to_le_bytes());
        central.extend_from_slice(&fields);
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]); // extra, comment, disk, attrs
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

fn keras_zip(config: &str) -> Vec<u8> {
    let mut weights = HDF5_MAGIC.to_vec();
    weights.extend_from_slice(&[0u8; 200]);
    stored_zip(&[
        ("metadata.json", br#"{"keras_version": "3.6.0", "date_saved": "2025-01-01@00:00:00"}"#),
        ("config.json", config.as_bytes()),
        ("model.weights.h5", &weights),
    ])
}

const DENSE_V3: &str = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "layers": [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 4], "dtype": "float32", "name": "input_layer"}, "registered_name": null}, {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "relu", "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}}, "registered_name": null, "build_config": {"input_shape": [null, 4]}}]}, "registered_name": null, "build_config": {"input_shape": [null, 4]}}"#;

#[test]
fn keras_dense_model_is_clean() {
    let r = scan(&keras_zip(DENSE_V3));
    assert_eq!(r.format, Format::Keras);
    assert_clean(&r);
    assert!(r.findings.iter().any(|f| f.message.contains("3.6.0")));
}

#[test]
fn keras_lambda_layer_is_malicious() {
    let lambda = r#"{"module": "keras.layers", "class_name": "Lambda", "config": {"name": "lambda", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wwAAACXAHQAAAAAAAAAAAAAAGQBpgEAAKsBAAAAAAAAAAAAUwApAk76AmlkKQHaBGV4ZWMpAdoBeHMBAAAAIPofPHN0ZGluPnI0AQAAAAEAAABzBQAAAIAAkQSQVJEKgArzAAAAAA==", "defaults": null, "closure": null}}, "arguments": {}}, "registered_name": null}"#;
    let config = DENSE_V3.replacen(
        r#"{"module": "keras.layers", "class_name": "Dense""#,
        &format!("{lambda}, {{\"module\": \"keras.layers\", \"class_name\": \"Dense\""),
        1,
    );
    let r = scan(&keras_zip(&config));
    assert_eq!(r.format, Format::Keras);
    assert_eq!(r.verdict, Verdict::Malicious, "{:#?}", r.findings);
    let lambdas: Vec<_> = r.findings.iter().filter(|f| f.rule == RuleId::KERAS_LAMBDA).collect();
    assert_eq!(lambdas.len(), 1, "reported once, not again for the inner __lambda__: {lambdas:#?}");
}

#[test]
fn keras_custom_objects_and_op_lambdas() {
    let custom = r#"{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"module": "my_pkg.layers", "class_name": "Evil", "config": {}, "registered_name": "MyPkg>Evil"}, {"module": "keras.layers", "class_name": "Act", "config": {"activation": {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}}}, {"class_name": "TFOpLambda", "config": {"name": "tf.io.write_file", "function": "io.write_file"}}]}}"#;
    let r = scan(&keras_zip(custom));
    assert!(has(&r, RuleId::KERAS_CUSTOM_OBJECT, Severity::Medium), "{:#?}", r.findings);
    assert!(r.findings.iter().any(|f| f.rule == RuleId::KERAS_CUSTOM_OBJECT && f.severity >= Severity::High));
    assert!(has(&r, RuleId::KERAS_OP_LAMBDA, Severity::High));
    assert_eq!(r.verdict, Verdict::Malicious);
}

#[test]
fn keras_broken_config_is_inconclusive() {
    let r = scan(&keras_zip(r#"{"class_name": "Sequential", "config": {"layers": ["#));
    assert_inconclusive(&r, RuleId::KERAS_MALFORMED, "not valid JSON");
    // A zip with config.json but no Keras metadata is just a zip.
    let z = stored_zip(&[("config.json", b"{}"), ("metadata.json", b"{\"x\": 1}")]);
    assert_eq!(scan(&z).format, Format::Zip);
}

fn hdf5_with(attrs: &[&str]) -> Vec<u8> {
    let mut f = HDF5_MAGIC.to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 8, 8, 0, 0]);
    f.extend(std::iter::repeat_n(0xabu8, 300));
    for a in attrs {
        // Attribute message: some binary header, then the string bytes inline.
        f.extend_from_slice(&[0x0c, 0x00, 0x01, 0x00]);
        f.extend_from_slice(&(a.len() as u32).to_le_bytes());
        f.extend_from_slice(a.as_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
    }
    f.extend(std::iter::repeat_n(0x11u8, 300));
    f
}

const H5_CONFIG: &str = r#"{"class_name": "Sequential", "config": {"name": "sequential", "layers": [{"class_name": "Dense", "config": {"name": "dense", "units": 2}}, LAYER]}}"#;
const H5_LAMBDA: &str = r#"{"class_name": "Lambda", "config": {"name": "lambda", "function": ["4wEAAAAAAAAAAQAAAAQAAABDAAAAcxQAAAB0AGQBgwF8AIMBUwApAk5aAmlkKQHaBGV4ZWMpAdoBeKkAcgMAAAD6AS7aCDxsYW1iZGE+AQAAAPMAAAAA\n", null, null], "function_type": "lambda", "module": "__main__"}}"#;

#[test]
fn hdf5_model_config_with_lambda_is_malicious() {
    let config = H5_CONFIG.replace("LAYER", H5_LAMBDA);
    let training = r#"{"loss": "mse", "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}}}"#;
    let f = hdf5_with(&["keras", &config, training]);
    let r = scan(&f);
    assert_eq!(r.format, Format::Hdf5);
    assert_eq!(r.verdict, Verdict::Malicious, "{:#?}", r.findings);
    assert!(has(&r, RuleId::KERAS_LAMBDA, Severity::High));
    // The same with keys reordered so the object does not start with "class_name".
    let reordered = r#"{"config": {"layers": [{"config": {"name": "l", "function": ["AA==", null, null], "function_type": "lambda"}, "class_name": "Lambda"}]}, "class_name": "Sequential"}"#;
    assert!(has(&scan(&hdf5_with(&[reordered])), RuleId::KERAS_LAMBDA, Severity::High));
}

#[test]
fn hdf5_benign_model_and_weights_only_are_clean() {
    let config = H5_CONFIG.replace(", LAYER", "");
    let r = scan(&hdf5_with(&[&config]));
    assert_eq!(r.format, Format::Hdf5);
    assert_clean(&r);
    let r = scan(&hdf5_with(&["layer_names", "dense_1"]));
    assert_clean(&r);
    assert!(r.findings.iter().any(|f| f.rule == RuleId::KERAS_NOTE && f.message.contains("weights only")));
    // A user block before the superblock.
    let mut f = vec![0u8; 512];
    f.extend(hdf5_with(&[]));
    assert_eq!(detect_format(&f), Format::Hdf5);
}

#[test]
fn hdf5_unparseable_config_is_inconclusive_and_lambda_still_found() {
    let broken = r#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"x": ]}}"#;
    let r = scan(&hdf5_with(&[broken]));
    assert!(has(&r, RuleId::KERAS_MALFORMED, Severity::Low), "{:#?}", r.findings);
    assert!(has(&r, RuleId::KERAS_LAMBDA, Severity::High), "{:#?}", r.findings);
    let broken = r#"{"class_name": "Sequential", "config": {"layers": [1, 2,"#;
    assert_inconclusive(&scan(&hdf5_with(&[broken])), RuleId::KERAS_MALFORMED, "could not be parsed");
}

// ----- polyglots ---------------------------------------------------------------------------------

#[test]
fn safetensors_that_is_also_a_pickle_is_scanned_as_one() {
    // LONG4 (0x8b) with a 4-byte length of 4: as a pickle, the header length and the `{` are the
    // operand of LONG4, and a protocol-0 `os.system` call follows. As safetensors, the length is
    // 0x48b and the header is (invalid) JSON.
    let mut f = vec![0x8b, 4, 0, 0, 0, 0, 0, 0, b'{'];
    f.extend_from_slice(b"cos\nsystem\n(S'id'\ntR.");
    f.resize(8 + 0x48b, b' ');
    assert_eq!(detect_format(&f), Format::Safetensors);
    let r = scan(&f);
    assert_eq!(r.verdict, Verdict::Malicious, "{:#?}", r.findings);
    assert!(has(&r, RuleId::SAFETENSORS_MALFORMED, Severity::Low));
    // A gzip header with mtime 0 and XFL `{` is also a safetensors header of 0x88b1f bytes: a
    // loader that sniffs gzip (joblib) would inflate it and unpickle the content.
    let evil = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
    let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, b'{', 3];
    g.extend(miniz_oxide::deflate::compress_to_vec(evil, 6));
    g.extend_from_slice(&crc32fast::hash(evil).to_le_bytes());
    g.extend_from_slice(&(evil.len() as u32).to_le_bytes());
    g.resize(8 + 0x88b1f, b' ');
    assert_eq!(detect_format(&g), Format::Safetensors);
    let r = scan(&g);
    assert_eq!(r.verdict, Verdict::Malicious, "{:#?}", r.findings);
    assert!(r.members.iter().any(|m| m == "<gzip>"), "{:?}", r.members);
    // Header length 0x2e4e spells `N.`, a complete (benign) pickle: noted, still clean.
    let mut h = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#.to_string();
    while h.len() < 0x2e4e {
        h.push(' ');
    }
    let r = scan(&safetensors(&h, &[1]));
    assert_eq!(r.format, Format::Safetensors);
    assert_clean(&r);
    assert!(!r.pickles.is_empty() && has(&r, RuleId::NESTED, Severity::Info), "{:#?}", r.findings);
    // A GGUF whose magic is the start of a pickle that fails at once: nothing from the pickle kept.
    let r = scan(&gguf_base().build(512 + 136));
    assert!(r.pickles.is_empty() && r.findings.iter().all(|f| f.rule != RuleId::TRAILING_DATA), "{:#?}", r.findings);
}

// ----- real files --------------------------------------------------------------------------------

#[test]
fn real_safetensors_gguf_and_onnx_files_are_clean() {
    let Some(dir) = std::env::var_os("CUSTODY_TEST_REAL_FORMATS").map(PathBuf::from) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but CUSTODY_TEST_REAL_FORMATS is unset: run through scripts/with-real-models.sh"
        );
        eprintln!("skipped: set CUSTODY_TEST_REAL_FORMATS (scripts/with-real-models.sh)");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the generated directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors" || e == "gguf" || e == "onnx"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "expected the generated files in {}", dir.display());
    let mut seen = std::collections::BTreeSet::new();
    for f in &files {
        let r = scan_path(f, &ScanOptions::default()).expect("readable");
        let name = f.to_string_lossy();
        // gen_formats.py's naming: `*.malicious.*` attack samples, `*.low.*` files with a chat
        // template or custom domain (clean, nothing above Low), the rest clean outright.
        if name.contains(".malicious.") {
            assert_eq!(r.verdict, Verdict::Malicious, "{}: {:#?}", f.display(), r.findings);
        } else if name.contains(".low.") {
            assert_eq!(r.verdict, Verdict::Clean, "{}: {:#?}", f.display(), r.findings);
            assert_eq!(r.max_severity(), Some(Severity::Low), "{}: {:#?}", f.display(), r.findings);
        } else {
            assert_clean(&r);
        }
        seen.insert(format!("{:?}", r.format));
    }
    for want in ["Safetensors", "Gguf", "Onnx"] {
        assert!(seen.contains(want), "no {want} file in {}: {seen:?}", dir.display());
    }
}

// ----- properties --------------------------------------------------------------------------------

fn prop_opts() -> ScanOptions {
    ScanOptions { max_stack: 10_000, max_memo: 10_000, ..ScanOptions::default() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_behind_each_magic_never_panic(
        which in 0usize..6,
        rest in proptest::collection::vec(any::<u8>(), 0..500),
    ) {
        let prefix: Vec<u8> = match which {
            0 => b"GGUF\x03\x00\x00\x00".to_vec(),
            1 => HDF5_MAGIC.to_vec(),
            2 => {
                let mut p = (rest.len() as u64 / 2).to_le_bytes().to_vec();
                p.push(b'{');
                p
            }
            3 => vec![0x08, 0x08, 0x3a],
            4 => b"GGUF\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00".to_vec(),
            _ => b"{\"class_name\": ".to_vec(),
        };
        let mut data = prefix;
        data.extend(rest);
        let _ = scan_bytes("fuzz", &data, &prop_opts());
    }

    #[test]
    fn truncated_safetensors_and_gguf_are_never_clean(which in 0usize..2, cut in any::<usize>()) {
        let f = if which == 0 {
            safetensors(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8])
        } else {
            gguf_base().build(512 + 136)
        };
        let cut = cut % f.len();
        let r = scan_bytes("cut", &f[..cut], &prop_opts());
        prop_assert_ne!(r.verdict, Verdict::Clean, "{:?}", r.findings);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        which in 0usize..3,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..5),
        cut in any::<usize>(),
    ) {
        let mut f = match which {
            0 => gguf_base().kv_str("tokenizer.chat_template", "{{ x }}").build(512 + 136),
            1 => onnx_model(&onnx_graph(&[onnx_node("Add", "x.y")], &[onnx_tensor("w", Some("w.bin"))])),
            _ => safetensors(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8]),
        };
        for (i, b) in flips {
            let i = i % f.len();
            f[i] = b;
        }
        let len = f.len();
        f.truncate(cut % (len + 1));
        let _ = scan_bytes("mutant", &f, &prop_opts());
    }
}
