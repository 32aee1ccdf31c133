//! An exported log segment from untrusted bytes: records and checkpoints. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static custody_audit::Verifier {
    static KEY: OnceLock<custody_audit::Verifier> = OnceLock::new();
    KEY.get_or_init(|| {
        let signer = custody_audit::Signer::from_seed("custody.fuzz/audit", &[7; 32]).expect("a valid seed");
        signer.verifier()
    })
}

fuzz_target!(|data: &[u8]| {
    let (checkpoints, records) = data.split_at(data.len() / 4);
    let checkpoints = String::from_utf8_lossy(checkpoints);
    let cps = custody_audit::read_checkpoints(&checkpoints, key()).unwrap_or_default();
    let _ = custody_audit::verify_segment(records, &cps, &custody_audit::SegmentStart::default(), |_| {});
});
