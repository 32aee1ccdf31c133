//! A pickle analyser that walks every opcode of protocols 0-5 without executing anything.
//!
//! The walker keeps a faithful, *cheap* model of CPython's unpickler (`Modules/_pickle.c`, which
//! is what `pickle.load` and `torch.load` use):
//!
//! * the object stack and the separate mark stack with its "fence" (items below the current mark
//!   cannot be popped; `POP` on an empty frame pops the mark instead, as in `load_pop`);
//! * the memo, including `MEMOIZE` storing at index `len(memo)` (the number of filled slots);
//! * `FRAME` as the C unpickler treats it: the frame length must be available, but opcodes may
//!   straddle frame boundaries (pickle.py would reject that; we note the divergence);
//! * the checks that make the loader fail (underflow, missing marks, bad lengths, unknown
//!   opcodes, `STACK_GLOBAL` with non-`str` operands, ...), with the byte offset where it fails.
//!
//! The input is a slice or a file read by position (`source::Input`): opcodes are read through
//! a window, a payload is skipped by its length and its bytes are read only when a check needs
//! them (whether a constant is itself a pickle, UTF-8 validity of a `str`, which is checked in
//! chunks, a nested loader's argument), so a walk costs the same whatever the payloads weigh.
//!
//! Values are small `Copy` enums: strings and bytes are spans of the input, containers are
//! counts (tuples of up to [`MAX_TRACKED_TUPLE`] elements keep their elements so call arguments
//! can be inspected). Memo `GET`s copy a 16-byte value, never a container, so "billion laughs"
//! inputs cost linear time and memory.
//!
//! Everything the loader would import (`GLOBAL`, `STACK_GLOBAL`, `INST`, `EXT*`), call (`REDUCE`,
//! `NEWOBJ`, `NEWOBJ_EX`, `OBJ`, `INST`) or mutate (`BUILD`/`SETITEM`/`APPEND` on an imported
//! global) is recorded *as the opcode is walked*, so a failure later in the stream cannot hide a
//! call that already happened.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::container::Ctx;
use crate::opcodes as op;
use crate::policy::{self, Decision};
use crate::report::{
    AttributeRewrite, Call, Disposition, Finding, Import, ImportVia, Location, PickleError, PickleReport, RuleId,
    Severity,
};
use crate::source::{Input, SurrogatepassUtf8};
use crate::text;

/// Tuples up to this length keep their elements (enough for any call's argument tuple).
pub const MAX_TRACKED_TUPLE: usize = 16;
/// Dicts keep up to this many items, and only while joblib wrappers are in play.
const MAX_TRACKED_DICT: usize = 64;
/// Recorded imports per pickle (the rest are counted, not listed).
const MAX_RECORDED_IMPORTS: usize = 4096;
/// Distinct (opcode, callee) call records per pickle.
const MAX_RECORDED_CALLS: usize = 4096;
/// Checks of the time budget happen every this many opcodes.
const TIME_CHECK_INTERVAL: u64 = 1 << 16;
const UNTRACKED: u32 = u32::MAX;

/// How the text of a string span is encoded in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    /// Raw bytes (BIN* opcodes): UTF-8 for unicode opcodes, as-is for bytes/strings.
    Raw,
    /// Protocol-0 `STRING` body: Python bytes escapes.
    PyEscape,
    /// Protocol-0 `UNICODE` body: raw-unicode-escape.
    RawUnicodeEscape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
    enc: Enc,
    /// Whether this value was pushed by a memo `GET` (for provenance in reports).
    from_memo: bool,
}

/// The model of one stack or memo slot.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    /// An empty memo slot.
    Hole,
    /// Anything whose content does not matter (None, bools, floats, persistent ids, buffers...).
    Any,
    /// An integer that fits in i64 (joblib array shapes need them).
    Int(i64),
    /// A `str` (unicode, or `STRING`/`BINSTRING` which CPython decodes to str by default).
    Str(Span),
    /// A `bytes`/`bytearray`.
    Bytes(Span),
    /// An imported global: index into `Walker::globals`.
    Global(u32),
    /// Result of calling something: index of the callee global (or `UNTRACKED`), and an
    /// auxiliary code (for `numpy.dtype` calls: the item size, see [`DTYPE_OBJECT`]).
    Obj(u32, u32),
    /// A tuple: `(start, len)` in the tuple arena, or `(UNTRACKED, len)`.
    Tuple(u32, u32),
    /// A list (mutable; contents not tracked).
    List,
    /// A dict: index into the dict table, or `UNTRACKED`.
    Dict(u32),
    /// A set or frozenset.
    Set,
    /// A global obtained through the copyreg extension registry.
    Ext(u32),
}

/// `Obj` aux code of a `numpy.dtype` with object items (joblib then embeds a whole pickle).
const DTYPE_OBJECT: u32 = u32::MAX;

struct GlobalRec {
    path: String,
    decision: Decision,
    /// Set once the global's attributes were rewritten by BUILD (later uses are tainted).
    rewritten: bool,
}

/// Sparse-tolerant memo: dense vector for the usual 0..n indices, a map for far-away ones.
#[derive(Default)]
struct Memo {
    dense: Vec<Value>,
    sparse: HashMap<u64, Value>,
    filled: usize,
}

impl Memo {
    fn get(&self, idx: u64) -> Option<Value> {
        let v = match usize::try_from(idx).ok().and_then(|i| self.dense.get(i)) {
            Some(v) => *v,
            None => self.sparse.get(&idx).copied().unwrap_or(Value::Hole),
        };
        if v == Value::Hole { None } else { Some(v) }
    }

    fn put(&mut self, idx: u64, v: Value) {
        const MAX_GAP: u64 = 1 << 16;
        let dense_len = self.dense.len() as u64;
        if idx < dense_len {
            let slot = &mut self.dense[idx as usize];
            if *slot == Value::Hole {
                self.filled += 1;
            }
            *slot = v;
        } else if idx <= dense_len + MAX_GAP && !self.sparse.contains_key(&idx) {
            self.dense.resize(idx as usize, Value::Hole);
            self.dense.push(v);
            self.filled += 1;
        } else if self.sparse.insert(idx, v).is_none() {
            self.filled += 1;
        }
    }
}

/// How much to trust a pickle found at a given place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A pickle the loader certainly runs (file start, archive member): everything counts, and a
    /// parse failure makes the result inconclusive.
    Primary,
    /// A pickle that may or may not be one (bytes after STOP, embedded constants): if it does not
    /// parse to STOP, only High/Critical findings are kept and the failure is informational.
    Speculative,
}

/// Result of walking one pickle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// Offset just past STOP.
    pub end: Option<usize>,
    /// Whether a High/Critical finding was produced.
    pub dangerous: bool,
    /// Whether a joblib NumpyArrayWrapper was seen.
    pub joblib: bool,
    /// Offset of the opcode where the walk failed, if it did.
    pub failed_at: Option<usize>,
}

enum Fail {
    /// The loader would raise here.
    Malformed(String),
    /// One of our limits was reached.
    Budget(String),
}

type Step<T> = Result<T, Fail>;

fn malformed<T>(msg: impl Into<String>) -> Step<T> {
    Err(Fail::Malformed(msg.into()))
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum CalleeKey {
    Global(u32),
    ResultOf(u32),
    Ext(u32),
    Other,
}

struct Walker<'a, 'c, 'o> {
    input: Input<'a>,
    pos: usize,
    /// Offset of the current opcode.
    op_pos: usize,
    member: &'c str,
    depth: u32,
    ctx: &'c mut Ctx<'o>,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Memo,
    globals: Vec<GlobalRec>,
    tuples: Vec<Value>,
    dicts: Vec<Vec<(Value, Value)>>,
    /// Dict contents are tracked only once a joblib wrapper class is imported.
    track_dicts: bool,
    joblib_wrapper: bool,
    report: PickleReport,
    calls: HashMap<(&'static str, CalleeKey), usize>,
    findings: Vec<Finding>,
    frame_end: Option<usize>,
    frame_divergence_noted: bool,
    scratch: Vec<u8>,
    scratch_str: String,
    /// Nested pickles to scan after this walk: (bytes, offset, trusted, what).
    nested: Vec<(Nested<'a>, usize, Mode, String)>,
}

/// The bytes of a nested pickle: decoded (base64, Latin-1...), or a span of the outer stream,
/// which is then read where it lies instead of being copied.
enum Nested<'a> {
    Owned(Vec<u8>),
    Span(Input<'a>),
}

/// Walk one pickle starting at `start` in `data`; see [`scan_pickle_input`].
pub(crate) fn scan_pickle(
    ctx: &mut Ctx<'_>,
    data: &[u8],
    start: usize,
    member: &str,
    depth: u32,
    mode: Mode,
) -> Outcome {
    scan_pickle_input(ctx, Input::mem(data), start, member, depth, mode)
}

/// Walk one pickle starting at `start` in `input`. Findings go to `ctx`; the report of this
/// pickle (and of nested ones) to `ctx.pickles`.
pub(crate) fn scan_pickle_input(
    ctx: &mut Ctx<'_>,
    input: Input<'_>,
    start: usize,
    member: &str,
    depth: u32,
    mode: Mode,
) -> Outcome {
    let mut w = Walker {
        input,
        pos: start,
        op_pos: start,
        member,
        depth,
        ctx,
        stack: Vec::with_capacity(64),
        marks: Vec::new(),
        memo: Memo::default(),
        globals: Vec::new(),
        tuples: Vec::new(),
        dicts: Vec::new(),
        track_dicts: false,
        joblib_wrapper: false,
        report: PickleReport { member: member.to_string(), start: start as u64, depth, ..PickleReport::default() },
        calls: HashMap::new(),
        findings: Vec::new(),
        frame_end: None,
        frame_divergence_noted: false,
        scratch: Vec::new(),
        scratch_str: String::new(),
        nested: Vec::new(),
    };
    let result = w.run();
    let end = match result {
        Ok(_) => Some(w.pos),
        Err(fail) => {
            let (rule, msg) = match fail {
                Fail::Malformed(m) => (RuleId::MALFORMED, m),
                Fail::Budget(m) => (RuleId::PICKLE_BUDGET, m),
            };
            w.report.errors.push(PickleError { offset: w.op_pos as u64, message: msg.clone() });
            let severity = match (mode, rule) {
                (Mode::Primary, _) => Severity::Low,
                (Mode::Speculative, r) if r == RuleId::PICKLE_BUDGET => Severity::Low,
                (Mode::Speculative, _) => Severity::Info,
            };
            // A speculative pickle that fails to parse is probably not a pickle at all: keep only
            // what is dangerous whatever the interpretation, and don't make the file inconclusive.
            let rule =
                if mode == Mode::Speculative && rule == RuleId::MALFORMED { RuleId::TRAILING_DATA } else { rule };
            w.finding(rule, severity, format!("loader would fail: {msg}"));
            None
        }
    };
    w.report.end = end.map(|e| e as u64);
    let failed_at = if end.is_none() { Some(w.op_pos) } else { None };
    let Walker { findings, report, nested, ctx, joblib_wrapper, .. } = w;
    let keep_all = mode == Mode::Primary || end.is_some();
    let dangerous = findings.iter().any(|f| f.severity >= Severity::High);
    let worth_reporting = keep_all || dangerous;
    for f in findings {
        if keep_all || f.severity >= Severity::High || f.severity == Severity::Info || f.rule == RuleId::PICKLE_BUDGET {
            ctx.findings.push(f);
        }
    }
    if worth_reporting {
        ctx.pickles.push(report);
    }
    if worth_reporting {
        for (bytes, off, nmode, what) in nested {
            let nested_member = format!("{member}!nested@{off}");
            let input = match &bytes {
                Nested::Owned(v) => Input::mem(v),
                Nested::Span(i) => i.fresh(),
            };
            ctx.scan_nested_pickle(input, &nested_member, depth + 1, nmode, &what, member, off as u64);
        }
    }
    Outcome { end, dangerous, joblib: joblib_wrapper, failed_at }
}

impl Walker<'_, '_, '_> {
    fn loc(&self, offset: usize) -> Location {
        Location { member: self.member.to_string(), offset: Some(offset as u64), ..Location::default() }
    }

    fn finding(&mut self, rule: RuleId, severity: Severity, message: String) {
        let location = self.loc(self.op_pos);
        self.findings.push(Finding { rule, severity, message, location });
    }

    // ----- input -------------------------------------------------------------------------

    fn take(&mut self, n: usize) -> Step<&[u8]> {
        let start = self.pos;
        match self.input.bytes(start, n) {
            Some(s) => {
                self.pos = start + n;
                Ok(s)
            }
            None => malformed("pickle data was truncated"),
        }
    }

    /// Move past `n` bytes without reading them (a payload no check has needed yet).
    fn skip(&mut self, n: usize) -> Step<()> {
        match self.pos.checked_add(n).filter(|&e| e <= self.input.len()) {
            Some(end) => {
                self.pos = end;
                Ok(())
            }
            None => malformed("pickle data was truncated"),
        }
    }

    fn take_u8(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }

    fn take_u16(&mut self) -> Step<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn take_u32(&mut self) -> Step<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn take_u64(&mut self) -> Step<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A newline-terminated line without its newline. CPython requires the newline.
    fn line(&mut self) -> Step<(usize, usize)> {
        match self.input.line(self.pos) {
            Some(n) => {
                let start = self.pos;
                self.pos += n + 1;
                Ok((start, n))
            }
            None => malformed("pickle data was truncated (no newline)"),
        }
    }

    /// The module and name lines of `GLOBAL`/`INST`, both read before either is decoded.
    fn two_lines(&mut self) -> Step<(String, String)> {
        let (ms, mn) = self.line()?;
        // Reading the second line may move the window off the first.
        let module = self.input.held(ms, mn).to_vec();
        let (ns, nn) = self.line()?;
        Ok((utf8_line(&module)?, utf8_line(self.input.held(ns, nn))?))
    }

    /// A span of `len` bytes starting at the current position, which is then skipped.
    fn span(&mut self, len: u64, enc: Enc) -> Step<Option<Span>> {
        let start = self.pos;
        let len_usize = usize::try_from(len).map_err(|_| Fail::Malformed("length exceeds address space".into()))?;
        self.skip(len_usize)?;
        Ok(match (u32::try_from(start), u32::try_from(len_usize)) {
            (Ok(s), Ok(l)) => Some(Span { start: s, len: l, enc, from_memo: false }),
            // Beyond 4 GiB offsets we stop tracking content (the value becomes opaque).
            _ => None,
        })
    }

    // ----- stack -------------------------------------------------------------------------

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, v: Value) -> Step<()> {
        if self.stack.len() >= self.ctx.opts.max_stack {
            return Err(Fail::Budget(format!("stack depth exceeds {}", self.ctx.opts.max_stack)));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Step<Value> {
        if self.stack.len() <= self.fence() {
            return malformed("unpickling stack underflow");
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => malformed("unpickling stack underflow"),
        }
    }

    fn top(&self) -> Step<Value> {
        if self.stack.len() <= self.fence() {
            return malformed("unpickling stack underflow");
        }
        match self.stack.last() {
            Some(v) => Ok(*v),
            None => malformed("unpickling stack underflow"),
        }
    }

    /// Pop the innermost mark, returning the stack position it marked (`marker()` in C).
    fn pop_mark(&mut self) -> Step<usize> {
        match self.marks.pop() {
            Some(m) => Ok(m.min(self.stack.len())),
            None => malformed("could not find MARK"),
        }
    }

    /// Pop everything above position `from` into a tuple value.
    fn pop_tuple_from(&mut self, from: usize) -> Step<Value> {
        if from < self.fence() || from > self.stack.len() {
            return malformed("unpickling stack underflow");
        }
        let n = self.stack.len() - from;
        let v = if n <= MAX_TRACKED_TUPLE {
            let start = self.tuples.len();
            self.tuples.extend_from_slice(&self.stack[from..]);
            match u32::try_from(start) {
                Ok(s) => Value::Tuple(s, n as u32),
                Err(_) => Value::Tuple(UNTRACKED, n as u32),
            }
        } else {
            Value::Tuple(UNTRACKED, u32::try_from(n).unwrap_or(u32::MAX))
        };
        self.stack.truncate(from);
        Ok(v)
    }

    fn tuple_items(&self, v: Value) -> &[Value] {
        match v {
            Value::Tuple(s, n) if s != UNTRACKED => {
                let (s, n) = (s as usize, n as usize);
                self.tuples.get(s..s + n).unwrap_or(&[])
            }
            _ => &[],
        }
    }

    // ----- strings -----------------------------------------------------------------------

    fn span_bytes(&self, s: Span) -> Cow<'_, [u8]> {
        self.input.span(s.start as usize, s.len as usize).unwrap_or_default()
    }

    /// Decode a `str` value's text (lossy where CPython would have failed earlier).
    fn str_text(&mut self, s: Span) -> String {
        let raw = self.input.span(s.start as usize, s.len as usize).unwrap_or_default();
        let raw = &*raw;
        match s.enc {
            Enc::Raw => String::from_utf8_lossy(raw).into_owned(),
            Enc::PyEscape => {
                let mut buf = std::mem::take(&mut self.scratch);
                let out = if text::decode_bytes_escape(raw, &mut buf).is_ok() {
                    buf.iter().map(|&b| char::from(b)).collect()
                } else {
                    String::from_utf8_lossy(raw).into_owned()
                };
                self.scratch = buf;
                out
            }
            Enc::RawUnicodeEscape => {
                let mut buf = std::mem::take(&mut self.scratch_str);
                let out = if text::decode_raw_unicode_escape(raw, &mut buf).is_ok() {
                    buf.clone()
                } else {
                    String::from_utf8_lossy(raw).into_owned()
                };
                self.scratch_str = buf;
                out
            }
        }
    }

    /// The bytes a value would be as a `bytes` argument (str values encoded as Latin-1, which is
    /// how `_codecs.encode(s, 'latin1')` and protocol-0 bytes work).
    fn value_bytes(&mut self, v: Value) -> Option<Vec<u8>> {
        match v {
            Value::Bytes(s) => Some(match s.enc {
                Enc::Raw => self.span_bytes(s).into_owned(),
                _ => self.str_text(s).chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect(),
            }),
            Value::Str(s) => {
                let t = self.str_text(s);
                t.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
            }
            _ => None,
        }
    }

    /// Text of a string operand for `STACK_GLOBAL`: CPython requires both to be `str`.
    fn operand_text(&mut self, v: Value) -> Option<(String, bool)> {
        match v {
            Value::Str(s) => Some((self.str_text(s), s.from_memo)),
            _ => None,
        }
    }

    fn describe(&self, v: Value) -> Cow<'static, str> {
        match v {
            Value::Global(i) => Cow::Owned(self.globals.get(i as usize).map(|g| g.path.clone()).unwrap_or_default()),
            Value::Obj(g, _) if g != UNTRACKED => Cow::Owned(format!(
                "<result of {}>",
                self.globals.get(g as usize).map(|g| g.path.as_str()).unwrap_or("?")
            )),
            Value::Obj(..) => Cow::Borrowed("<result of a call>"),
            Value::Ext(c) => Cow::Owned(format!("<extension code {c}>")),
            Value::Str(_) => Cow::Borrowed("<str>"),
            Value::Bytes(_) => Cow::Borrowed("<bytes>"),
            Value::Int(_) => Cow::Borrowed("<int>"),
            Value::Tuple(..) => Cow::Borrowed("<tuple>"),
            Value::List => Cow::Borrowed("<list>"),
            Value::Dict(_) => Cow::Borrowed("<dict>"),
            Value::Set => Cow::Borrowed("<set>"),
            Value::Any | Value::Hole => Cow::Borrowed("<object>"),
        }
    }

    /// Look at a freshly pushed string/bytes constant: does it carry a pickle (raw, or base64)?
    fn inspect_constant(&mut self, v: Value) {
        let (Value::Str(s) | Value::Bytes(s)) = v else { return };
        if s.len < 4 || self.depth >= self.ctx.opts.max_depth {
            return;
        }
        // Three bytes decide; the rest of a large payload is read only if they do.
        let Some(raw) = self.input.span(s.start as usize, 3) else { return };
        let raw = [raw[0], raw[1], raw[2]];
        let looks_raw = s.enc == Enc::Raw && raw[0] == op::PROTO && raw[1] <= op::HIGHEST_PROTOCOL;
        // Latin-1 text of a pickle, stored as UTF-8 (U+0080 = C2 80).
        let looks_latin1 = s.enc == Enc::Raw && raw.starts_with(&[0xc2, 0x80]) && raw[2] <= op::HIGHEST_PROTOCOL;
        // base64 of b"\x80\x0N": "gA" then A-X.
        let looks_b64 = s.len >= 12 && raw.starts_with(b"gA") && (b'A'..=b'X').contains(&raw[2]);
        if looks_raw {
            let bytes = Nested::Span(self.input.sub(s.start as usize, s.len as usize));
            self.nested.push((bytes, self.op_pos, Mode::Speculative, "embedded constant".into()));
        } else if looks_latin1 {
            if let Some(bytes) = self.value_bytes(v) {
                let bytes = Nested::Owned(bytes);
                self.nested.push((bytes, self.op_pos, Mode::Speculative, "embedded latin-1 string".into()));
            }
        } else if looks_b64 && let Some(bytes) = text::base64_decode(&self.span_bytes(s)) {
            let bytes = Nested::Owned(bytes);
            self.nested.push((bytes, self.op_pos, Mode::Speculative, "base64-encoded constant".into()));
        }
    }

    // ----- imports and calls -------------------------------------------------------------

    fn import(&mut self, module: &str, name: &str, via: ImportVia, from_memo: bool) -> Value {
        let path = policy::full_path(module, name);
        let decision = policy::classify_path(&path);
        let disposition = match decision {
            Decision::Allowed => Disposition::Allowed,
            Decision::Denied { .. } => Disposition::Denied,
            Decision::Unknown => Disposition::Unknown,
        };
        if path.ends_with("numpy_pickle.NumpyArrayWrapper") {
            self.track_dicts = true;
            self.joblib_wrapper = true;
        }
        let via_name = match via {
            ImportVia::Global => "GLOBAL",
            ImportVia::StackGlobal => "STACK_GLOBAL",
            ImportVia::Inst => "INST",
            ImportVia::Ext => "EXT",
        };
        let memo_note = if from_memo { " (operands from memo)" } else { "" };
        match decision {
            Decision::Allowed => {}
            Decision::Denied { severity, reason } => self.finding(
                RuleId::DANGEROUS_GLOBAL,
                severity,
                format!("{via_name} imports `{module}.{name}`{memo_note}: {reason}"),
            ),
            Decision::Unknown => self.finding(
                RuleId::UNKNOWN_GLOBAL,
                Severity::Medium,
                format!("{via_name} imports `{module}.{name}`{memo_note}, which is not on the allow-list"),
            ),
        }
        if self.report.imports.len() < MAX_RECORDED_IMPORTS {
            self.report.imports.push(Import {
                module: module.to_string(),
                name: name.to_string(),
                via,
                operand_from_memo: from_memo,
                offset: self.op_pos as u64,
                disposition,
            });
        } else {
            self.report.imports_truncated = true;
        }
        let idx = self.globals.len() as u32;
        self.globals.push(GlobalRec { path, decision, rewritten: false });
        Value::Global(idx)
    }

    /// Record a call of `callee` with `args` and return the modelled result.
    fn call(&mut self, opcode: &'static str, callee: Value, args: Value) -> Value {
        let key = match callee {
            Value::Global(i) => CalleeKey::Global(i),
            Value::Obj(g, _) => CalleeKey::ResultOf(g),
            Value::Ext(c) => CalleeKey::Ext(c),
            _ => CalleeKey::Other,
        };
        match self.calls.get(&(opcode, key)) {
            Some(&i) => self.report.calls[i].count += 1,
            None if self.report.calls.len() < MAX_RECORDED_CALLS => {
                let callee_s = self.describe(callee).into_owned();
                self.calls.insert((opcode, key), self.report.calls.len());
                self.report.calls.push(Call { opcode, callee: callee_s, first_offset: self.op_pos as u64, count: 1 });
            }
            None => {}
        }
        let (origin, path, decision, rewritten) = match callee {
            Value::Global(i) => match self.globals.get(i as usize) {
                Some(g) => (i, Some(g.path.clone()), g.decision, g.rewritten),
                None => (UNTRACKED, None, Decision::Unknown, false),
            },
            _ => (UNTRACKED, None, Decision::Unknown, false),
        };
        let items: Vec<Value> = self.tuple_items(args).to_vec();
        // Calls of anything not known to be safe, with code-looking text, are treated as attacks
        // even when the callee is merely unknown (new gadgets appear every month).
        if decision != Decision::Allowed || rewritten {
            for &item in &items {
                if let Value::Str(s) | Value::Bytes(s) = item {
                    let t = self.str_text(s);
                    if policy::looks_like_code(&t) {
                        let shown: String = t.chars().take(80).collect();
                        let callee_s = self.describe(callee).into_owned();
                        self.finding(
                            RuleId::CODE_ARGUMENT,
                            Severity::High,
                            format!("{opcode} calls `{callee_s}` with code-like argument `{shown}`"),
                        );
                        break;
                    }
                }
            }
        }
        if let Some(p) = &path
            && policy::is_nested_loader(p)
            && self.depth < self.ctx.opts.max_depth
        {
            for &item in &items {
                let bytes = match item {
                    // Raw bytes are scanned where they lie, however large.
                    Value::Bytes(s) if s.enc == Enc::Raw => {
                        Some(Nested::Span(self.input.sub(s.start as usize, s.len as usize)))
                    }
                    _ => self.value_bytes(item).map(Nested::Owned),
                };
                if let Some(bytes) = bytes {
                    self.nested.push((bytes, self.op_pos, Mode::Primary, format!("argument of `{p}`")));
                }
            }
        }
        let aux = match path.as_deref() {
            Some("numpy.dtype") => items.first().map(|&v| self.dtype_itemsize(v)).unwrap_or(0),
            _ => 0,
        };
        Value::Obj(origin, aux)
    }

    /// Item size of a NumPy dtype string (`'f8'`, `'<i4'`, `'U5'`, `'O8'`...), 0 if unknown.
    fn dtype_itemsize(&mut self, v: Value) -> u32 {
        let Value::Str(s) = v else { return 0 };
        let t = self.str_text(s);
        let t = t.trim_start_matches(['<', '>', '|', '=']);
        let Some(kind) = t.chars().next() else { return 0 };
        let n: u32 = t[kind.len_utf8()..].parse().unwrap_or(0);
        match kind {
            'O' => DTYPE_OBJECT,
            'U' => n.saturating_mul(4),
            'b' | 'i' | 'u' | 'f' | 'c' | 'S' | 'V' | 'M' | 'm' | 'a' => n,
            '?' => 1,
            _ => 0,
        }
    }

    /// Mutation of an imported global (BUILD, SETITEM, APPEND... applied to it).
    fn mutate_global(&mut self, target: Value, opcode: &'static str) {
        if let Value::Global(i) = target {
            let path = match self.globals.get_mut(i as usize) {
                Some(g) => {
                    g.rewritten = true;
                    g.path.clone()
                }
                None => return,
            };
            self.report.rewrites.push(AttributeRewrite { target: path.clone(), opcode, offset: self.op_pos as u64 });
            self.finding(
                RuleId::ATTRIBUTE_REWRITE,
                Severity::High,
                format!("{opcode} rewrites attributes of imported `{path}`"),
            );
        } else if let Value::Ext(code) = target {
            self.report.rewrites.push(AttributeRewrite {
                target: format!("<extension code {code}>"),
                opcode,
                offset: self.op_pos as u64,
            });
            self.finding(
                RuleId::ATTRIBUTE_REWRITE,
                Severity::High,
                format!("{opcode} rewrites attributes of extension-registry global {code}"),
            );
        }
    }

    fn memo_put(&mut self, idx: u64, v: Value) -> Step<()> {
        if self.memo.filled >= self.ctx.opts.max_memo && self.memo.get(idx).is_none() {
            return Err(Fail::Budget(format!("memo exceeds {} entries", self.ctx.opts.max_memo)));
        }
        // Values stored in the memo lose their provenance flag; GET sets it.
        self.memo.put(idx, v);
        Ok(())
    }

    fn memo_get(&mut self, idx: u64) -> Step<()> {
        match self.memo.get(idx) {
            Some(v) => {
                let v = match v {
                    Value::Str(mut s) => {
                        s.from_memo = true;
                        Value::Str(s)
                    }
                    other => other,
                };
                self.push(v)
            }
            None => malformed(format!("Memo value not found at index {idx}")),
        }
    }

    // ----- joblib ------------------------------------------------------------------------

    fn dict_get(&mut self, d: Value, key: &str) -> Option<Value> {
        let Value::Dict(i) = d else { return None };
        let items = self.dicts.get(i as usize)?.clone();
        for (k, v) in items {
            if let Value::Str(s) = k
                && self.str_text(s) == key
            {
                return Some(v);
            }
        }
        None
    }

    /// joblib's `NumpyUnpickler.load_build`: after BUILD of a `NumpyArrayWrapper`, the array's
    /// bytes follow inline in the stream (a whole pickle for object arrays), optionally preceded
    /// by a one-byte padding length and that many padding bytes.
    fn joblib_skip_array(&mut self, state: Value) -> Step<()> {
        // joblib commits the current frame before writing array bytes: those bytes are outside
        // any frame, so skipping them is not a frame straddle.
        if self.frame_end.is_some_and(|fe| self.pos >= fe) {
            self.frame_end = None;
        }
        let dtype = self.dict_get(state, "dtype");
        let shape = self.dict_get(state, "shape");
        let aligned = self.dict_get(state, "numpy_array_alignment_bytes").is_some();
        let itemsize = match dtype {
            Some(Value::Obj(_, aux)) if aux != 0 => aux,
            _ => return malformed("cannot determine the dtype of a joblib array"),
        };
        if itemsize == DTYPE_OBJECT {
            // pickle.load(file_handle): a complete pickle, then the outer stream continues.
            let here = self.pos;
            if self.depth >= self.ctx.opts.max_depth {
                return Err(Fail::Budget("joblib object array nested too deep".into()));
            }
            let member = self.member.to_string();
            let input = self.input.fresh();
            let out = scan_pickle_input(self.ctx, input, here, &member, self.depth + 1, Mode::Primary);
            if out.dangerous {
                self.finding(RuleId::NESTED, Severity::Info, "joblib object array pickle carries findings".into());
            }
            return match out.end {
                Some(end) => {
                    self.pos = end;
                    Ok(())
                }
                None => malformed("joblib object array pickle does not end"),
            };
        }
        let count = match shape {
            Some(t @ Value::Tuple(..)) => {
                let mut c: u64 = 1;
                let items: Vec<Value> = self.tuple_items(t).to_vec();
                if let Value::Tuple(s, n) = t
                    && s == UNTRACKED
                    && n > 0
                {
                    return malformed("joblib array shape too long to model");
                }
                for it in items {
                    match it {
                        Value::Int(n) if n >= 0 => c = c.saturating_mul(n as u64),
                        _ => return malformed("joblib array shape is not a tuple of ints"),
                    }
                }
                c
            }
            _ => return malformed("joblib array has no shape"),
        };
        if aligned {
            let pad = self.take_u8()?;
            self.skip(usize::from(pad))?;
        }
        let bytes = count.saturating_mul(u64::from(itemsize));
        let n = usize::try_from(bytes).map_err(|_| Fail::Malformed("joblib array larger than memory".into()))?;
        self.skip(n)
    }

    // ----- the loop ----------------------------------------------------------------------

    /// Walk until STOP. Returns the value STOP popped (for legacy-torch detection).
    fn run(&mut self) -> Step<Option<Value>> {
        let deadline = self.ctx.deadline;
        loop {
            self.report.opcodes += 1;
            if self.report.opcodes.is_multiple_of(TIME_CHECK_INTERVAL)
                && let Some(d) = deadline
                && std::time::Instant::now() > d
            {
                return Err(Fail::Budget("time budget exceeded".into()));
            }
            self.op_pos = self.pos;
            let code = self.take_u8()?;
            let stopped = self.step(code)?;
            if let Some(fe) = self.frame_end {
                if self.op_pos < fe && self.pos > fe && !self.frame_divergence_noted {
                    self.frame_divergence_noted = true;
                    self.finding(
                        RuleId::FRAME_DIVERGENCE,
                        Severity::Low,
                        "opcode straddles a FRAME boundary (accepted by the C unpickler, rejected by pickle.py)".into(),
                    );
                }
                if self.pos >= fe {
                    self.frame_end = None;
                }
            }
            if let Some(v) = stopped {
                return Ok(Some(v));
            }
        }
    }

    /// Execute one opcode. Returns `Some(value)` at STOP.
    fn step(&mut self, code: u8) -> Step<Option<Value>> {
        match code {
            op::STOP => {
                let v = self.pop()?;
                return Ok(Some(v));
            }
            op::PROTO => {
                let p = self.take_u8()?;
                if p > op::HIGHEST_PROTOCOL {
                    return malformed(format!("unsupported pickle protocol: {p}"));
                }
                self.report.protocol = self.report.protocol.max(p);
            }
            op::FRAME => {
                let len = self.take_u64()?;
                let after = self.pos;
                if self.frame_end.is_some_and(|fe| after <= fe) && !self.frame_divergence_noted {
                    self.frame_divergence_noted = true;
                    self.finding(
                        RuleId::FRAME_DIVERGENCE,
                        Severity::Low,
                        "FRAME starts before the previous frame ends (pickle.py rejects this)".into(),
                    );
                }
                let end = usize::try_from(len).ok().and_then(|l| after.checked_add(l));
                match end {
                    Some(e) if e <= self.input.len() => self.frame_end = Some(e),
                    _ => {
                        // The C unpickler fails here, but pickle.py's _Unframer accepts a short
                        // frame and keeps going: walk on, so what follows is still judged.
                        self.report.errors.push(PickleError {
                            offset: self.op_pos as u64,
                            message: "FRAME longer than the remaining input".into(),
                        });
                        self.finding(
                            RuleId::MALFORMED,
                            Severity::Low,
                            "FRAME longer than the remaining input (C unpickler fails, pickle.py continues)".into(),
                        );
                        self.frame_end = None;
                    }
                }
            }
            op::MARK => {
                self.marks.push(self.stack.len());
            }
            op::POP => {
                // load_pop: if the top of the stack is exactly at a mark, the mark is popped.
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            op::POP_MARK => {
                let m = self.pop_mark()?;
                self.stack.truncate(m);
            }
            op::DUP => {
                let v = self.top()?;
                self.push(v)?;
            }
            // --- numbers -------------------------------------------------------------------
            op::INT => {
                let (s, n) = self.line()?;
                let line = self.input.held(s, n);
                // load_int: strtol(base 0) first; "00"/"01" are the booleans; if strtol
                // fails, PyLong_FromString(base 0) gets a second try.
                let v = match text::parse_strtol(line) {
                    Some(_) if line == b"01" || line == b"00" => Value::Any,
                    Some(i) => Value::Int(i),
                    None => match text::parse_py_int(line, true) {
                        Ok(Some(i)) => Value::Int(i),
                        Ok(None) => Value::Any,
                        Err(()) => return malformed("could not convert string to int"),
                    },
                };
                self.push(v)?;
            }
            op::LONG => {
                let (s, n) = self.line()?;
                let mut line = self.input.held(s, n);
                if line.last() == Some(&b'L') {
                    line = &line[..line.len() - 1];
                }
                let v = match text::parse_py_int(line, true) {
                    Ok(Some(i)) => Value::Int(i),
                    Ok(None) => Value::Any,
                    Err(()) => return malformed("could not convert string to int"),
                };
                self.push(v)?;
            }
            op::FLOAT => {
                let (s, n) = self.line()?;
                if !text::valid_py_float(self.input.held(s, n)) {
                    return malformed("could not convert string to float");
                }
                self.push(Value::Any)?;
            }
            op::BININT => {
                let v = self.take_u32()? as i32;
                self.push(Value::Int(i64::from(v)))?;
            }
            op::BININT1 => {
                let v = self.take_u8()?;
                self.push(Value::Int(i64::from(v)))?;
            }
            op::BININT2 => {
                let v = self.take_u16()?;
                self.push(Value::Int(i64::from(v)))?;
            }
            op::LONG1 => {
                let n = self.take_u8()?;
                let b = self.take(usize::from(n))?;
                let v = long_value(b);
                self.push(v)?;
            }
            op::LONG4 => {
                let n = self.take_u32()? as i32;
                if n < 0 {
                    return malformed("LONG pickle has negative byte count");
                }
                // Longer than 8 bytes is opaque anyway: skip it rather than read it.
                let v = if n > 8 {
                    self.skip(n as usize)?;
                    Value::Any
                } else {
                    long_value(self.take(n as usize)?)
                };
                self.push(v)?;
            }
            op::BINFLOAT => {
                self.skip(8)?;
                self.push(Value::Any)?;
            }
            op::NONE | op::NEWTRUE | op::NEWFALSE => self.push(Value::Any)?,
            // --- strings and bytes ---------------------------------------------------------
            op::STRING => {
                let (s, n) = self.line()?;
                let line = self.input.held(s, n);
                // Outermost quotes must match (load_string).
                if n < 2 || line[0] != line[n - 1] || (line[0] != b'\'' && line[0] != b'"') {
                    return malformed("the STRING opcode argument must be quoted");
                }
                let mut buf = std::mem::take(&mut self.scratch);
                let ok = text::decode_bytes_escape(&line[1..n - 1], &mut buf);
                self.scratch = buf;
                if let Err(e) = ok {
                    return malformed(e);
                }
                let v = self.text_value(s + 1, n - 2, Enc::PyEscape, true);
                self.push(v)?;
                self.inspect_constant(v);
            }
            op::UNICODE => {
                let (s, n) = self.line()?;
                let mut buf = std::mem::take(&mut self.scratch_str);
                let ok = text::decode_raw_unicode_escape(self.input.held(s, n), &mut buf);
                self.scratch_str = buf;
                if let Err(e) = ok {
                    return malformed(e);
                }
                let v = self.text_value(s, n, Enc::RawUnicodeEscape, true);
                self.push(v)?;
                self.inspect_constant(v);
            }
            op::BINSTRING => {
                let n = self.take_u32()? as i32;
                if n < 0 {
                    return malformed("BINSTRING pickle has negative byte count");
                }
                self.push_span(n as u64, true)?;
            }
            op::SHORT_BINSTRING => {
                let n = self.take_u8()?;
                self.push_span(u64::from(n), true)?;
            }
            op::BINUNICODE => {
                let n = self.take_u32()?;
                self.push_unicode(u64::from(n))?;
            }
            op::SHORT_BINUNICODE => {
                let n = self.take_u8()?;
                self.push_unicode(u64::from(n))?;
            }
            op::BINUNICODE8 => {
                let n = self.take_u64()?;
                if n > i64::MAX as u64 {
                    return malformed("BINUNICODE8 exceeds system's maximum size");
                }
                self.push_unicode(n)?;
            }
            op::BINBYTES => {
                let n = self.take_u32()?;
                self.push_span(u64::from(n), false)?;
            }
            op::SHORT_BINBYTES => {
                let n = self.take_u8()?;
                self.push_span(u64::from(n), false)?;
            }
            op::BINBYTES8 | op::BYTEARRAY8 => {
                let n = self.take_u64()?;
                if n > i64::MAX as u64 {
                    return malformed("BINBYTES8 exceeds system's maximum size");
                }
                self.push_span(n, false)?;
            }
            op::NEXT_BUFFER => {
                // Out-of-band buffer: the loader fails unless buffers were passed to it.
                self.push(Value::Any)?;
            }
            op::READONLY_BUFFER => {
                self.top()?;
            }
            // --- containers ----------------------------------------------------------------
            op::EMPTY_TUPLE => self.push(Value::Tuple(0, 0))?,
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(code - op::TUPLE1 + 1);
                if self.stack.len() < n {
                    return malformed("unpickling stack underflow");
                }
                let v = self.pop_tuple_from(self.stack.len() - n)?;
                self.push(v)?;
            }
            op::TUPLE => {
                let m = self.pop_mark()?;
                let v = self.pop_tuple_from(m)?;
                self.push(v)?;
            }
            op::EMPTY_LIST => self.push(Value::List)?,
            op::LIST => {
                let m = self.pop_mark()?;
                self.stack.truncate(m);
                self.push(Value::List)?;
            }
            op::EMPTY_DICT => {
                let v = self.new_dict();
                self.push(v)?;
            }
            op::DICT => {
                let m = self.pop_mark()?;
                if !(self.stack.len() - m).is_multiple_of(2) {
                    return malformed("odd number of items for DICT");
                }
                let v = self.new_dict();
                self.fill_dict(v, m);
                self.stack.truncate(m);
                self.push(v)?;
            }
            op::EMPTY_SET => self.push(Value::Set)?,
            op::FROZENSET => {
                let m = self.pop_mark()?;
                self.stack.truncate(m);
                self.push(Value::Set)?;
            }
            op::APPEND => {
                let len = self.stack.len();
                // do_append(len - 1): no fence check on the target, only x > 0.
                if len < 2 {
                    return malformed("unpickling stack underflow");
                }
                self.pop()?;
                let target = self.stack[len - 2];
                self.mutate_global(target, "APPEND");
            }
            op::APPENDS => {
                let m = self.pop_mark()?;
                if m == 0 {
                    return malformed("unpickling stack underflow");
                }
                if self.stack.len() > m {
                    let target = self.stack[m - 1];
                    self.mutate_global(target, "APPENDS");
                }
                self.stack.truncate(m);
            }
            op::SETITEM => {
                let len = self.stack.len();
                if len < 3 {
                    return malformed("unpickling stack underflow");
                }
                let target = self.stack[len - 3];
                self.mutate_global(target, "SETITEM");
                if let Value::Dict(_) = target {
                    self.fill_dict(target, len - 2);
                }
                self.stack.truncate(len - 2);
            }
            op::SETITEMS => {
                let m = self.pop_mark()?;
                if m == 0 {
                    return malformed("unpickling stack underflow");
                }
                if self.stack.len() > m {
                    if !(self.stack.len() - m).is_multiple_of(2) {
                        return malformed("odd number of items for SETITEMS");
                    }
                    let target = self.stack[m - 1];
                    self.mutate_global(target, "SETITEMS");
                    if let Value::Dict(_) = target {
                        self.fill_dict(target, m);
                    }
                }
                self.stack.truncate(m);
            }
            op::ADDITEMS => {
                let m = self.pop_mark()?;
                if m == 0 {
                    return malformed("unpickling stack underflow");
                }
                if self.stack.len() > m {
                    let target = self.stack[m - 1];
                    self.mutate_global(target, "ADDITEMS");
                }
                self.stack.truncate(m);
            }
            // --- memo ----------------------------------------------------------------------
            op::PUT => {
                let (s, n) = self.line()?;
                let idx = match text::parse_py_int(self.input.held(s, n), false) {
                    Ok(Some(i)) if i >= 0 => i as u64,
                    Ok(Some(_)) => return malformed("negative PUT argument"),
                    _ => return malformed("invalid PUT argument"),
                };
                let v = self.top()?;
                self.memo_put(idx, v)?;
            }
            op::BINPUT => {
                let idx = self.take_u8()?;
                let v = self.top()?;
                self.memo_put(u64::from(idx), v)?;
            }
            op::LONG_BINPUT => {
                let idx = self.take_u32()?;
                let v = self.top()?;
                self.memo_put(u64::from(idx), v)?;
            }
            op::MEMOIZE => {
                let v = self.top()?;
                let idx = self.memo.filled as u64;
                self.memo_put(idx, v)?;
            }
            op::GET => {
                let (s, n) = self.line()?;
                let idx = match text::parse_py_int(self.input.held(s, n), false) {
                    Ok(Some(i)) if i >= 0 => i as u64,
                    Ok(Some(i)) => return malformed(format!("Memo value not found at index {i}")),
                    _ => return malformed("invalid GET argument"),
                };
                self.memo_get(idx)?;
            }
            op::BINGET => {
                let idx = self.take_u8()?;
                self.memo_get(u64::from(idx))?;
            }
            op::LONG_BINGET => {
                let idx = self.take_u32()?;
                self.memo_get(u64::from(idx))?;
            }
            // --- imports -------------------------------------------------------------------
            op::GLOBAL => {
                let (module, name) = self.two_lines()?;
                let v = self.import(&module, &name, ImportVia::Global, false);
                self.push(v)?;
            }
            op::STACK_GLOBAL => {
                let name_v = self.pop()?;
                let module_v = self.pop()?;
                let module = self.operand_text(module_v);
                let name = self.operand_text(name_v);
                match (module, name) {
                    (Some((m, m_memo)), Some((n, n_memo))) => {
                        let v = self.import(&m, &n, ImportVia::StackGlobal, m_memo || n_memo);
                        self.push(v)?;
                    }
                    _ => {
                        // The loader raises "STACK_GLOBAL requires str", unless an operand is a
                        // call result that is a str at run time: then we cannot know the import.
                        let dynamic = [module_v, name_v].iter().any(|v| matches!(v, Value::Obj(..) | Value::Any));
                        if dynamic {
                            let (a, b) = (self.describe(module_v), self.describe(name_v));
                            self.finding(
                                RuleId::DYNAMIC_GLOBAL,
                                Severity::High,
                                format!("STACK_GLOBAL operands are computed at load time ({a}, {b})"),
                            );
                            self.push(Value::Any)?;
                        } else {
                            return malformed("STACK_GLOBAL requires str");
                        }
                    }
                }
            }
            op::INST => {
                let m = self.pop_mark()?;
                let (module, name) = self.two_lines()?;
                let cls = self.import(&module, &name, ImportVia::Inst, false);
                let args = self.pop_tuple_from(m)?;
                let r = self.call("INST", cls, args);
                self.push(r)?;
            }
            op::EXT1 | op::EXT2 | op::EXT4 => {
                let code_v = match code {
                    op::EXT1 => u32::from(self.take_u8()?),
                    op::EXT2 => u32::from(self.take_u16()?),
                    _ => self.take_u32()?,
                };
                if code_v == 0 {
                    return malformed("EXT specifies code <= 0");
                }
                // copyreg's registry is empty in a stock interpreter; any code is resolved by
                // whatever the loading application registered: unknowable statically.
                self.finding(
                    RuleId::EXT_OPCODE,
                    Severity::Medium,
                    format!("EXT opcode imports extension code {code_v} from copyreg's registry (unknown global)"),
                );
                self.report.imports.push(Import {
                    module: "copyreg._inverted_registry".into(),
                    name: code_v.to_string(),
                    via: ImportVia::Ext,
                    operand_from_memo: false,
                    offset: self.op_pos as u64,
                    disposition: Disposition::Unknown,
                });
                self.push(Value::Ext(code_v))?;
            }
            // --- calls ---------------------------------------------------------------------
            op::REDUCE => {
                let args = self.pop()?;
                let callee = self.pop()?;
                let r = self.call("REDUCE", callee, args);
                self.push(r)?;
            }
            op::NEWOBJ => {
                let args = self.pop()?;
                let cls = self.pop()?;
                let r = self.call("NEWOBJ", cls, args);
                self.push(r)?;
            }
            op::NEWOBJ_EX => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                let r = self.call("NEWOBJ_EX", cls, args);
                self.push(r)?;
            }
            op::OBJ => {
                let m = self.pop_mark()?;
                if self.stack.len() <= m {
                    return malformed("unpickling stack underflow");
                }
                let cls = self.stack[m];
                let args = self.pop_tuple_from(m + 1)?;
                self.stack.truncate(m);
                let r = self.call("OBJ", cls, args);
                self.push(r)?;
            }
            op::BUILD => {
                if self.stack.len() < self.fence() + 2 {
                    return malformed("unpickling stack underflow");
                }
                let state = self.pop()?;
                let inst = self.top()?;
                match inst {
                    Value::Global(_) | Value::Ext(_) => self.mutate_global(inst, "BUILD"),
                    Value::Obj(g, _) if g != UNTRACKED => {
                        let is_wrapper = self
                            .globals
                            .get(g as usize)
                            .is_some_and(|r| r.path.ends_with("numpy_pickle.NumpyArrayWrapper"));
                        if is_wrapper {
                            self.joblib_skip_array(state)?;
                        }
                    }
                    _ => {}
                }
            }
            op::PERSID => {
                let (s, n) = self.line()?;
                if !self.input.held(s, n).is_ascii() {
                    return malformed("persistent IDs in protocol 0 must be ASCII strings");
                }
                self.push(Value::Any)?;
            }
            op::BINPERSID => {
                self.pop()?;
                self.push(Value::Any)?;
            }
            other => {
                return malformed(format!("invalid load key, {:?}", char::from(other)));
            }
        }
        Ok(None)
    }

    fn text_value(&mut self, start: usize, len: usize, enc: Enc, is_str: bool) -> Value {
        match (u32::try_from(start), u32::try_from(len)) {
            (Ok(s), Ok(l)) => {
                let span = Span { start: s, len: l, enc, from_memo: false };
                if is_str { Value::Str(span) } else { Value::Bytes(span) }
            }
            _ => Value::Any,
        }
    }

    /// BINSTRING/SHORT_BINSTRING (decoded to `str` by default) and BIN*BYTES.
    fn push_span(&mut self, n: u64, is_str: bool) -> Step<()> {
        let v = match self.span(n, Enc::Raw)? {
            Some(s) if is_str => Value::Str(s),
            Some(s) => Value::Bytes(s),
            None => Value::Any,
        };
        self.push(v)?;
        self.inspect_constant(v);
        Ok(())
    }

    fn push_unicode(&mut self, n: u64) -> Step<()> {
        let v = match self.span(n, Enc::Raw)? {
            Some(s) => {
                // CPython decodes with "surrogatepass": invalid UTF-8 (other than surrogates)
                // fails the load.
                if !self.valid_unicode(s) {
                    return malformed("'utf-8' codec can't decode BINUNICODE data");
                }
                Value::Str(s)
            }
            None => Value::Any,
        };
        self.push(v)?;
        self.inspect_constant(v);
        Ok(())
    }

    /// Whether a `str` payload decodes; one that is not in memory is checked in chunks.
    fn valid_unicode(&self, s: Span) -> bool {
        let (start, len) = (s.start as usize, s.len as usize);
        if let Some(b) = self.input.in_memory(start, len) {
            return std::str::from_utf8(b).is_ok() || utf8_surrogatepass_ok(b);
        }
        let mut check = SurrogatepassUtf8::default();
        self.input.for_each_chunk(start, len, |piece| check.feed(piece)) && check.finish()
    }

    fn new_dict(&mut self) -> Value {
        if self.track_dicts && self.dicts.len() < (1 << 20) {
            self.dicts.push(Vec::new());
            Value::Dict((self.dicts.len() - 1) as u32)
        } else {
            Value::Dict(UNTRACKED)
        }
    }

    /// Record key/value pairs from `stack[from..]` into a tracked dict.
    fn fill_dict(&mut self, d: Value, from: usize) {
        let Value::Dict(i) = d else { return };
        if i == UNTRACKED {
            return;
        }
        let pairs: Vec<(Value, Value)> = self.stack[from..].chunks_exact(2).map(|c| (c[0], c[1])).collect();
        if let Some(items) = self.dicts.get_mut(i as usize) {
            for p in pairs {
                if items.len() < MAX_TRACKED_DICT {
                    items.push(p);
                }
            }
        }
    }
}

/// GLOBAL/INST operands: CPython decodes them as strict UTF-8 before importing anything.
fn utf8_line(b: &[u8]) -> Step<String> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => malformed("'utf-8' codec can't decode GLOBAL module or name"),
    }
}

/// Value of a LONG1/LONG4 little-endian two's-complement integer.
fn long_value(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Int(0);
    }
    if b.len() > 8 {
        return Value::Any;
    }
    let neg = b[b.len() - 1] & 0x80 != 0;
    let mut a = if neg { [0xffu8; 8] } else { [0u8; 8] };
    a[..b.len()].copy_from_slice(b);
    Value::Int(i64::from_le_bytes(a))
}

/// UTF-8 with encoded surrogates (ED A0..BF xx) allowed, as Python's "surrogatepass".
pub(crate) fn utf8_surrogatepass_ok(b: &[u8]) -> bool {
    let mut fixed = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0xed && i + 2 < b.len() && (0xa0..=0xbf).contains(&b[i + 1]) && (0x80..=0xbf).contains(&b[i + 2]) {
            fixed.extend_from_slice("\u{fffd}".as_bytes());
            i += 3;
        } else {
            fixed.push(b[i]);
            i += 1;
        }
    }
    std::str::from_utf8(&fixed).is_ok()
}

/// Scan every pickle in a stream from `start`, one after another (torch legacy files hold five in
/// a row; anything can follow a STOP). The first pickle is walked in `mode`; later ones are
/// scanned speculatively (see [`Mode::Speculative`]) while they start like a pickle.
pub(crate) fn scan_stream(
    ctx: &mut Ctx<'_>,
    data: &[u8],
    start: usize,
    member: &str,
    depth: u32,
    mode: Mode,
) -> StreamOutcome {
    scan_stream_input(ctx, &Input::mem(data), start, member, depth, mode)
}

/// [`scan_stream`] over any [`Input`].
pub(crate) fn scan_stream_input(
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
    start: usize,
    member: &str,
    depth: u32,
    mode: Mode,
) -> StreamOutcome {
    let first = scan_pickle_input(ctx, input.fresh(), start, member, depth, mode);
    let mut out = StreamOutcome { pickles: 1, joblib: first.joblib, failed_at: first.failed_at };
    let Some(mut pos) = first.end else { return out };
    let len = input.len();
    while pos < len {
        let Some(rest) = input.span(pos, (len - pos).min(2)) else { break };
        // Only something that starts with a valid opcode can be a further pickle.
        let plausible = op::name(rest[0]).is_some()
            && !(rest[0] == op::PROTO && rest.get(1).is_none_or(|&p| p > op::HIGHEST_PROTOCOL));
        if !plausible {
            break;
        }
        let o = scan_pickle_input(ctx, input.fresh(), pos, member, depth, Mode::Speculative);
        out.joblib |= o.joblib;
        match o.end {
            Some(e) if e > pos => {
                out.pickles += 1;
                pos = e;
            }
            _ => break,
        }
    }
    let remaining = len - pos;
    if remaining > 0 {
        ctx.findings.push(Finding {
            rule: RuleId::TRAILING_DATA,
            severity: Severity::Info,
            message: format!("{remaining} bytes after the last complete pickle"),
            location: Location { member: member.to_string(), offset: Some(pos as u64), ..Location::default() },
        });
    }
    out
}

/// What [`scan_stream`] saw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamOutcome {
    /// Pickles walked to STOP (or attempted).
    pub pickles: u32,
    /// A joblib wrapper was seen.
    pub joblib: bool,
    /// Where the first pickle failed, if it did.
    pub failed_at: Option<usize>,
}
