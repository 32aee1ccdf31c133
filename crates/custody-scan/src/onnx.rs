//! ONNX: a protobuf `ModelProto`. Loading runs no Python, but two things reach outside the
//! file: tensors whose bytes live in external files (a `location` that is absolute or climbs
//! with `..` makes the runtime read any file it can — CVE-2022-25882 and its kin), and nodes of
//! custom operator domains, which need a native library registered with the runtime. Every
//! graph is walked, including subgraphs in node attributes (`If`/`Loop`/`Scan` bodies), model
//! functions and training graphs.
//!
//! Field numbers are those of `onnx/onnx.proto` (checked against onnx 1.23):
//! ModelProto 1 ir_version, 7 graph, 8 opset_import, 14 metadata_props, 20 training_info,
//! 25 functions; GraphProto 1 node, 5 initializer, 15 sparse_initializer (11/12/13 inputs,
//! outputs and value infos hold only types); NodeProto 4 op_type, 5 attribute, 7 domain;
//! AttributeProto 5 t, 6 g, 10 tensors, 11 graphs, 22 sparse_tensor, 23 sparse_tensors;
//! TensorProto 8 name, 13 external_data, 14 data_location; SparseTensorProto 1 values,
//! 2 indices; StringStringEntryProto 1 key, 2 value; FunctionProto 1 name, 7 node,
//! 10 domain, 11 attribute_proto; TrainingInfoProto 1 initialization, 2 algorithm.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::container::Ctx;
use crate::protobuf::{Fields, Wire};
use crate::report::{RuleId, Severity};
use crate::text::shorten as esc;

/// protobuf's default recursion limit; deeper messages are refused by the reference parser.
const MAX_DEPTH: u32 = 100;
/// Operator domains served by the standard runtimes.
const KNOWN_DOMAINS: &[&str] = &["", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "com.microsoft"];
/// `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: u64 = 1;
/// At most this many external-data files are listed one by one.
const MAX_LISTED: usize = 10;

/// Whether `data` parses as a protobuf message with an `ir_version` varint and a `graph`.
/// Only the top level is read; sub-messages are skipped by length.
pub(crate) fn probe(data: &[u8]) -> bool {
    let (mut ir_version, mut graph) = (false, false);
    for field in Fields::new(data) {
        match field {
            Err(_) => return false,
            Ok((1, Wire::Varint(_))) => ir_version = true,
            Ok((7, Wire::Len(_))) => graph = true,
            Ok(_) => {}
        }
    }
    ir_version && graph
}

#[derive(Default)]
struct Walk {
    /// Custom domain → (nodes, a few op types).
    custom: BTreeMap<String, (u64, BTreeSet<String>)>,
    /// (domain, op type) of every node outside the known domains, to match against functions.
    used: Vec<(String, String)>,
    /// (domain, name) of the model's own functions.
    functions: HashSet<(String, String)>,
    /// External-data location → tensors stored there.
    external: BTreeMap<String, u64>,
    /// (tensor, location, why) for locations outside the model directory.
    escapes: Vec<(String, String, &'static str)>,
    /// Tensors marked EXTERNAL with no location.
    missing_location: Vec<String>,
}

type Res = Result<(), String>;

/// Scan an ONNX model (already recognised by [`probe`]).
pub(crate) fn scan(ctx: &mut Ctx<'_>, data: &[u8], member: &str) {
    let mut w = Walk::default();
    let result = w.model(data);
    w.report(ctx, member);
    if let Err(msg) = result {
        ctx.add(RuleId::ONNX_MALFORMED, Severity::Low, format!("invalid ONNX model: {msg}"), member, None);
    }
}

fn string(b: &[u8]) -> String {
    // onnx.proto is proto2: strings are not validated as UTF-8 by the parser.
    String::from_utf8_lossy(b).into_owned()
}

/// Why an external-data location leaves the model's directory, if it does.
fn escape_reason(loc: &str) -> Option<&'static str> {
    let b = loc.as_bytes();
    if loc.contains('\0') {
        return Some("contains a NUL byte");
    }
    if loc.starts_with('/') || loc.starts_with('\\') {
        return Some("is an absolute path");
    }
    if b.len() >= 2 && b.first().is_some_and(u8::is_ascii_alphabetic) && b.get(1) == Some(&b':') {
        return Some("has a drive letter");
    }
    // `..`, and components Windows reduces to it by stripping trailing dots and spaces.
    let climbs = |c: &str| c.len() >= 2 && c.matches('.').count() >= 2 && c.chars().all(|ch| ch == '.' || ch == ' ');
    if loc.split(['/', '\\']).any(climbs) {
        return Some("climbs out with `..`");
    }
    None
}

impl Walk {
    fn each<'a>(data: &'a [u8], depth: u32, mut f: impl FnMut(&mut Self, u32, Wire<'a>) -> Res, me: &mut Self) -> Res {
        if depth > MAX_DEPTH {
            return Err(format!("messages nested deeper than {MAX_DEPTH}"));
        }
        for field in Fields::new(data) {
            let (n, wire) = field?;
            f(me, n, wire)?;
        }
        Ok(())
    }

    fn model(&mut self, data: &[u8]) -> Res {
        Self::each(
            data,
            0,
            |w, n, wire| match (n, wire) {
                (7, Wire::Len(g)) => w.graph(g, 1),
                (20, Wire::Len(t)) => w.training(t, 1),
                (25, Wire::Len(f)) => w.function(f, 1),
                _ => Ok(()),
            },
            self,
        )
    }

    fn training(&mut self, data: &[u8], depth: u32) -> Res {
        Self::each(
            data,
            depth,
            |w, n, wire| match (n, wire) {
                (1 | 2, Wire::Len(g)) => w.graph(g, depth + 1),
                _ => Ok(()),
            },
            self,
        )
    }

    fn function(&mut self, data: &[u8], depth: u32) -> Res {
        let (mut name, mut domain) = (String::new(), String::new());
        Self::each(
            data,
            depth,
            |w, n, wire| match (n, wire) {
                (1, Wire::Len(s)) => {
                    name = string(s);
                    Ok(())
                }
                (10, Wire::Len(s)) => {
                    domain = string(s);
                    Ok(())
                }
                (7, Wire::Len(node)) => w.node(node, depth + 1),
                (11, Wire::Len(a)) => w.attribute(a, depth + 1),
                _ => Ok(()),
            },
            self,
        )?;
        self.functions.insert((domain, name));
        Ok(())
    }

    fn graph(&mut self, data: &[u8], depth: u32) -> Res {
        Self::each(
            data,
            depth,
            |w, n, wire| match (n, wire) {
                (1, Wire::Len(node)) => w.node(node, depth + 1),
                (5, Wire::Len(t)) => w.tensor(t, depth + 1),
                (15, Wire::Len(t)) => w.sparse(t, depth + 1),
                _ => Ok(()),
            },
            self,
        )
    }

    fn node(&mut self, data: &[u8], depth: u32) -> Res {
        let (mut op, mut domain) = (String::new(), String::new());
        Self::each(
            data,
            depth,
            |w, n, wire| match (n, wire) {
                (4, Wire::Len(s)) => {
                    op = string(s);
                    Ok(())
                }
                (7, Wire::Len(s)) => {
                    domain = string(s);
                    Ok(())
                }
                (5, Wire::Len(a)) => w.attribute(a, depth + 1),
                _ => Ok(()),
            },
            self,
        )?;
        if !KNOWN_DOMAINS.contains(&domain.as_str()) {
            self.used.push((domain, op));
        }
        Ok(())
    }

    fn attribute(&mut self, data: &[u8], depth: u32) -> Res {
        Self::each(
            data,
            depth,
            |w, n, wire| match (n, wire) {
                (5 | 10, Wire::Len(t)) => w.tensor(t, depth + 1),
                (6 | 11, Wire::Len(g)) => w.graph(g, depth + 1),
                (22 | 23, Wire::Len(t)) => w.sparse(t, depth + 1),
                _ => Ok(()),
            },
            self,
        )
    }

    fn sparse(&mut self, data: &[u8], depth: u32) -> Res {
        Self::each(
            data,
            depth,
            |w, n, wire| match (n, wire) {
                (1 | 2, Wire::Len(t)) => w.tensor(t, depth + 1),
                _ => Ok(()),
            },
            self,
        )
    }

    fn tensor(&mut self, data: &[u8], depth: u32) -> Res {
        let mut name = String::new();
        let mut locations = Vec::new();
        let mut external = false;
        Self::each(
            data,
            depth,
            |_, n, wire| {
                match (n, wire) {
                    (8, Wire::Len(s)) => name = string(s),
                    (13, Wire::Len(entry)) => {
                        let (key, value) = entry_pair(entry, depth + 1)?;
                        if key == "location" {
                            locations.push(value);
                        }
                    }
                    (14, Wire::Varint(v)) => external = v == EXTERNAL,
                    _ => {}
                }
                Ok(())
            },
            self,
        )?;
        // Every location is checked, whatever `data_location` says: a reader that trusts the
        // entries alone must not be led outside either.
        if external && locations.is_empty() {
            self.missing_location.push(name.clone());
        }
        for loc in locations {
            match escape_reason(&loc) {
                Some(why) => self.escapes.push((name.clone(), loc, why)),
                None => *self.external.entry(loc).or_default() += 1,
            }
        }
        Ok(())
    }

    fn report(self, ctx: &mut Ctx<'_>, member: &str) {
        for (tensor, loc, why) in &self.escapes {
            ctx.add(
                RuleId::ONNX_EXTERNAL_DATA_ESCAPE,
                Severity::High,
                format!(
                    "tensor `{}` reads external data from `{}`, which {why}: outside the model directory",
                    esc(tensor),
                    esc(loc)
                ),
                member,
                None,
            );
        }
        for (i, (loc, n)) in self.external.iter().enumerate() {
            if i == MAX_LISTED {
                let rest = self.external.len() - MAX_LISTED;
                ctx.add(
                    RuleId::ONNX_EXTERNAL_DATA,
                    Severity::Info,
                    format!("{rest} more external data files"),
                    member,
                    None,
                );
                break;
            }
            ctx.add(
                RuleId::ONNX_EXTERNAL_DATA,
                Severity::Info,
                format!("{n} tensor(s) stored in external file `{}` (not scanned here)", esc(loc)),
                member,
                None,
            );
        }
        if let Some(first) = self.missing_location.first() {
            ctx.add(
                RuleId::ONNX_MALFORMED,
                Severity::Low,
                format!(
                    "{} tensor(s) marked as external data have no location (first: `{}`)",
                    self.missing_location.len(),
                    esc(first)
                ),
                member,
                None,
            );
        }
        let mut custom = self.custom;
        for (domain, op) in self.used {
            if self.functions.contains(&(domain.clone(), op.clone())) {
                continue; // a function defined in the model itself
            }
            let e = custom.entry(domain).or_default();
            e.0 += 1;
            if e.1.len() < 5 {
                e.1.insert(op);
            }
        }
        for (domain, (n, ops)) in custom {
            let ops: Vec<String> = ops.iter().map(|o| format!("`{}`", esc(o))).collect();
            ctx.add(
                RuleId::ONNX_CUSTOM_DOMAIN,
                Severity::Low,
                format!(
                    "custom op domain `{}` ({n} node(s): {}): requires a custom runtime library",
                    esc(&domain),
                    ops.join(", ")
                ),
                member,
                None,
            );
        }
    }
}

/// A `StringStringEntryProto`'s (key, value).
fn entry_pair(data: &[u8], depth: u32) -> Result<(String, String), String> {
    if depth > MAX_DEPTH {
        return Err(format!("messages nested deeper than {MAX_DEPTH}"));
    }
    let (mut key, mut value) = (String::new(), String::new());
    for field in Fields::new(data) {
        match field? {
            (1, Wire::Len(s)) => key = string(s),
            (2, Wire::Len(s)) => value = string(s),
            _ => {}
        }
    }
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::escape_reason;

    #[test]
    fn escapes() {
        for bad in ["/etc/passwd", "\\\\server\\share", "C:\\x", "../x", "a/../../b", "a\\..\\b", "... /x", "a\0b"] {
            assert!(escape_reason(bad).is_some(), "{bad}");
        }
        for ok in ["weights.bin", "sub/dir/w.bin", "..weights", "w..bin", "./w.bin"] {
            assert!(escape_reason(ok).is_none(), "{ok}");
        }
    }
}
