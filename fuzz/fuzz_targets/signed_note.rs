//! Signed notes, checkpoints and key strings from untrusted bytes. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = custody_audit::Note::parse_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = custody_audit::Checkpoint::parse_note_text(text);
        let _ = custody_audit::Verifier::parse(text);
        let _ = custody_audit::Signer::parse_private_key(text);
    }
});
