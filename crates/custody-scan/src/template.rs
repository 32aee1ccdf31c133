//! Jinja chat templates (GGUF `tokenizer.chat_template`, safetensors metadata): rendered by
//! inference servers, some of which used an unsandboxed environment, so a template is a known
//! server-side template injection vector. The patterns below are the usual steps from a Jinja
//! value to Python objects (`__class__`/`__mro__`/`__subclasses__`, the `lipsum`/`cycler`/
//! `joiner`/`namespace` globals' `__globals__`) and on to code execution (`os`, `popen`,
//! `eval`). The whole text is searched, not only `{{ }}`/`{% %}` blocks: splitting tags by hand
//! differs from Jinja's lexer (strings may contain `}}`), and a split that disagrees with Jinja is
//! a bypass.

use crate::report::Severity;

/// Substrings that have no business in a chat template: reaching Python internals or running
/// commands. Matched case-sensitively, as Jinja attribute names are.
const HIGH: &[&str] = &[
    "__class__",
    "__mro__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "__init__",
    "__base__",
    "__bases__",
    "__getattribute__",
    "__dict__",
    "__code__",
    "_TemplateReference__context",
    "popen",
    "subprocess",
    "importlib",
    "import_module",
    "os.system",
    "request.application",
];

/// Whole words that are unusual but not damning alone: the Jinja globals used as footholds, and
/// code-ish names that benign prose could contain.
const MEDIUM_WORDS: &[&str] = &["lipsum", "cycler", "joiner", "import", "eval", "exec"];

/// Substrings that obfuscate attribute names or names of modules.
const MEDIUM: &[&str] = &["|attr(", "| attr(", "\\x5f", "\\u005f", "\\137", ".mro(", "os.", "getattr"];

/// Patterns found in `text`, each with how bad it looks.
pub(crate) fn findings(text: &str) -> Vec<(&'static str, Severity)> {
    let mut out = Vec::new();
    for &p in HIGH {
        if text.contains(p) {
            out.push((p, Severity::High));
        }
    }
    for &w in MEDIUM_WORDS {
        if contains_word(text, w) {
            out.push((w, Severity::Medium));
        }
    }
    for &p in MEDIUM {
        let hit = if p == "os." { contains_word_prefix(text, p) } else { text.contains(p) };
        if hit && !out.iter().any(|(q, _)| q.contains(p)) {
            out.push((p, Severity::Medium));
        }
    }
    // Any other dunder (`__len__`, or one built by concatenation, `'__gl' ~ 'obals__'`).
    if out.is_empty() && has_dunder(text) {
        out.push(("__…__", Severity::Medium));
    }
    out
}

/// Only the pattern names.
pub(crate) fn risky_patterns(text: &str) -> Vec<&'static str> {
    findings(text).into_iter().map(|(p, _)| p).collect()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `word` occurs with no identifier character on either side.
fn contains_word(text: &str, word: &str) -> bool {
    let t = text.as_bytes();
    text.match_indices(word).any(|(i, m)| {
        let before = i.checked_sub(1).and_then(|j| t.get(j)).is_some_and(|&b| is_ident(b));
        let after = t.get(i + m.len()).is_some_and(|&b| is_ident(b));
        !before && !after
    })
}

/// `prefix` (e.g. `os.`) occurs at a word start and is followed by an identifier (`os.popen`,
/// not `videos.` nor the end of a sentence).
fn contains_word_prefix(text: &str, prefix: &str) -> bool {
    let t = text.as_bytes();
    text.match_indices(prefix).any(|(i, m)| {
        let before = i.checked_sub(1).and_then(|j| t.get(j)).is_some_and(|&b| is_ident(b));
        let after = t.get(i + m.len()).is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_');
        !before && after
    })
}

/// `__` followed by a letter: the start of a dunder name (or of half of one).
fn has_dunder(text: &str) -> bool {
    let t = text.as_bytes();
    text.match_indices("__").any(|(i, _)| t.get(i + 2).is_some_and(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benign_templates_are_quiet() {
        let llama = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = \
                     '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + \
                     '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ \
                     '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
        assert!(findings(llama).is_empty());
        let ns = "{%- set ns = namespace(found=false) -%}{%- for m in messages -%}{%- if m.role == 'system' \
                  -%}{%- set ns.found = true -%}{%- endif -%}{%- endfor -%} important videos. macOS.";
        assert!(findings(ns).is_empty(), "{:?}", findings(ns));
    }

    #[test]
    fn ssti_is_high() {
        let evil = "{{ lipsum.__globals__['os'].popen('id').read() }}";
        let f = findings(evil);
        assert!(f.iter().any(|(_, s)| *s == Severity::High), "{f:?}");
        let f = findings("{{ cycler.next.x }}");
        assert_eq!(f, vec![("cycler", Severity::Medium)]);
        let f = findings("{{ x|attr('\\x5f\\x5fclass\\x5f\\x5f') }}");
        assert!(f.iter().all(|(_, s)| *s == Severity::Medium) && f.len() >= 2, "{f:?}");
        assert_eq!(findings("{{ ('__gl' ~ 'obals__') }}"), vec![("__…__", Severity::Medium)]);
    }
}
