#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The tamper campaign: a signed log of 100,000 records is exported, then changed at random
//! places in every way an attacker without the log key can change it; each change must be
//! detected and pinpointed to the record (or checkpoint) that was touched.

use custody_audit::archive::{ARCHIVE_MAGIC, push_frame};
use custody_audit::{
    Checkpoint, MerkleFrontier, RecordFields, SegmentFailure, SegmentStart, Signer, read_checkpoints, verify_archive,
    verify_segment,
};
use std::sync::OnceLock;

const RECORDS: u64 = 100_000;
const TRIALS: u64 = 80;

/// A small deterministic generator, so a failing trial can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Log {
    signer: Signer,
    lines: Vec<String>,
    /// The same records as archive frames.
    frames: Vec<Vec<u8>>,
    checkpoints: Vec<String>,
}

fn time_text(micros: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// Records as the server exports them, with a checkpoint after every "batch" of 1–2,000.
fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let signer = Signer::generate("custody.test/tamper").unwrap();
        let mut rng = Rng(0x5eed);
        let mut frontier = MerkleFrontier::new();
        let (mut lines, mut frames, mut checkpoints) = (Vec::new(), Vec::new(), Vec::new());
        let mut next_checkpoint = 1 + rng.below(2000);
        for seq in 0..RECORDS {
            let micros = 1_790_000_000_000_000 + seq as i64 * 137;
            let actor = format!("user-{}", rng.below(50));
            let resource = format!("dataset:{:032x}", rng.below(1000));
            let details = format!(r#"{{"label":"v{seq}","n":{},"note":"café \"q\""}}"#, rng.below(1 << 40));
            let request_id = format!("{:032x}", rng.next());
            let fields = RecordFields {
                seq,
                time_micros: micros,
                actor: &actor,
                action: "dataset.version.create",
                resource: &resource,
                project: (seq % 7 != 0).then_some("fraud"),
                region: (seq % 3 != 0).then_some("eu-west-1"),
                decision: "allow",
                policy_hash: "ab12",
                request_id: &request_id,
                outcome: "success",
                details: &details,
            };
            let leaf = fields.leaf_hash();
            frontier.push(leaf);
            let mut frame = Vec::new();
            push_frame(&mut frame, &leaf, &fields.canonical_bytes());
            frames.push(frame);
            let line = serde_json::json!({
                "seq": seq, "time": time_text(micros), "actor": actor, "action": fields.action,
                "resource": resource, "project": fields.project, "region": fields.region,
                "decision": "allow", "policy_hash": "ab12", "request_id": request_id, "outcome": "success",
                "details": serde_json::from_str::<serde_json::Value>(&details).unwrap(),
                "leaf_hash": hex::encode(leaf),
            });
            let mut text = serde_json::to_string(&line).unwrap();
            // The exporter writes details exactly as stored; keep that text.
            let compact = serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&details).unwrap()).unwrap();
            assert_eq!(compact, details, "test details must be in canonical form");
            text.push('\n');
            lines.push(text);
            if frontier.len() == next_checkpoint || seq + 1 == RECORDS {
                checkpoints.push(checkpoint_line(&signer, frontier.len(), frontier.root()));
                next_checkpoint += 1 + rng.below(2000);
            }
        }
        Log { signer, lines, frames, checkpoints }
    })
}

fn checkpoint_line(signer: &Signer, size: u64, root: custody_audit::Hash) -> String {
    let note = Checkpoint::new(signer.name(), size, root).unwrap().sign(&[signer]).unwrap().to_string();
    let mut line = serde_json::json!({ "size": size, "root": hex::encode(root), "note": note }).to_string();
    line.push('\n');
    line
}

fn verify(lines: &[String], checkpoints: &[String]) -> Result<u64, SegmentFailure> {
    let key = log().signer.verifier();
    let cps = read_checkpoints(&checkpoints.concat(), &key)?;
    let records = lines.concat();
    verify_segment(records.as_bytes(), &cps, &SegmentStart::default(), |_| {}).map(|r| r.end)
}

fn verify_frames(frames: &[Vec<u8>], checkpoints: &[String]) -> Result<u64, SegmentFailure> {
    let key = log().signer.verifier();
    let cps = read_checkpoints(&checkpoints.concat(), &key)?;
    let mut archive = ARCHIVE_MAGIC.to_vec();
    archive.extend(frames.concat());
    verify_archive(archive.as_slice(), &cps, &SegmentStart::default(), |_| {}).map(|r| r.end)
}

#[test]
fn the_untouched_log_verifies() {
    let l = log();
    assert_eq!(verify(&l.lines, &l.checkpoints), Ok(RECORDS));
    assert_eq!(verify_frames(&l.frames, &l.checkpoints), Ok(RECORDS));
}

/// Where a failure points: the sequence number it names.
fn pinpointed(f: &SegmentFailure) -> Option<u64> {
    match f {
        SegmentFailure::Malformed { line, .. } => Some(line - 1),
        SegmentFailure::Modified { seq }
        | SegmentFailure::Unreadable { seq, .. }
        | SegmentFailure::Missing { seq, .. }
        | SegmentFailure::OutOfOrder { seq, .. } => Some(*seq),
        SegmentFailure::Truncated { records, .. } => Some(*records),
        _ => None,
    }
}

/// A record rewritten with its leaf hash recomputed is caught by the first checkpoint after
/// it, which names a span of at most one batch holding it.
fn caught_by_a_checkpoint(result: Result<u64, SegmentFailure>, k: u64, trial: &str) {
    match result {
        Err(SegmentFailure::RootMismatch { from, size }) => {
            assert!(from <= k && k < size, "{trial}: {k} not in {from}..{size}");
            assert!(size - from <= 2000, "{trial}: the span names at most one batch");
        }
        other => panic!("{trial}: rewritten record {k} gave {other:?}"),
    }
}

/// Tampering of `kind` at record `k` fails verification naming that record (a duplicate is
/// noticed where it appears, one place after the original).
fn pinpointed_at(result: Result<u64, SegmentFailure>, kind: u64, k: u64, trial: &str) {
    let failure = result.expect_err(&format!("{trial}: tampering at {k} undetected"));
    let at = if kind == 2 { k + 1 } else { k };
    assert_eq!(pinpointed(&failure), Some(at), "{trial}: {failure}");
}

/// Kind 1 removes record `k`, kind 2 duplicates it in place, kind 3 moves it up to 50 later.
fn rearrange<T: Clone>(records: &mut Vec<T>, kind: u64, k: usize, rng: &mut Rng) {
    match kind {
        1 => {
            records.remove(k);
        }
        2 => records.insert(k + 1, records[k].clone()),
        _ => {
            let to = (k + 1 + rng.below(50) as usize).min(records.len() - 1);
            let moved = records.remove(k);
            records.insert(to, moved);
        }
    }
}

#[test]
fn every_tampering_is_detected_and_pinpointed() {
    let l = log();
    let seed = std::env::var("TAMPER_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x7a3e_u64);
    let mut rng = Rng(seed);
    for trial in 0..TRIALS {
        let mut lines = l.lines.clone();
        let mut checkpoints = l.checkpoints.clone();
        let k = rng.below(RECORDS - 1);
        let kind = trial % 7;
        let result = match kind {
            0 => {
                // One byte of a record changed, anywhere in its line but the newline.
                let mut bytes = lines[k as usize].clone().into_bytes();
                let mut at = rng.below(bytes.len() as u64 - 1) as usize;
                while !bytes[at].is_ascii() {
                    at += 1;
                }
                let old = bytes[at];
                bytes[at] = if old == b'0' {
                    b'1'
                } else if old.is_ascii_alphanumeric() {
                    b'0'
                } else {
                    b'x'
                };
                lines[k as usize] = String::from_utf8(bytes).unwrap();
                verify(&lines, &checkpoints)
            }
            1..=3 => {
                rearrange(&mut lines, kind, k as usize, &mut rng);
                verify(&lines, &checkpoints)
            }
            4 => {
                lines.truncate(k as usize);
                verify(&lines, &checkpoints)
            }
            5 => {
                // A forged checkpoint: a root the key never signed (the signature no longer
                // matches), or one signed by another key.
                let i = rng.below(checkpoints.len() as u64) as usize;
                let c: serde_json::Value = serde_json::from_str(&checkpoints[i]).unwrap();
                let size = c["size"].as_u64().unwrap();
                checkpoints[i] = if rng.below(2) == 0 {
                    let other = Signer::generate(l.signer.name()).unwrap();
                    checkpoint_line(&other, size, [7; 32])
                } else {
                    let note = c["note"].as_str().unwrap();
                    let root_b64 = note.lines().nth(2).unwrap();
                    let forged = note.replacen(root_b64, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1);
                    let mut line =
                        serde_json::json!({ "size": size, "root": hex::encode([0u8; 32]), "note": forged }).to_string();
                    line.push('\n');
                    line
                };
                match verify(&lines, &checkpoints) {
                    Err(SegmentFailure::Checkpoint { line, .. }) => {
                        assert_eq!(line, i as u64 + 1, "trial {trial} seed {seed}: wrong checkpoint named");
                        continue;
                    }
                    other => panic!("trial {trial} seed {seed}: forged checkpoint {i} gave {other:?}"),
                }
            }
            _ => {
                // A record rewritten with its leaf hash recomputed: only the checkpoints can tell.
                let mut v: serde_json::Value = serde_json::from_str(&lines[k as usize]).unwrap();
                v["actor"] = "someone-else".into();
                let details = v["details"].to_string();
                let request_id = v["request_id"].as_str().unwrap().to_owned();
                let time = time::OffsetDateTime::parse(
                    v["time"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap();
                let leaf = RecordFields {
                    seq: k,
                    time_micros: (time.unix_timestamp_nanos() / 1000) as i64,
                    actor: "someone-else",
                    action: v["action"].as_str().unwrap(),
                    resource: v["resource"].as_str().unwrap(),
                    project: v["project"].as_str(),
                    region: v["region"].as_str(),
                    decision: "allow",
                    policy_hash: "ab12",
                    request_id: &request_id,
                    outcome: "success",
                    details: &details,
                }
                .leaf_hash();
                v["leaf_hash"] = hex::encode(leaf).into();
                lines[k as usize] = format!("{v}\n");
                caught_by_a_checkpoint(verify(&lines, &checkpoints), k, &format!("trial {trial} seed {seed}"));
                continue;
            }
        };
        pinpointed_at(result, kind, k, &format!("trial {trial} (kind {kind}) seed {seed}"));
    }
}

#[test]
fn a_fork_and_a_size_going_backwards_are_refused() {
    let l = log();
    let key = l.signer.verifier();
    let first: serde_json::Value = serde_json::from_str(&l.checkpoints[0]).unwrap();
    let size = first["size"].as_u64().unwrap();
    let fork = checkpoint_line(&l.signer, size, [9; 32]);
    let text = format!("{}{fork}", l.checkpoints[0]);
    assert_eq!(read_checkpoints(&text, &key), Err(SegmentFailure::Fork { size }));
    let backwards = format!("{}{}", l.checkpoints[1], l.checkpoints[0]);
    assert!(matches!(read_checkpoints(&backwards, &key), Err(SegmentFailure::Checkpoint { line: 2, .. })));
}

#[test]
fn a_segment_verifies_from_its_frontier_and_a_wrong_frontier_is_refused() {
    let l = log();
    let key = l.signer.verifier();
    let cps = read_checkpoints(&l.checkpoints.concat(), &key).unwrap();
    let start = cps[cps.len() / 2].size;
    let mut frontier = MerkleFrontier::new();
    for line in &l.lines[..start as usize] {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let bytes = hex::decode(v["leaf_hash"].as_str().unwrap()).unwrap();
        frontier.push(bytes.try_into().unwrap());
    }
    let segment = l.lines[start as usize..].concat();
    let begin = SegmentStart { start, frontier: frontier.nodes().to_vec() };
    let report = verify_segment(segment.as_bytes(), &cps, &begin, |_| {}).unwrap();
    assert_eq!((report.start, report.end), (start, RECORDS));
    let mut wrong = begin.clone();
    wrong.frontier[0][0] ^= 1;
    assert!(matches!(verify_segment(segment.as_bytes(), &cps, &wrong, |_| {}), Err(SegmentFailure::Frontier { .. })));
}

#[test]
fn every_tampering_of_an_archive_is_detected_and_pinpointed() {
    let l = log();
    let seed = std::env::var("TAMPER_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x41c4_u64);
    let mut rng = Rng(seed);
    for trial in 0..TRIALS {
        let mut frames = l.frames.clone();
        let k = rng.below(RECORDS - 1);
        let kind = trial % 6;
        let result = match kind {
            0 => {
                // One bit of a frame flipped: its leaf hash, length or record.
                let frame = &mut frames[k as usize];
                let at = rng.below(frame.len() as u64) as usize;
                frame[at] ^= 1 << rng.below(8);
                verify_frames(&frames, &l.checkpoints)
            }
            1..=3 => {
                rearrange(&mut frames, kind, k as usize, &mut rng);
                verify_frames(&frames, &l.checkpoints)
            }
            4 => {
                // Cut at a frame boundary or inside frame k.
                frames.truncate(k as usize + 1);
                let last = frames.last_mut().unwrap();
                let keep = rng.below(last.len() as u64) as usize;
                last.truncate(keep);
                verify_frames(&frames, &l.checkpoints)
            }
            _ => {
                // A record rewritten with its leaf hash recomputed: only the checkpoints can tell.
                let frame = &frames[k as usize];
                let fields = RecordFields::decode(&frame[36..]).unwrap();
                let forged = RecordFields { actor: "someone-else", ..fields };
                let mut rewritten = Vec::new();
                push_frame(&mut rewritten, &forged.leaf_hash(), &forged.canonical_bytes());
                frames[k as usize] = rewritten;
                caught_by_a_checkpoint(
                    verify_frames(&frames, &l.checkpoints),
                    k,
                    &format!("trial {trial} seed {seed}"),
                );
                continue;
            }
        };
        pinpointed_at(result, kind, k, &format!("trial {trial} (kind {kind}) seed {seed}"));
    }
}

#[test]
fn a_file_that_is_not_an_archive_is_named_so() {
    let l = log();
    let key = l.signer.verifier();
    let cps = read_checkpoints(&l.checkpoints.concat(), &key).unwrap();
    let lines = l.lines[..10].concat();
    assert_eq!(
        verify_archive(lines.as_bytes(), &cps, &SegmentStart::default(), |_| {}),
        Err(SegmentFailure::NotAnArchive)
    );
}
