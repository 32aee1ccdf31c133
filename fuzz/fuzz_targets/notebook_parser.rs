//! The notebook and text secret scanners over untrusted bytes. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Neither scanner may panic, whatever the bytes: malformed JSON, deep nesting, invalid UTF-8,
// truncated tokens and PEM blocks.
fuzz_target!(|data: &[u8]| {
    let _ = custody_scan::scan_notebook("fuzz", data);
    let _ = custody_scan::scan_text("fuzz", data);
});
