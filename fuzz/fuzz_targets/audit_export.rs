//! An exported log segment from untrusted bytes: records (as JSON lines and as a record
//! archive) and checkpoints; and the archive's own readers. Must never panic.
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
    let mut archive = custody_audit::archive::ARCHIVE_MAGIC.to_vec();
    archive.extend_from_slice(records);
    let _ = custody_audit::verify_archive(archive.as_slice(), &cps, &custody_audit::SegmentStart::default(), |_| {});
    let _ = custody_audit::archive::whole_frames(records);
    let _ = custody_audit::RecordFields::decode(records);
    if let Ok(mut reader) = custody_audit::archive::ArchiveReader::new(archive.as_slice()) {
        let mut record = Vec::new();
        while let Ok(Some(leaf)) = reader.next_frame(&mut record) {
            if let Ok(fields) = custody_audit::RecordFields::decode(&record) {
                let _ = custody_audit::archive::export_line(&fields, &leaf);
            }
        }
    }
});
