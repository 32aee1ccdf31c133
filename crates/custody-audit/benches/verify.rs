//! Full-log verification speed: records per second through `verify_archive` (the record
//! archive: read each frame, decode its field lengths, hash it, rebuild the tree, check every
//! signed checkpoint) and `verify_segment` (the same records as JSON lines: parse every line
//! and serialize it canonically before hashing), beside the peer that bounds both from below:
//! SHA-256 over the same bytes (`aws-lc-rs`, one pass, nothing parsed).
//!
//!     cargo bench -p custody-audit --bench verify -- [--records N]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use custody_audit::archive::{ARCHIVE_MAGIC, push_frame};
use custody_audit::{
    Checkpoint, MerkleFrontier, RecordFields, SegmentStart, Signer, read_checkpoints, verify_archive, verify_segment,
};
use std::time::Instant;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let records: u64 =
        argv.iter().position(|a| a == "--records").map(|i| argv[i + 1].parse().unwrap()).unwrap_or(1_000_000);
    let signer = Signer::generate("custody.bench/audit").unwrap();
    let mut frontier = MerkleFrontier::new();
    let mut text = Vec::with_capacity(records as usize * 520);
    let mut checkpoints = String::new();
    let mut archive = ARCHIVE_MAGIC.to_vec();
    for seq in 0..records {
        let micros = 1_790_000_000_000_000 + seq as i64 * 50;
        let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap();
        let time = time.format(&time::format_description::well_known::Rfc3339).unwrap();
        let resource = format!("dataset:01a2023f-355b-7685-8c5e-{:012x}", seq % 5000);
        let request_id = format!("01a2023f-3cfb-7113-8305-{:012x}", seq);
        let details = format!(
            r#"{{"authz":{{"decision":"allow","policies":["project-data-scientist"],"errors":[],"policy_hash":"6e295efa3d6bea6d8e4d48cf50020903670140c7a1ffdb95a5136eee7afbd789"}},"version_id":"01a2023f-{seq:08x}","label":"v{seq}"}}"#
        );
        let fields = RecordFields {
            seq,
            time_micros: micros,
            actor: "loader",
            action: "dataset.version.create",
            resource: &resource,
            project: Some("fraud"),
            region: Some("eu-west-1"),
            decision: "allow",
            policy_hash: "6e295efa3d6bea6d8e4d48cf50020903670140c7a1ffdb95a5136eee7afbd789",
            request_id: &request_id,
            outcome: "success",
            details: &details,
        };
        let leaf = fields.leaf_hash();
        frontier.push(leaf);
        push_frame(&mut archive, &leaf, &fields.canonical_bytes());
        let line = format!(
            r#"{{"seq":{seq},"time":"{time}","actor":"loader","action":"dataset.version.create","resource":"{resource}","project":"fraud","region":"eu-west-1","decision":"allow","policy_hash":"{}","request_id":"{request_id}","outcome":"success","details":{details},"leaf_hash":"{}"}}"#,
            fields.policy_hash,
            hex::encode(leaf)
        );
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        if frontier.len().is_multiple_of(512) || seq + 1 == records {
            let note =
                Checkpoint::new(signer.name(), frontier.len(), frontier.root()).unwrap().sign(&[&signer]).unwrap();
            let line = serde_json::json!({ "size": frontier.len(), "root": hex::encode(frontier.root()), "note": note.to_string() });
            checkpoints.push_str(&format!("{line}\n"));
        }
    }
    let key = signer.verifier();
    let (mb, archive_mb) = (text.len() as f64 / 1e6, archive.len() as f64 / 1e6);
    // Best of three runs each, alternating, to damp the shared machine's noise.
    let (mut lines, mut archived, mut peer, mut archive_peer) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    // The archive also from a file, read as `custody audit verify` reads it (page cache warm).
    let file = std::env::temp_dir().join(format!("custody-verify-bench-{}.archive", std::process::id()));
    std::fs::write(&file, &archive).unwrap();
    let mut from_file = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let cps = read_checkpoints(&checkpoints, &key).unwrap();
        let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&file).unwrap());
        let report = verify_archive(reader, &cps, &SegmentStart::default(), |_| {}).unwrap();
        from_file = from_file.min(t.elapsed().as_secs_f64());
        assert_eq!(report.end, records);
        let t = Instant::now();
        let cps = read_checkpoints(&checkpoints, &key).unwrap();
        let report = verify_archive(archive.as_slice(), &cps, &SegmentStart::default(), |_| {}).unwrap();
        archived = archived.min(t.elapsed().as_secs_f64());
        assert_eq!(report.end, records);
        let t = Instant::now();
        let cps = read_checkpoints(&checkpoints, &key).unwrap();
        let report = verify_segment(text.as_slice(), &cps, &SegmentStart::default(), |_| {}).unwrap();
        lines = lines.min(t.elapsed().as_secs_f64());
        assert_eq!(report.end, records);
        let t = Instant::now();
        std::hint::black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &archive));
        archive_peer = archive_peer.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &text));
        peer = peer.min(t.elapsed().as_secs_f64());
    }
    println!(
        "verify: {records} records ({archive_mb:.0} MB archived, {mb:.0} MB as JSON lines), {} signed checkpoints",
        records / 512 + 1
    );
    let row = |what: &str, secs: f64, mb: f64, peer: f64| {
        println!(
            "{what:<26} {:10.0} records/s ({:6.1} MB/s) | peer: SHA-256 over the same bytes {:10.0} records/s ({:6.1} MB/s) | ratio {:.2}",
            records as f64 / secs,
            mb / secs,
            records as f64 / peer,
            mb / peer,
            peer / secs
        );
    };
    std::fs::remove_file(&file).unwrap();
    row("archive (verify_archive)", archived, archive_mb, archive_peer);
    row("archive from a file", from_file, archive_mb, archive_peer);
    row("JSON lines (verify_segment)", lines, mb, peer);
}
