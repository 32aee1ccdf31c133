//! Rewrap rate on the local keyring: N data keys wrapped under version 1 of a KEK, the KEK
//! rotated, then every header rewrapped under version 2 (`rewrap_header`: unwrap with the old
//! version and its context, wrap with the new). Peer, same run: the floor of the same work,
//! one AES-256-GCM open and one seal of each 32-byte key with a fixed, pre-expanded key.
//!
//!     cargo bench -p custody-crypto --bench rewrap -- [--keys 1000000]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout, missing_docs)]

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use custody_crypto::{EncryptionContext, Header, KeyProvider, LocalKeyring, Unlocker};
use std::future::Future;
use std::time::Instant;

/// The local keyring's futures are ready when first polled.
fn ready<T>(f: impl Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the local keyring never waits"),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let n: usize = argv.iter().position(|a| a == "--keys").map_or(1_000_000, |i| argv[i + 1].parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let unlocker = Unlocker::Key(zeroize::Zeroizing::new([9; 32]));
    let ring = LocalKeyring::create(&dir.path().join("k.json"), &unlocker).unwrap();
    ready(ring.ensure_key("bench")).unwrap();
    let headers: Vec<Header> = (0..n)
        .map(|i| {
            let context: EncryptionContext =
                [("project".to_owned(), "fraud".to_owned()), ("dataset".to_owned(), format!("d{i}"))].into();
            ready(custody_crypto::seal_header(&ring, "bench", context)).unwrap().header
        })
        .collect();
    ready(ring.rotate("bench")).unwrap();

    let t = Instant::now();
    let rewrapped: Vec<Header> =
        headers.iter().map(|h| ready(custody_crypto::rewrap_header(&ring, h)).unwrap()).collect();
    let ours = t.elapsed().as_secs_f64();
    assert!(rewrapped.iter().all(|h| h.kek.version == 2));

    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[3; 32]).unwrap());
    let mut sealed: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut b = vec![7u8; 32];
            key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce(i)), Aad::from(b"ctx"), &mut b).unwrap();
            b
        })
        .collect();
    let t = Instant::now();
    for (i, b) in sealed.iter_mut().enumerate() {
        let plain = key.open_in_place(Nonce::assume_unique_for_key(nonce(i)), Aad::from(b"ctx"), b).unwrap().to_vec();
        let mut out = plain;
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce(i + n)), Aad::from(b"ctx"), &mut out).unwrap();
        std::hint::black_box(out);
    }
    let peer = t.elapsed().as_secs_f64();
    println!(
        "rewrap: {n} data keys on the local keyring {ours:.2} s ({:.0} keys/s) | peer: AES-256-GCM open + seal of each, fixed key, {peer:.2} s ({:.0} keys/s) | ratio {:.2}",
        n as f64 / ours,
        n as f64 / peer,
        peer / ours
    );
}

fn nonce(i: usize) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&(i as u64).to_be_bytes());
    n
}
