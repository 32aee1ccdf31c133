//! The pickle walker over untrusted bytes, as a raw stream of pickles. Must never panic, and
//! must stay within its budgets (small here, so runs are fast).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = custody_scan::ScanOptions { max_memo: 4096, max_stack: 4096, ..Default::default() };
    let _ = custody_scan::scan_pickles("fuzz", data, &opts);
});
