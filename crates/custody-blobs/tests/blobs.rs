//! The blob store on local files and on an S3-compatible store (moto's server, started by
//! `scripts/with-moto.sh`; skipped without it except under CI=true).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr, missing_docs)]

use custody_blobs::{BlobError, BlobScope, BlobStore, Sha256Digest, sha256};
use custody_crypto::{KeyProvider, LocalKeyring, Unlocker};
use std::io::Read;
use std::sync::Arc;
use zeroize::Zeroizing;

const CHUNK: usize = 16 * 1024;

fn keyring(dir: &std::path::Path) -> Arc<LocalKeyring> {
    Arc::new(LocalKeyring::create(&dir.join("keyring.json"), &Unlocker::Key(Zeroizing::new([7u8; 32]))).unwrap())
}

fn scope(version: &str) -> BlobScope {
    BlobScope { project: "acme".into(), dataset: "claims".into(), version: version.into() }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
}

async fn put(store: &BlobStore, scope: &BlobScope, bytes: Vec<u8>) -> Result<custody_blobs::StoredBlob, BlobError> {
    let digest = sha256(&bytes);
    store.put(scope, "kek", Default::default(), digest, std::io::Cursor::new(bytes)).await
}

async fn read(store: &BlobStore, scope: &BlobScope, digest: &Sha256Digest) -> Result<Vec<u8>, BlobError> {
    store.read_to(scope, digest, Vec::new()).await.map(|(_, _, out)| out)
}

/// Files under the store's directory (payloads and headers).
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() { stack.push(e.path()) } else { out.push(e.path()) }
        }
    }
    out.sort();
    out
}

async fn round_trips(store: &BlobStore, sizes: &[usize]) {
    for &n in sizes {
        let bytes = data(n);
        let stored = put(store, &scope("v1"), bytes.clone()).await.unwrap();
        assert!(stored.created);
        assert_eq!(stored.plaintext_len, n as u64);
        assert_eq!(stored.header.context["digest"], stored.digest.to_string(), "the address is inside the header");
        assert_eq!(read(store, &scope("v1"), &stored.digest).await.unwrap(), bytes, "size {n}");
        if n > 10 {
            let (_, part) = store.read_range(&scope("v1"), &stored.digest, 3..n as u64 - 2).await.unwrap();
            assert_eq!(part, bytes[3..n - 2]);
        }
        let again = put(store, &scope("v1"), bytes.clone()).await.unwrap();
        assert!(!again.created, "same content, same scope: stored once");
        assert_eq!(again.header, stored.header);
    }
}

#[tokio::test]
async fn local_blobs_round_trip_and_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let kr = keyring(dir.path());
    kr.ensure_key("kek").await.unwrap();
    let store = BlobStore::local(&dir.path().join("blobs"), kr).unwrap();
    round_trips(&store, &[0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 9 * 1024 * 1024 + 3]).await;
    assert_eq!(store.list(&scope("v1")).await.unwrap().len(), 6);
    assert!(store.list(&scope("v2")).await.unwrap().is_empty(), "scopes do not share blobs");
}

#[tokio::test]
async fn bad_input_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let kr = keyring(dir.path());
    kr.ensure_key("kek").await.unwrap();
    let root = dir.path().join("blobs");
    let store = BlobStore::local(&root, kr).unwrap();

    // Content that does not match its declared address.
    let declared = sha256(b"something else");
    let err = store.put(&scope("v1"), "kek", Default::default(), declared, std::io::Cursor::new(data(100))).await;
    assert!(matches!(err, Err(BlobError::DigestMismatch { .. })), "{err:?}");

    // An input that fails part way.
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("the client went away"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }
    let err = store.put(&scope("v1"), "kek", Default::default(), declared, Failing(3 * 1024 * 1024)).await;
    assert!(err.is_err());

    // An unknown KEK.
    let err = store.put(&scope("v1"), "nope", Default::default(), declared, std::io::Cursor::new(vec![])).await;
    assert!(matches!(err, Err(BlobError::Envelope { .. })), "{err:?}");

    assert!(files(&root).is_empty(), "nothing visible, nothing left: {:?}", files(&root));
    assert!(matches!(read(&store, &scope("v1"), &declared).await, Err(BlobError::NotFound(_))));
}

#[tokio::test]
async fn tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let kr = keyring(dir.path());
    kr.ensure_key("kek").await.unwrap();
    let root = dir.path().join("blobs");
    let store = BlobStore::local(&root, kr).unwrap();
    let a = put(&store, &scope("v1"), data(5 * CHUNK)).await.unwrap();
    let b = put(&store, &scope("v1"), data(5 * CHUNK + 1)).await.unwrap();
    let find = |d: &Sha256Digest, suffix: &str| {
        let hex = &d.to_string()[7..];
        files(&root)
            .into_iter()
            .find(|p| {
                let name = p.file_name().unwrap().to_str().unwrap();
                name.starts_with(hex) && name.ends_with(suffix)
            })
            .unwrap()
    };

    // A flipped payload byte.
    let payload = find(&a.digest, ".payload");
    let original = std::fs::read(&payload).unwrap();
    let mut bad = original.clone();
    bad[2 * CHUNK] ^= 0x10;
    std::fs::write(&payload, &bad).unwrap();
    assert!(matches!(read(&store, &scope("v1"), &a.digest).await, Err(BlobError::Envelope { .. })));
    std::fs::write(&payload, &original).unwrap();
    assert!(read(&store, &scope("v1"), &a.digest).await.is_ok());

    // B's header put at A's address.
    let (ha, hb) = (find(&a.digest, ".header"), find(&b.digest, ".header"));
    let saved = std::fs::read(&ha).unwrap();
    std::fs::copy(&hb, &ha).unwrap();
    assert!(read(&store, &scope("v1"), &a.digest).await.is_err());
    std::fs::write(&ha, &saved).unwrap();

    // A truncated payload.
    std::fs::write(&payload, &original[..original.len() - 5]).unwrap();
    assert!(read(&store, &scope("v1"), &a.digest).await.is_err());
}

#[tokio::test]
async fn rewrap_and_shred() {
    let dir = tempfile::tempdir().unwrap();
    let kr = keyring(dir.path());
    kr.ensure_key("kek").await.unwrap();
    let store = BlobStore::local(&dir.path().join("blobs"), kr.clone()).unwrap();
    let bytes = data(3 * CHUNK + 5);
    let blob = put(&store, &scope("v1"), bytes.clone()).await.unwrap();
    assert!(store.rewrap(&scope("v1"), &blob.digest).await.unwrap().is_none(), "already current");
    kr.rotate("kek").await.unwrap();
    let new = store.rewrap(&scope("v1"), &blob.digest).await.unwrap().unwrap();
    assert_eq!(new.kek.version, 2);
    kr.set_min_decryption_version("kek", 2).await.unwrap();
    assert_eq!(read(&store, &scope("v1"), &blob.digest).await.unwrap(), bytes);

    kr.destroy("kek", None).await.unwrap();
    let err = read(&store, &scope("v1"), &blob.digest).await.unwrap_err();
    assert!(err.to_string().contains("destroyed"), "{err}");

    assert!(store.delete(&scope("v1"), &blob.digest).await.unwrap());
    assert!(store.list(&scope("v1")).await.unwrap().is_empty());
}

#[tokio::test]
async fn s3_compatible_store() {
    let (Ok(endpoint), Ok(bucket)) =
        (std::env::var("CUSTODY_TEST_KMS_ENDPOINT"), std::env::var("CUSTODY_TEST_S3_BUCKET"))
    else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: run under scripts/with-moto.sh");
        eprintln!("skipped: no S3 endpoint (scripts/with-moto.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kr = keyring(dir.path());
    kr.ensure_key("kek").await.unwrap();
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_access_key_id("AKIDTEST")
        .with_secret_access_key("test-secret")
        .build()
        .unwrap();
    let store = BlobStore::new(Arc::new(s3), kr);
    let unique = format!("v-{}", uuid::Uuid::new_v4());
    for n in [0, CHUNK + 1, 9 * 1024 * 1024 + 3] {
        let bytes = data(n);
        let stored = put(&store, &scope(&unique), bytes.clone()).await.unwrap();
        assert!(stored.created);
        assert_eq!(read(&store, &scope(&unique), &stored.digest).await.unwrap(), bytes);
        assert!(!put(&store, &scope(&unique), bytes).await.unwrap().created, "create-if-absent on S3");
    }
    assert_eq!(store.list(&scope(&unique)).await.unwrap().len(), 3);
}
