//! The encrypted blob store.
//!
//! Every blob is sealed with its own data key (see `custody-crypto`) and addressed by the
//! SHA-256 of its plaintext within a scope (project / dataset / version). Blobs are never shared
//! between scopes, so shredding one dataset version's key cannot reach another's data.
//!
//! A blob is two objects in the store:
//!
//! ```text
//! <project>/<dataset>/<version>/<sha256 hex>.<object id>.payload   C2SP chunked ciphertext
//! <project>/<dataset>/<version>/<sha256 hex>.header                custody-encrypted/1 header
//! ```
//!
//! The header carries the encryption context (scope, declared digest, object id), the KEK
//! reference and the wrapped data key; the context is bound into the payload's key derivation,
//! so the header authenticates the digest and the payload it names. The payload is written
//! first and the header last, created only if absent: a blob is visible only once complete,
//! a crash leaves at most an unreferenced payload, and two writers of the same content end
//! with one blob. Rewrapping rewrites only the small header. Reading checks the plaintext
//! against the address as it decrypts.
//!
//! Plaintext never touches the local disk: a put encrypts into an unlinked temporary file of
//! ciphertext, then uploads it (multipart for large blobs, which object stores make visible
//! only on completion).

use aws_lc_rs::digest;
use bytes::Bytes;
pub use custody_core::Sha256Digest;
use custody_crypto::chunked::{self, RandomAccess, Sealed};
use custody_crypto::{EncryptionContext, EnvelopeError, Header, InputKey, KeyProvider};
use futures_util::TryStreamExt;
use object_store::path::{Path as StorePath, PathPart};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::fmt;
use std::io::{Read, Seek, Write};
use std::sync::Arc;

/// Uploads larger than this go in parts.
const PART: usize = 8 * 1024 * 1024;

/// The SHA-256 of `bytes`, as blobs are addressed.
pub fn sha256(bytes: &[u8]) -> Sha256Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    Sha256Digest::from_bytes(out)
}

/// What a blob belongs to: the unit its keys protect and a shred destroys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobScope {
    /// The project.
    pub project: String,
    /// The dataset (or model) name or id.
    pub dataset: String,
    /// Its version.
    pub version: String,
}

impl BlobScope {
    fn prefix(&self) -> StorePath {
        StorePath::from_iter([
            PathPart::from(self.project.as_str()),
            PathPart::from(self.dataset.as_str()),
            PathPart::from(self.version.as_str()),
        ])
    }

    fn header_path(&self, digest: &Sha256Digest) -> StorePath {
        self.prefix().join(format!("{}.header", hex::encode(digest.as_bytes())))
    }

    /// The payload a header names (by the object id in its context).
    fn payload_path(&self, digest: &Sha256Digest, header: &Header) -> StorePath {
        let object = header.context.get("object").map_or("", String::as_str);
        self.prefix().join(format!("{}.{object}.payload", hex::encode(digest.as_bytes())))
    }
}

/// Where a blob's header is in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobLocation {
    header: StorePath,
}

impl fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.header, f)
    }
}

/// A blob as stored.
#[derive(Debug, Clone)]
pub struct StoredBlob {
    /// Its address.
    pub digest: Sha256Digest,
    /// Its header (context, KEK reference, wrapped data key).
    pub header: Header,
    /// The plaintext length.
    pub plaintext_len: u64,
    /// False when the same content was already stored in the scope (nothing was written).
    pub created: bool,
}

/// What went wrong with a blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The content does not hash to the address it was declared under, or a stored blob's
    /// plaintext no longer does.
    #[error("blob content hashes to {actual}, not the declared {declared}")]
    DigestMismatch {
        /// The address.
        declared: Sha256Digest,
        /// What the content hashes to.
        actual: Sha256Digest,
    },
    /// No such blob.
    #[error("no blob {0}")]
    NotFound(String),
    /// The key provider, the header or the ciphertext.
    #[error("blob {path}: {source}")]
    Envelope {
        /// The blob's header path.
        path: String,
        /// The cause.
        source: EnvelopeError,
    },
    /// The object store.
    #[error("object store, {path}: {source}")]
    Store {
        /// The object.
        path: String,
        /// The cause.
        source: object_store::Error,
    },
    /// Reading the input or writing the output.
    #[error("{0}")]
    Io(std::io::Error),
    /// A request that cannot be served.
    #[error("{0}")]
    Invalid(String),
}

fn store_err(path: &StorePath) -> impl FnOnce(object_store::Error) -> BlobError + '_ {
    move |source| match source {
        object_store::Error::NotFound { .. } => BlobError::NotFound(path.to_string()),
        source => BlobError::Store { path: path.to_string(), source },
    }
}

fn envelope_err(path: &StorePath) -> impl FnOnce(EnvelopeError) -> BlobError + '_ {
    move |source| BlobError::Envelope { path: path.to_string(), source }
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, BlobError> {
    r.map_err(|e| BlobError::Io(std::io::Error::other(format!("a blob worker failed: {e}"))))
}

/// Hashes what passes through.
struct Hashing<T> {
    inner: T,
    sha: digest::Context,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing { inner, sha: digest::Context::new(&digest::SHA256) }
    }

    fn finish(self) -> (T, Sha256Digest) {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.sha.finish().as_ref());
        (self.inner, Sha256Digest::from_bytes(out))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A blob whose data key is unwrapped, ready to read.
pub struct OpenBlob {
    header: Header,
    data_key: InputKey,
    payload: StorePath,
    payload_size: u64,
    digest: Sha256Digest,
}

impl OpenBlob {
    /// Its header: the context, and the KEK (and version) that unwrapped its data key.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// A payload read by ranges from the store (for [`RandomAccess`], on a blocking thread).
struct RemotePayload {
    store: Arc<dyn ObjectStore>,
    path: StorePath,
    size: u64,
    runtime: tokio::runtime::Handle,
}

impl Sealed for RemotePayload {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.size)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let range = offset..offset + buf.len() as u64;
        let bytes = self.runtime.block_on(self.store.get_range(&self.path, range)).map_err(std::io::Error::other)?;
        if bytes.len() != buf.len() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short range read"));
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }
}

/// Encrypted, content-addressed blobs in an object store.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    provider: Arc<dyn KeyProvider>,
}

impl BlobStore {
    /// Blobs in `store`, their data keys wrapped by `provider`.
    pub fn new(store: Arc<dyn ObjectStore>, provider: Arc<dyn KeyProvider>) -> Self {
        BlobStore { store, provider }
    }

    /// Blobs under a local directory (created if absent).
    pub fn local(dir: &std::path::Path, provider: Arc<dyn KeyProvider>) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(BlobError::Io)?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|source| BlobError::Store { path: dir.display().to_string(), source })?;
        Ok(Self::new(Arc::new(fs), provider))
    }

    /// The key provider.
    pub fn provider(&self) -> &Arc<dyn KeyProvider> {
        &self.provider
    }

    /// Stores `input` in `scope` under its declared plaintext digest, with a fresh data key
    /// wrapped by KEK `key_id` and bound to `context` (to which the scope, the digest and an
    /// object id are added). If the scope already holds that content, nothing is read or
    /// written. If the input does not hash to `declared`, nothing is stored.
    pub async fn put(
        &self,
        scope: &BlobScope,
        key_id: &str,
        mut context: EncryptionContext,
        declared: Sha256Digest,
        input: impl Read + Send + 'static,
    ) -> Result<StoredBlob, BlobError> {
        let header_path = scope.header_path(&declared);
        if let Some(existing) = self.stored(scope, &declared).await? {
            return Ok(existing);
        }
        context.insert("project".into(), scope.project.clone());
        context.insert("dataset".into(), scope.dataset.clone());
        context.insert("version".into(), scope.version.clone());
        context.insert("digest".into(), declared.to_string());
        let sealing = custody_crypto::seal_header(self.provider.as_ref(), key_id, context)
            .await
            .map_err(envelope_err(&header_path))?;
        let header = sealing.header;
        let payload_context = header.payload_context();
        let data_key = sealing.data_key;
        let (mut sealed, actual, plaintext_len) = joined(
            tokio::task::spawn_blocking(move || -> Result<_, BlobError> {
                let mut input = Hashing::new(input);
                let mut file = std::io::BufWriter::new(tempfile::tempfile().map_err(BlobError::Io)?);
                let n = chunked::encrypt(&data_key, &payload_context, &mut input, &mut file, |_| {})
                    .map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
                let mut file = file.into_inner().map_err(|e| BlobError::Io(e.into_error()))?;
                file.rewind().map_err(BlobError::Io)?;
                Ok((file, input.finish().1, n))
            })
            .await,
        )??;
        if actual != declared {
            return Err(BlobError::DigestMismatch { declared, actual });
        }
        let payload_path = scope.payload_path(&declared, &header);
        self.upload(&payload_path, &mut sealed).await?;
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&header_path, PutPayload::from(header.to_bytes()), create).await {
            Ok(_) => Ok(StoredBlob { digest: declared, header, plaintext_len, created: true }),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Another writer stored the same content first: theirs stands.
                let _ = self.store.delete(&payload_path).await;
                self.stored(scope, &declared).await?.ok_or_else(|| BlobError::NotFound(header_path.to_string()))
            }
            Err(e) => {
                let _ = self.store.delete(&payload_path).await;
                Err(store_err(&header_path)(e))
            }
        }
    }

    /// Uploads a ciphertext file: in one request when small, else in parts (visible only once
    /// the upload completes).
    async fn upload(&self, path: &StorePath, file: &mut std::fs::File) -> Result<(), BlobError> {
        let len = file.metadata().map_err(BlobError::Io)?.len();
        if len <= PART as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf).map_err(BlobError::Io)?;
            self.store.put(path, PutPayload::from(buf)).await.map_err(store_err(path))?;
            return Ok(());
        }
        let upload = self.store.put_multipart(path).await.map_err(store_err(path))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; PART];
        loop {
            let n = file.read(&mut buf).map_err(BlobError::Io)?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await.map_err(store_err(path))?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(store_err(path))?;
        Ok(())
    }

    /// The blob stored in `scope` at `digest`, if any (its header only).
    pub async fn stored(&self, scope: &BlobScope, digest: &Sha256Digest) -> Result<Option<StoredBlob>, BlobError> {
        Ok(self.located(scope, digest).await?.map(|(blob, _)| blob))
    }

    /// The stored blob and its payload's size in bytes.
    async fn located(&self, scope: &BlobScope, digest: &Sha256Digest) -> Result<Option<(StoredBlob, u64)>, BlobError> {
        let Some(header) = self.read_header(&scope.header_path(digest)).await? else { return Ok(None) };
        let payload = scope.payload_path(digest, &header);
        let size = self.store.head(&payload).await.map_err(store_err(&payload))?.size;
        let plaintext_len =
            chunked::plaintext_len(size).map_err(|e| envelope_err(&payload)(EnvelopeError::Container(e.into())))?;
        Ok(Some((StoredBlob { digest: *digest, header, plaintext_len, created: false }, size)))
    }

    /// The header at `path`, if there is one.
    async fn read_header(&self, path: &StorePath) -> Result<Option<Header>, BlobError> {
        let bytes = match self.store.get(path).await {
            Ok(got) => got.bytes().await.map_err(store_err(path))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_err(path)(e)),
        };
        parse_header(path, &bytes).map(Some)
    }

    /// Unwraps a blob's data key (one use of its KEK), ready for [`BlobStore::read_opened`]
    /// or [`BlobStore::read_range_opened`].
    pub async fn open(&self, scope: &BlobScope, digest: &Sha256Digest) -> Result<OpenBlob, BlobError> {
        let path = scope.header_path(digest);
        let (blob, payload_size) =
            self.located(scope, digest).await?.ok_or_else(|| BlobError::NotFound(path.to_string()))?;
        if blob.header.context.get("digest") != Some(&digest.to_string()) {
            return Err(envelope_err(&path)(EnvelopeError::Container(custody_crypto::ContainerError::Header(
                "the header was made for another blob".into(),
            ))));
        }
        let data_key =
            custody_crypto::open_header(self.provider.as_ref(), &blob.header).await.map_err(envelope_err(&path))?;
        Ok(OpenBlob {
            payload: scope.payload_path(digest, &blob.header),
            payload_size,
            header: blob.header,
            data_key,
            digest: *digest,
        })
    }

    /// Decrypts the blob into `output`, checking the plaintext against its address. Output is
    /// written as chunks authenticate: on error, discard it. Returns the header (whose KEK
    /// reference says which key protected it) and the plaintext length.
    pub async fn read_to<W: Write + Send + 'static>(
        &self,
        scope: &BlobScope,
        digest: &Sha256Digest,
        output: W,
    ) -> Result<(Header, u64, W), BlobError> {
        let blob = self.open(scope, digest).await?;
        let header = blob.header.clone();
        let (n, output) = self.read_opened(blob, output).await?;
        Ok((header, n, output))
    }

    /// [`BlobStore::read_to`] for a blob already opened.
    pub async fn read_opened<W: Write + Send + 'static>(
        &self,
        blob: OpenBlob,
        output: W,
    ) -> Result<(u64, W), BlobError> {
        let got = self.store.get(&blob.payload).await.map_err(store_err(&blob.payload))?;
        let stream = got.into_stream().map_err(std::io::Error::other);
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        let context = blob.header.payload_context();
        let path = blob.payload.clone();
        let declared = blob.digest;
        joined(
            tokio::task::spawn_blocking(move || -> Result<_, BlobError> {
                let mut reader = reader;
                let mut out = Hashing::new(output);
                let n = chunked::decrypt(&blob.data_key, &context, &mut reader, &mut out, |_| {})
                    .map_err(|e| envelope_err(&path)(e.into()))?;
                out.flush().map_err(BlobError::Io)?;
                let (output, actual) = out.finish();
                if actual != declared {
                    return Err(BlobError::DigestMismatch { declared, actual });
                }
                Ok((n, output))
            })
            .await,
        )?
    }

    /// The plaintext bytes `range` of a blob, opening only the chunks they lie in (and the
    /// final one, which authenticates the length).
    pub async fn read_range(
        &self,
        scope: &BlobScope,
        digest: &Sha256Digest,
        range: std::ops::Range<u64>,
    ) -> Result<(Header, Vec<u8>), BlobError> {
        let blob = self.open(scope, digest).await?;
        let header = blob.header.clone();
        Ok((header, self.read_range_opened(blob, range).await?))
    }

    /// [`BlobStore::read_range`] for a blob already opened.
    pub async fn read_range_opened(&self, blob: OpenBlob, range: std::ops::Range<u64>) -> Result<Vec<u8>, BlobError> {
        let payload = RemotePayload {
            store: self.store.clone(),
            path: blob.payload.clone(),
            size: blob.payload_size,
            runtime: tokio::runtime::Handle::current(),
        };
        let context = blob.header.payload_context();
        let path = blob.payload.clone();
        joined(
            tokio::task::spawn_blocking(move || -> Result<_, BlobError> {
                let mut ra = RandomAccess::open(&blob.data_key, &context, &payload)
                    .map_err(|e| envelope_err(&path)(e.into()))?;
                ra.read_range(range).map_err(|e| envelope_err(&path)(e.into()))
            })
            .await,
        )?
    }

    /// Rewraps the blob's data key under its KEK's current version, rewriting only the header.
    /// Returns the new header, or `None` if the wrap was already current.
    pub async fn rewrap(&self, scope: &BlobScope, digest: &Sha256Digest) -> Result<Option<Header>, BlobError> {
        let location = BlobLocation { header: scope.header_path(digest) };
        Ok(self.rewrap_at(&location).await?.1)
    }

    /// Every blob in the store, for store-wide walks (rewrapping after a rotation).
    pub async fn locations(&self) -> Result<Vec<BlobLocation>, BlobError> {
        let root = StorePath::default();
        let metas: Vec<_> = self.store.list(None).try_collect().await.map_err(store_err(&root))?;
        let mut out: Vec<BlobLocation> = metas
            .into_iter()
            .filter(|m| m.location.filename().is_some_and(|f| f.ends_with(".header")))
            .map(|m| BlobLocation { header: m.location })
            .collect();
        out.sort_by(|a, b| a.header.as_ref().cmp(b.header.as_ref()));
        Ok(out)
    }

    /// [`BlobStore::rewrap`] by location: the header as it was, and the new one if it changed.
    pub async fn rewrap_at(&self, location: &BlobLocation) -> Result<(Header, Option<Header>), BlobError> {
        let path = &location.header;
        let old = self.read_header(path).await?.ok_or_else(|| BlobError::NotFound(path.to_string()))?;
        let new = custody_crypto::rewrap_header(self.provider.as_ref(), &old).await.map_err(envelope_err(path))?;
        if new.kek == old.kek {
            return Ok((old, None));
        }
        self.store.put(path, PutPayload::from(new.to_bytes())).await.map_err(store_err(path))?;
        Ok((old, Some(new)))
    }

    /// The digests stored in `scope`.
    pub async fn list(&self, scope: &BlobScope) -> Result<Vec<Sha256Digest>, BlobError> {
        let prefix = scope.prefix();
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(store_err(&prefix))?;
        let mut out: Vec<Sha256Digest> = metas
            .iter()
            .filter_map(|m| m.location.filename()?.strip_suffix(".header").map(Sha256Digest::parse))
            .filter_map(Result::ok)
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Deletes a blob: its header first (it disappears at once), then its payloads.
    pub async fn delete(&self, scope: &BlobScope, digest: &Sha256Digest) -> Result<bool, BlobError> {
        let path = scope.header_path(digest);
        let Some(blob) = self.stored(scope, digest).await? else { return Ok(false) };
        self.store.delete(&path).await.map_err(store_err(&path))?;
        let payload = scope.payload_path(digest, &blob.header);
        self.store.delete(&payload).await.map_err(store_err(&payload))?;
        Ok(true)
    }
}

fn parse_header(path: &StorePath, bytes: &Bytes) -> Result<Header, BlobError> {
    let (header, used) = Header::read(&mut bytes.as_ref()).map_err(|e| envelope_err(path)(e.into()))?;
    if used != bytes.len() as u64 {
        return Err(envelope_err(path)(EnvelopeError::Container(custody_crypto::ContainerError::Header(
            "bytes after the header".into(),
        ))));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_addressed_by_sha256() {
        assert_eq!(
            sha256(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scopes_cannot_escape_their_prefix() {
        for project in ["..", "../etc", ".", "a/b"] {
            let scope = BlobScope { project: project.into(), dataset: "a/../b".into(), version: "v1".into() };
            let path = scope.header_path(&sha256(b""));
            assert_eq!(path.parts().count(), 4, "{path}");
            assert!(path.parts().all(|p| p.as_ref() != ".." && p.as_ref() != "."), "{path}");
        }
    }
}
