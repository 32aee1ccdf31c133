#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Cobblestone-256: round trips at the sizes where chunking changes, every tampering, range
//! reads, and an independent implementation (Python `cryptography`) reading ours and ours
//! reading it.

use custody_crypto::chunked::{
    BATCH_CHUNKS, CHUNK, ChunkedError, PREFIX, SALT, SEALED_CHUNK, TAG, plaintext_len, sealed_len,
};
use custody_crypto::{InputKey, RandomAccess, decrypt, encrypt};
use proptest::prelude::*;

fn key() -> InputKey {
    InputKey::new([0x42; 32])
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8).collect()
}

fn seal(plain: &[u8], context: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = encrypt(&key(), context, &mut &plain[..], &mut out, |_| {}).unwrap();
    assert_eq!(n, plain.len() as u64);
    out
}

fn open(sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, ChunkedError> {
    let mut out = Vec::new();
    decrypt(&key(), context, &mut &sealed[..], &mut out, |_| {}).map(|n| {
        assert_eq!(n, out.len() as u64);
        out
    })
}

const BATCH: usize = BATCH_CHUNKS * CHUNK;

#[test]
fn round_trips_where_chunking_changes() {
    for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, BATCH - 1, BATCH, BATCH + 1, 3 * BATCH + 77] {
        let plain = data(n);
        let sealed = seal(&plain, b"ctx");
        assert_eq!(sealed.len() as u64, sealed_len(n as u64), "size {n}");
        assert_eq!(plaintext_len(sealed.len() as u64).unwrap(), n as u64);
        assert_eq!(open(&sealed, b"ctx").unwrap(), plain, "size {n}");
    }
}

#[test]
fn the_last_chunk_is_always_short() {
    // A message of exactly one chunk is a full chunk and an empty one.
    let sealed = seal(&data(CHUNK), b"");
    assert_eq!(sealed.len(), PREFIX + SEALED_CHUNK + TAG);
    let sealed = seal(&[], b"");
    assert_eq!(sealed.len(), PREFIX + TAG);
}

#[test]
fn every_tampering_is_refused() {
    let plain = data(2 * BATCH + 5000);
    let sealed = seal(&plain, b"ctx");
    let chunk_at = |i: usize| PREFIX + i * SEALED_CHUNK;
    // A wrong key or context: the commitment.
    let mut out = Vec::new();
    let wrong = decrypt(&InputKey::new([1; 32]), b"ctx", &mut &sealed[..], &mut out, |_| {});
    assert!(matches!(wrong, Err(ChunkedError::Commitment)), "{wrong:?}");
    assert!(out.is_empty(), "nothing is written before the commitment holds");
    assert!(matches!(open(&sealed, b"ctx2"), Err(ChunkedError::Commitment)));
    // The salt or the commitment edited.
    for at in [0, SALT - 1, SALT, PREFIX - 1] {
        let mut t = sealed.clone();
        t[at] ^= 1;
        assert!(matches!(open(&t, b"ctx"), Err(ChunkedError::Commitment)), "byte {at}");
    }
    // One bit in a chunk, its tag, the final chunk.
    for (at, chunk) in [(chunk_at(0), 0), (chunk_at(70) + CHUNK + 3, 70), (sealed.len() - 1, 128)] {
        let mut t = sealed.clone();
        t[at] ^= 0x80;
        match open(&t, b"ctx") {
            Err(ChunkedError::Chunk(c)) => assert_eq!(c, chunk, "byte {at}"),
            other => panic!("byte {at}: {other:?}"),
        }
    }
    // Two chunks swapped, one chunk dropped, one duplicated.
    let mut swapped = sealed.clone();
    let (a, b) = (chunk_at(3), chunk_at(4));
    let first = swapped[a..b].to_vec();
    swapped.copy_within(b..b + SEALED_CHUNK, a);
    swapped[b..b + SEALED_CHUNK].copy_from_slice(&first);
    assert!(matches!(open(&swapped, b"ctx"), Err(ChunkedError::Chunk(3))));
    let mut dropped = sealed.clone();
    dropped.drain(chunk_at(5)..chunk_at(6));
    assert!(matches!(open(&dropped, b"ctx"), Err(ChunkedError::Chunk(5))));
    let mut duplicated = sealed.clone();
    duplicated.splice(chunk_at(6)..chunk_at(6), sealed[chunk_at(5)..chunk_at(6)].to_vec());
    assert!(matches!(open(&duplicated, b"ctx"), Err(ChunkedError::Chunk(6))));
    // Truncation at a chunk boundary (also a batch boundary), inside a chunk, inside a tag,
    // inside the prefix; and an extension.
    for (cut, expect) in [
        (chunk_at(128), "truncated"),
        (chunk_at(64), "truncated"),
        (chunk_at(10) + 100, "chunk"),
        (chunk_at(10) + 5, "tag"),
        (PREFIX - 1, "short"),
    ] {
        let got = open(&sealed[..cut], b"ctx");
        let ok = matches!(
            (&got, expect),
            (Err(ChunkedError::Truncated(_)), "truncated")
                | (Err(ChunkedError::Chunk(10)), "chunk")
                | (Err(ChunkedError::CutTag(10)), "tag")
                | (Err(ChunkedError::Short(_)), "short")
        );
        assert!(ok, "cut at {cut}: {got:?}");
    }
    let mut longer = sealed.clone();
    longer.extend_from_slice(&[0; 40]);
    assert!(open(&longer, b"ctx").is_err());
}

#[test]
fn a_range_read_opens_only_what_it_needs_and_checks_the_length() {
    let plain = data(5 * CHUNK + 123);
    let sealed = seal(&plain, b"r");
    let mut ra = RandomAccess::open(&key(), b"r", sealed.as_slice()).unwrap();
    assert_eq!(ra.len(), plain.len() as u64);
    for (a, b) in [(0, 0), (0, 1), (CHUNK - 1, CHUNK + 1), (3 * CHUNK, 5 * CHUNK + 123), (100, 4 * CHUNK)] {
        assert_eq!(ra.read_range(a as u64..b as u64).unwrap(), plain[a..b]);
    }
    assert!(matches!(ra.read_range(0..plain.len() as u64 + 1), Err(ChunkedError::Range { .. })));
    // A corrupted chunk fails only the reads that touch it.
    let mut t = sealed.clone();
    t[PREFIX + 2 * SEALED_CHUNK + 9] ^= 1;
    let mut ra = RandomAccess::open(&key(), b"r", t.as_slice()).unwrap();
    assert_eq!(ra.read_range(0..CHUNK as u64).unwrap(), plain[..CHUNK]);
    assert!(matches!(ra.read_range(2 * CHUNK as u64..2 * CHUNK as u64 + 1), Err(ChunkedError::Chunk(2))));
    // A truncated ciphertext is refused when opened: its final chunk authenticates the length.
    let cut = &sealed[..PREFIX + 3 * SEALED_CHUNK + 50];
    assert!(matches!(RandomAccess::open(&key(), b"r", cut), Err(ChunkedError::Chunk(3))));
    let cut = &sealed[..PREFIX + 3 * SEALED_CHUNK];
    assert!(matches!(RandomAccess::open(&key(), b"r", cut), Err(ChunkedError::Truncated(3))));
    assert!(matches!(RandomAccess::open(&key(), b"x", sealed.as_slice()), Err(ChunkedError::Commitment)));
}

/// An independent Cobblestone-256 in Python (`cryptography`: HKDFExpand, AESGCM), written
/// from the spec text, decrypts our ciphertext, and we decrypt its.
const PEER: &str = r#"
import sys
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
import os

def keys(ikm, salt, ctx):
    info = b"c2sp.org/chunked-encryption@v1+" + b"AEAD_AES_256_GCM" + b"\x00" + salt + ctx
    okm = HKDFExpand(hashes.SHA512(), 76, info).derive(ikm)
    return AESGCM(okm[:32]), okm[32:44], okm[44:]

def nonce(base, i):
    return (int.from_bytes(base, "big") ^ i).to_bytes(12, "big")

mode, ikm, ctx = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
data = sys.stdin.buffer.read()
if mode == "decrypt":
    salt, commitment, body = data[:24], data[24:56], data[56:]
    aead, base, c = keys(ikm, salt, ctx)
    assert c == commitment, "commitment"
    out, i = [], 0
    while True:
        part = body[i * 16400:(i + 1) * 16400]
        out.append(aead.decrypt(nonce(base, i), part, None))
        if len(part) < 16400:
            assert (i + 1) * 16400 > len(body) - 16400 or len(part) == len(body) - i * 16400
            break
        i += 1
    sys.stdout.buffer.write(b"".join(out))
else:
    salt = os.urandom(24)
    aead, base, c = keys(ikm, salt, ctx)
    chunks = [data[i:i + 16384] for i in range(0, len(data) - len(data) % 16384, 16384)]
    chunks.append(data[len(data) - len(data) % 16384:])
    sys.stdout.buffer.write(salt + c + b"".join(aead.encrypt(nonce(base, i), p, None) for i, p in enumerate(chunks)))
"#;

fn peer(mode: &str, input: &[u8], context: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let child = std::process::Command::new("python3")
        .args(["-c", PEER, mode, &hex::encode(key().bytes()), &hex::encode(context)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var("CI").is_ok() => panic!("python3 is needed for the peer test: {e}"),
        Err(_) => return None,
    };
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No module named 'cryptography'") && std::env::var("CI").is_err() {
        return None;
    }
    assert!(out.status.success(), "the peer failed: {err}");
    Some(out.stdout)
}

#[test]
fn an_independent_implementation_agrees_both_ways() {
    for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, BATCH + 3] {
        let plain = data(n);
        let ours = seal(&plain, b"project=fraud");
        let Some(theirs_plain) = peer("decrypt", &ours, b"project=fraud") else { return };
        assert_eq!(theirs_plain, plain, "the peer reads our {n} bytes");
        let theirs = peer("encrypt", &plain, b"project=fraud").unwrap();
        assert_eq!(open(&theirs, b"project=fraud").unwrap(), plain, "we read the peer's {n} bytes");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_size_round_trips_and_any_range_reads(n in 0usize..(3 * CHUNK + 50), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let plain = data(n);
        let sealed = seal(&plain, b"p");
        prop_assert_eq!(open(&sealed, b"p").unwrap(), plain.clone());
        let (x, y) = (a.index(n + 1), b.index(n + 1));
        let (x, y) = (x.min(y), x.max(y));
        let mut ra = RandomAccess::open(&key(), b"p", sealed.as_slice()).unwrap();
        prop_assert_eq!(ra.read_range(x as u64..y as u64).unwrap(), plain[x..y].to_vec());
    }

    #[test]
    fn any_flipped_bit_is_refused(n in 0usize..(2 * CHUNK + 50), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut sealed = seal(&data(n), b"p");
        let at = at.index(sealed.len());
        sealed[at] ^= 1 << bit;
        prop_assert!(open(&sealed, b"p").is_err());
        let whole = RandomAccess::open(&key(), b"p", sealed.as_slice()).and_then(|mut r| r.read_range(0..r.len()));
        prop_assert!(whole.is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40_000)) {
        prop_assert!(open(&bytes, b"").is_err());
        let _ = RandomAccess::open(&key(), b"", bytes.as_slice());
    }
}
