//! Keras models: the v3 `.keras` zip (`config.json`, `metadata.json`, `model.weights.h5`) and
//! legacy HDF5 `.h5` files, whose `model_config` attribute holds the same kind of JSON. Loading
//! a config rebuilds every object it names, so the risks are `Lambda` layers (marshalled Python
//! bytecode, run when the layer is called — or at load time), layers that call TensorFlow ops by
//! name, and custom objects imported from modules outside Keras.
//!
//! HDF5 is not parsed: attribute strings are stored contiguously (inline in an object header, or
//! in a global or fractal heap), so JSON objects are found by searching for `"class_name"` and
//! parsing from the start of the JSON text around it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::container::Ctx;
use crate::policy::{self, Decision};
use crate::report::{RuleId, Severity};
use crate::text::shorten as esc;
use crate::zip;

/// Largest JSON document read (a config of thousands of layers is a few MiB).
const MAX_DOC: usize = 64 << 20;
/// How far before a `"class_name"` the start of its JSON text is looked for.
const MAX_BACK: usize = 16 << 20;
/// Failed parse attempts allowed in one file: each can read up to [`MAX_DOC`] bytes.
const MAX_FAILED_ATTEMPTS: u32 = 32;
/// Failed parse attempts allowed before one `"class_name"` is given up on.
const MAX_ATTEMPTS_PER_HIT: u32 = 16;
/// Layer classes that run Python code.
const LAMBDA_CLASSES: &[&str] = &["Lambda", "__lambda__"];
/// Layer classes that call TensorFlow operations by name.
const OP_LAMBDA_CLASSES: &[&str] = &["TFOpLambda", "SlicingOpLambda"];
/// TensorFlow ops that reach files or run Python.
const DANGEROUS_OPS: &[&str] =
    &["io.", "write_file", "read_file", "gfile", "py_func", "py_function", "numpy_function", "system", "save", "load"];
/// Packages whose objects a Keras config may name without custom code.
const KERAS_PACKAGES: &[&str] = &["keras", "tf_keras", "keras_hub", "keras_nlp", "keras_cv"];

fn is_keras_module(module: &str) -> bool {
    let module = module.strip_prefix("tensorflow.").unwrap_or(module);
    KERAS_PACKAGES.iter().any(|p| module == *p || module.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
}

/// Walks a parsed config and reports what loading it would run.
struct ConfigWalk<'c, 'o> {
    ctx: &'c mut Ctx<'o>,
    member: &'c str,
    offset: Option<u64>,
    /// (module or registered package, class) → (count, severity, why).
    custom: BTreeMap<(String, String), (u64, Severity, String)>,
}

impl ConfigWalk<'_, '_> {
    fn visit(&mut self, v: &Value, in_lambda: bool) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| self.visit(i, in_lambda)),
            Value::Object(obj) => {
                let mut inside = in_lambda;
                if let Some(class) = obj.get("class_name").and_then(Value::as_str) {
                    inside |= self.object(class, obj, in_lambda);
                }
                obj.values().for_each(|i| self.visit(i, inside));
            }
            _ => {}
        }
    }

    /// Judge one serialized object. Returns true if it is a lambda (whose contents are then not
    /// reported again).
    fn object(&mut self, class: &str, obj: &serde_json::Map<String, Value>, in_lambda: bool) -> bool {
        let config = obj.get("config").and_then(Value::as_object);
        let name = config.and_then(|c| c.get("name")).and_then(Value::as_str).unwrap_or("?");
        if LAMBDA_CLASSES.contains(&class) {
            if !in_lambda {
                let what = lambda_kind(class, config);
                self.add(
                    RuleId::KERAS_LAMBDA,
                    Severity::High,
                    format!("`{}` layer `{}` holds {what}: code run by Keras", esc(class), esc(name)),
                );
            }
            return true;
        }
        if OP_LAMBDA_CLASSES.contains(&class) {
            let function = config.and_then(|c| c.get("function")).and_then(Value::as_str).unwrap_or("?");
            let danger = DANGEROUS_OPS.iter().find(|d| function.contains(*d));
            let (severity, why) = match danger {
                Some(d) => (Severity::High, format!(", which matches `{d}`: file or Python access")),
                None => (Severity::Medium, String::new()),
            };
            self.add(
                RuleId::KERAS_OP_LAMBDA,
                severity,
                format!("`{}` layer `{}` calls TensorFlow op `{}` by name{why}", esc(class), esc(name), esc(function)),
            );
        }
        let module = obj.get("module").and_then(Value::as_str);
        if let Some(module) = module.filter(|m| !is_keras_module(m)) {
            // Keras 3 serializes plain functions as class `function` with the name as config.
            let attr = match (class, obj.get("config").and_then(Value::as_str)) {
                ("function", Some(f)) => f,
                _ => class,
            };
            let (severity, why) = match policy::classify(module, attr) {
                Decision::Denied { severity, reason } => (severity.max(Severity::High), reason.to_string()),
                Decision::Allowed => (Severity::Low, "allowed by the pickle policy".to_string()),
                Decision::Unknown => (Severity::Medium, "custom object: its module is imported at load".to_string()),
            };
            self.custom_object(module, attr, severity, why);
        } else if let Some(reg) = obj.get("registered_name").and_then(Value::as_str)
            && let Some((package, _)) = reg.split_once('>')
            && !is_keras_module(package)
        {
            self.custom_object(
                package,
                class,
                Severity::Medium,
                "custom object registered outside Keras: needs its code at load".into(),
            );
        }
        false
    }

    fn custom_object(&mut self, module: &str, class: &str, severity: Severity, why: String) {
        let e = self.custom.entry((module.to_string(), class.to_string())).or_insert((0, severity, why));
        e.0 += 1;
    }

    fn add(&mut self, rule: RuleId, severity: Severity, message: String) {
        self.ctx.add(rule, severity, message, self.member, self.offset);
    }

    fn finish(self) {
        for ((module, class), (n, severity, why)) in self.custom {
            self.ctx.add(
                RuleId::KERAS_CUSTOM_OBJECT,
                severity,
                format!("`{}.{}` ({n}×): {why}", esc(&module), esc(&class)),
                self.member,
                self.offset,
            );
        }
    }
}

fn lambda_kind(class: &str, config: Option<&serde_json::Map<String, Value>>) -> String {
    if class == "__lambda__" {
        return "a serialized Python lambda (marshalled bytecode)".into();
    }
    match config.and_then(|c| c.get("function")) {
        Some(Value::Object(f)) if f.get("class_name").and_then(Value::as_str) == Some("__lambda__") => {
            "a serialized Python lambda (marshalled bytecode)".into()
        }
        Some(Value::Array(_)) | Some(Value::String(_))
            if config.and_then(|c| c.get("function_type")).and_then(Value::as_str) == Some("lambda") =>
        {
            "marshalled Python bytecode".into()
        }
        Some(Value::String(f)) => {
            let module = config.and_then(|c| c.get("module")).and_then(Value::as_str).unwrap_or("?");
            format!("a reference to Python function `{}.{}`", esc(module), esc(f))
        }
        Some(Value::Object(f)) => {
            let module = f.get("module").and_then(Value::as_str).unwrap_or("?");
            let name = f.get("config").and_then(Value::as_str).unwrap_or("?");
            format!("a reference to Python function `{}.{}`", esc(module), esc(name))
        }
        _ => "a Python function".into(),
    }
}

fn walk(ctx: &mut Ctx<'_>, v: &Value, member: &str, offset: Option<u64>) {
    let mut w = ConfigWalk { ctx, member, offset, custom: BTreeMap::new() };
    w.visit(v, false);
    w.finish();
}

/// Without a parse: `"class_name"` followed by a lambda class, for text that is not valid JSON.
fn textual_lambda(ctx: &mut Ctx<'_>, data: &[u8], at: usize, member: &str) {
    let rest = data.get(at + NEEDLE.len()..).unwrap_or_default();
    let rest = trim_start(rest);
    let Some(rest) = rest.strip_prefix(b":") else { return };
    let rest = trim_start(rest);
    for class in LAMBDA_CLASSES.iter().chain(OP_LAMBDA_CLASSES) {
        let quoted = format!("\"{class}\"");
        if rest.starts_with(quoted.as_bytes()) {
            let (rule, severity) = if LAMBDA_CLASSES.contains(class) {
                (RuleId::KERAS_LAMBDA, Severity::High)
            } else {
                (RuleId::KERAS_OP_LAMBDA, Severity::Medium)
            };
            ctx.add(rule, severity, format!("`{class}` layer in unparseable config text"), member, Some(at as u64));
        }
    }
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let Some((b, rest)) = s.split_first() {
        if !b.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    s
}

const NEEDLE: &[u8] = b"\"class_name\"";

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while let Some(rel) = hay.get(i..)?.iter().position(|&b| b == first) {
        let at = i + rel;
        if hay.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Bytes that can appear in JSON text (anything but control characters other than whitespace).
fn is_json_text(b: u8) -> bool {
    b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r')
}

/// Parse one JSON value at `data[at..]`. Returns it and where it ends.
fn parse_at(data: &[u8], at: usize) -> Result<(Value, usize), String> {
    let end = at.saturating_add(MAX_DOC).min(data.len());
    let window = data.get(at..end).unwrap_or_default();
    let mut stream = serde_json::Deserializer::from_slice(window).into_iter::<Value>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, at + stream.byte_offset())),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no JSON value".into()),
    }
}

/// Scan an HDF5 file for Keras model configs.
pub(crate) fn scan_hdf5(ctx: &mut Ctx<'_>, data: &[u8], member: &str) {
    let mut handled_until = 0usize;
    let mut configs = 0u32;
    let mut failed_attempts = 0u32;
    let mut failures: Vec<(usize, String)> = Vec::new();
    let mut budget_spent = false;
    let mut pos = 0usize;
    while let Some(hit) = find(data, NEEDLE, pos) {
        pos = hit + 1;
        if hit < handled_until {
            continue; // inside a document already parsed
        }
        if budget_spent {
            textual_lambda(ctx, data, hit, member);
            continue;
        }
        // The JSON text around the hit starts after the last non-text byte before it.
        let floor = handled_until.max(hit.saturating_sub(MAX_BACK));
        let region = data.get(floor..hit).unwrap_or_default();
        let start = region.iter().rposition(|&b| !is_json_text(b)).map_or(floor, |q| floor + q + 1);
        let next_open = |from: usize| data.get(from..hit)?.iter().position(|&b| b == b'{').map(|q| from + q);
        let mut open = next_open(start);
        let mut attempts = 0u32;
        let mut last_error = String::from("no `{` starts the JSON text");
        let covered = loop {
            let Some(o) = open else { break false };
            match parse_at(data, o) {
                Ok((v, end)) => {
                    configs += 1;
                    walk(ctx, &v, member, Some(o as u64));
                    handled_until = end;
                    if end > hit {
                        break true;
                    }
                    open = next_open(end);
                }
                Err(e) => {
                    attempts += 1;
                    failed_attempts += 1;
                    last_error = e;
                    if attempts >= MAX_ATTEMPTS_PER_HIT || failed_attempts >= MAX_FAILED_ATTEMPTS {
                        break false;
                    }
                    open = next_open(o + 1);
                }
            }
        };
        if !covered {
            failures.push((hit, last_error));
            handled_until = handled_until.max(hit + 1);
            textual_lambda(ctx, data, hit, member);
            if failed_attempts >= MAX_FAILED_ATTEMPTS {
                budget_spent = true;
            }
        }
    }
    if let Some((at, e)) = failures.first() {
        ctx.add(
            RuleId::KERAS_MALFORMED,
            Severity::Low,
            format!("{} Keras config object(s) could not be parsed (first: {})", failures.len(), esc(e)),
            member,
            Some(*at as u64),
        );
    }
    let note = if configs == 0 && failures.is_empty() {
        "HDF5 file with no Keras model config: weights only".to_string()
    } else {
        format!("HDF5 file with {configs} Keras config document(s)")
    };
    ctx.add(RuleId::KERAS_NOTE, Severity::Info, note, member, None);
}

/// A `.keras` archive: `metadata.json` names a `keras_version`. Returns false (and reports
/// nothing) if the zip is not one.
pub(crate) fn scan_keras_zip(ctx: &mut Ctx<'_>, data: zip::Archive<'_>, index: &zip::Index, member: &str) -> bool {
    let entry = |name: &str| index.entries.iter().find(|e| e.name == name);
    let (Some(meta), Some(_)) = (entry("metadata.json"), entry("config.json")) else { return false };
    let Ok(meta_bytes) = data.member_data(meta, 1 << 20) else { return false };
    let version = match serde_json::from_slice::<Value>(&meta_bytes) {
        Ok(Value::Object(m)) => match m.get("keras_version") {
            Some(v) => v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
            None => return false,
        },
        _ => return false,
    };
    // zipfile (which Keras uses) keeps the last of duplicate names; every copy is checked.
    for config in index.entries.iter().filter(|e| e.name == "config.json") {
        scan_config_member(ctx, data, config, member);
    }
    ctx.add(
        RuleId::KERAS_NOTE,
        Severity::Info,
        format!("Keras archive, keras_version {}", esc(&version)),
        member,
        None,
    );
    true
}

fn scan_config_member(ctx: &mut Ctx<'_>, data: zip::Archive<'_>, config: &zip::Entry, member: &str) {
    let path = if member.is_empty() { "config.json".to_string() } else { format!("{member}!config.json") };
    let limit = ctx.decompress_limit(data.raw_len(config)).min(MAX_DOC);
    match data.member_data(config, limit) {
        Ok(text) => {
            ctx.bytes_scanned += text.len() as u64;
            if config.method != zip::METHOD_STORED {
                ctx.decompressed += text.len() as u64;
            }
            match serde_json::from_slice::<Value>(&text) {
                Ok(v) => walk(ctx, &v, &path, None),
                Err(e) => {
                    ctx.add(
                        RuleId::KERAS_MALFORMED,
                        Severity::Low,
                        format!("config.json is not valid JSON: {e}"),
                        &path,
                        None,
                    );
                    let mut pos = 0;
                    while let Some(hit) = find(&text, NEEDLE, pos) {
                        textual_lambda(ctx, &text, hit, &path);
                        pos = hit + 1;
                    }
                }
            }
        }
        Err(e) => {
            let why = match e {
                zip::DataError::TooLarge => "exceeds the size limit".to_string(),
                zip::DataError::Method(m) => format!("uses unsupported compression method {m}"),
                zip::DataError::Corrupt(m) => m,
            };
            ctx.add(RuleId::KERAS_MALFORMED, Severity::Low, format!("config.json unreadable: {why}"), &path, None);
        }
    }
}
