//! The container reader (zip first: the input is given a local-header signature) over untrusted
//! bytes. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = custody_scan::ScanOptions { max_memo: 4096, max_stack: 4096, ..Default::default() };
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend_from_slice(data);
    let _ = custody_scan::scan_bytes("fuzz.zip", &zip, &opts);
    let _ = custody_scan::scan_bytes("fuzz", data, &opts);
});
