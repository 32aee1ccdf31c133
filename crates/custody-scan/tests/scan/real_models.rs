//! No false alarms on real, benign model files.
//!
//! * Files written by real scikit-learn estimators and pipelines, NumPy and joblib (plain, zlib,
//!   gzip, xz, lzma, lz4) from PyPI: `scripts/with-real-models.sh` generates them with
//!   `scripts/gen-real-models.py` and names the directory in `CUSTODY_TEST_REAL_MODELS`.
//! * Plain-Python pickles generated at test time with `python3` for protocols 0-5.
//!
//! Each must be `Clean` with no finding above Info.

// Tests may panic and print; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::Command;

use custody_scan::{FileReport, ScanOptions, Severity, Verdict, scan_bytes, scan_path};

#[track_caller]
fn assert_clean(r: &FileReport) {
    let loud: Vec<_> = r.findings.iter().filter(|f| f.severity > Severity::Info).collect();
    assert!(r.verdict == Verdict::Clean && loud.is_empty(), "{}: {:?} {loud:#?}", r.name, r.verdict);
}

#[test]
fn real_scikit_learn_numpy_and_joblib_files_are_clean() {
    let Some(dir) = std::env::var_os("CUSTODY_TEST_REAL_MODELS").map(PathBuf::from) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but CUSTODY_TEST_REAL_MODELS is unset: run through scripts/with-real-models.sh"
        );
        eprintln!("skipped: set CUSTODY_TEST_REAL_MODELS (scripts/with-real-models.sh)");
        return;
    };
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("the generated directory").map(|e| e.expect("entry").path()).collect();
    files.sort();
    assert!(files.len() >= 40, "expected the generated files in {}", dir.display());
    let opts = ScanOptions::default();
    for f in &files {
        let r = scan_path(f, &opts).expect("readable");
        assert_clean(&r);
        assert!(!r.pickles.is_empty() || f.extension().is_some_and(|e| e == "npy"), "{}: no pickle seen", f.display());
    }
}

const GEN_PLAIN: &str = r#"
import collections, datetime, decimal, pickle, sys, uuid
objs = {
    "dict": {"a": 1, "b": [1, 2.5, None, True], "c": ("t", b"\x00\x80bytes")},
    "list": [1, -2, 2**70, 3.25, "str\u00e9\n'\"", b"b" * 300, bytearray(b"ba")],
    "od": collections.OrderedDict([("x", 1), ("y", {"z": 2})]),
    "sets": [{1, 2, 3}, frozenset({"a"}), set()],
    "bytes": [b"", b"\x80\x04not a pickle", bytes(range(256))],
    "dt": [datetime.datetime(2020, 5, 17, 1, 2, 3, 4), datetime.date(2020, 1, 1),
           datetime.time(12, 0), datetime.timedelta(seconds=5),
           datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))],
    "misc": [complex(1, 2), slice(1, 9, 2), range(5), decimal.Decimal("1.5"), uuid.UUID(int=5)],
    "shared": None,
}
shared = [1, 2]
objs["shared"] = [shared, shared, {"again": shared}]
out = sys.argv[1]
for name, obj in objs.items():
    for proto in range(6):
        with open(f"{out}/{name}_p{proto}.pkl", "wb") as f:
            pickle.dump(obj, f, protocol=proto)
"#;

#[test]
fn python_generated_plain_pickles_are_clean() {
    let out = std::env::temp_dir().join(format!("custody-scan-py-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let status = Command::new("python3").arg("-c").arg(GEN_PLAIN).arg(&out).status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "python3 unavailable under CI: {other:?}");
            eprintln!("skipping: python3 unavailable ({other:?})");
            return;
        }
    }
    let mut n = 0;
    for entry in std::fs::read_dir(&out).expect("read temp dir") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read pickle");
        let r = scan_bytes(&path.display().to_string(), &data, &ScanOptions::default());
        assert_clean(&r);
        n += 1;
    }
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(n, 8 * 6);
}
