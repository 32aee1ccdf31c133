//! Property tests: arbitrary input never panics, and garbage is never called clean.

// Tests may panic and print; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use custody_scan::{ScanOptions, Verdict, scan_bytes};
use proptest::prelude::*;

fn opts() -> ScanOptions {
    ScanOptions { max_stack: 10_000, max_memo: 10_000, ..ScanOptions::default() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let r = scan_bytes("fuzz", &data, &opts());
        // Clean only for input that really is a complete, valid pickle.
        if r.verdict == Verdict::Clean {
            prop_assert!(!r.pickles.is_empty());
            prop_assert!(r.pickles[0].end.is_some() && r.pickles[0].errors.is_empty(), "{:?}", r);
        }
    }

    #[test]
    fn garbage_that_is_no_pickle_is_never_clean(
        first in any::<u8>().prop_filter("not an opcode or magic", |b| custody_scan::opcodes::name(*b).is_none()),
        rest in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut data = vec![first];
        data.extend(rest);
        let r = scan_bytes("garbage", &data, &opts());
        prop_assert_ne!(r.verdict, Verdict::Clean, "{:?}", r.findings);
    }

    #[test]
    fn mutated_pickles_never_panic(
        flips in proptest::collection::vec((0usize..64, any::<u8>()), 1..6),
        cut in 0usize..80,
    ) {
        let mut p = b"\x80\x04\x95\x30\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94]\x94(K\x01K\x02e\x8c\x01b\x94\x8c\x0bcollections\x8c\x0bOrderedDict\x93)R\x94u.".to_vec();
        for (i, b) in flips {
            let i = i % p.len();
            p[i] = b;
        }
        p.truncate(cut.max(1));
        let _ = scan_bytes("mutant", &p, &opts());
    }

    #[test]
    fn arbitrary_zip_like_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut z = b"PK\x03\x04".to_vec();
        z.extend(&data);
        z.extend(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
        z.extend(&data[..data.len().min(10)]);
        let r = scan_bytes("zip", &z, &opts());
        prop_assert_ne!(r.verdict, Verdict::Clean);
    }
}
