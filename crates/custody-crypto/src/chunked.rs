//! C2SP chunked encryption (<https://c2sp.org/chunked-encryption>), instantiated as
//! **Cobblestone-256**: HKDF-Expand with SHA-512 and AES-256-GCM, both from aws-lc-rs.
//!
//! ```text
//! key(32) || base_nonce(12) || commitment(32) = HKDF-Expand-SHA-512(prk = input key,
//!     info = "c2sp.org/chunked-encryption@v1+" || "AEAD_AES_256_GCM" || 0x00 || salt || context)
//! ciphertext = salt(24) || commitment(32) || AES-256-GCM(key, base_nonce ^ i, chunk_i) ...
//! ```
//!
//! Chunks are 16 KiB of plaintext; the last is always shorter (possibly empty), which is how
//! the end of a message is authenticated: a cut at a chunk boundary leaves no short chunk, a
//! cut elsewhere breaks a tag. The commitment is checked before any chunk is opened, so a
//! wrong key or a changed context is refused before any plaintext exists.
//!
//! [`encrypt`] and [`decrypt`] stream with bounded memory: the input is read in batches of
//! [`BATCH_CHUNKS`] chunks while the previous batches are sealed or opened on every core and
//! written in order. [`RandomAccess`] decrypts any byte range, opening only the chunks it
//! covers and the final chunk (which authenticates the length).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA512, KeyType, Prk};
use std::io::{Read, Write};
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use zeroize::Zeroize;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 16 * 1024;
/// AES-GCM tag bytes.
pub const TAG: usize = 16;
/// Salt bytes, prepended to the ciphertext.
pub const SALT: usize = 24;
/// Commitment bytes, after the salt.
pub const COMMITMENT: usize = 32;
/// Bytes before the first chunk.
pub const PREFIX: usize = SALT + COMMITMENT;
/// Ciphertext bytes of a full chunk.
pub const SEALED_CHUNK: usize = CHUNK + TAG;
/// The AEAD's name in the IANA registry, as the key derivation spells it.
pub const AEAD_NAME: &str = "AEAD_AES_256_GCM";
/// Chunks per batch of the streaming pipeline (1 MiB of plaintext).
pub const BATCH_CHUNKS: usize = 64;
/// The spec's limit: the chunk counter must stay below 2^38.
const MAX_CHUNKS: u64 = 1 << 38;

/// What is wrong with a ciphertext or a stream.
#[derive(Debug, thiserror::Error)]
pub enum ChunkedError {
    /// Fewer bytes than the salt and commitment.
    #[error("the ciphertext is {0} bytes, shorter than its 56-byte salt and commitment")]
    Short(u64),
    /// The commitment derived from the key, salt and context is not the stored one.
    #[error("the key commitment does not match: the data key is wrong or the authenticated header was changed")]
    Commitment,
    /// A chunk's tag does not verify under its position's nonce.
    #[error("chunk {0} does not authenticate: the ciphertext was modified, reordered or swapped")]
    Chunk(u64),
    /// The ciphertext ends without a short final chunk.
    #[error("the ciphertext is truncated: it ends after {0} full chunks without its final chunk")]
    Truncated(u64),
    /// The ciphertext ends inside a tag.
    #[error("the ciphertext ends inside the tag of chunk {0}")]
    CutTag(u64),
    /// More than 2^38 chunks.
    #[error("the message exceeds the 2^38 chunks (4 PiB) chunked encryption allows")]
    TooLong,
    /// A byte range outside the plaintext.
    #[error("range {start}..{end} is outside the plaintext of {len} bytes")]
    Range {
        /// Start asked.
        start: u64,
        /// End asked.
        end: u64,
        /// The plaintext's length.
        len: u64,
    },
    /// Reading the input failed.
    #[error("reading: {0}")]
    Read(std::io::Error),
    /// Writing the output failed.
    #[error("writing: {0}")]
    Write(std::io::Error),
    /// The AEAD or KDF refused its inputs (not expected with valid lengths).
    #[error("the cryptographic library refused: {0}")]
    Library(&'static str),
}

/// A 256-bit input key, wiped when dropped.
pub struct InputKey([u8; 32]);

impl InputKey {
    /// Wraps key bytes (uniformly random: a fresh data key).
    pub fn new(bytes: [u8; 32]) -> Self {
        InputKey(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, ChunkedError> {
        let mut k = [0u8; 32];
        aws_lc_rs::rand::fill(&mut k).map_err(|_| ChunkedError::Library("random"))?;
        Ok(InputKey(k))
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for InputKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for InputKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InputKey(..)")
    }
}

/// The per-message key, base nonce and commitment.
pub struct MessageKeys {
    key: LessSafeKey,
    base_nonce: [u8; 12],
    commitment: [u8; COMMITMENT],
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl MessageKeys {
    /// Derives the message keys from the input key, the salt and the context.
    pub fn derive(input: &InputKey, salt: &[u8; SALT], context: &[u8]) -> Result<Self, ChunkedError> {
        let prk = Prk::new_less_safe(HKDF_SHA512, input.bytes());
        let info: [&[u8]; 5] = [b"c2sp.org/chunked-encryption@v1+", AEAD_NAME.as_bytes(), &[0], salt, context];
        let mut out = [0u8; 32 + 12 + COMMITMENT];
        prk.expand(&info, Len(out.len()))
            .and_then(|okm| okm.fill(&mut out))
            .map_err(|_| ChunkedError::Library("HKDF-Expand"))?;
        let key = UnboundKey::new(&AES_256_GCM, &out[..32]).map_err(|_| ChunkedError::Library("AES-256-GCM key"))?;
        let mut base_nonce = [0u8; 12];
        base_nonce.copy_from_slice(&out[32..44]);
        let mut commitment = [0u8; COMMITMENT];
        commitment.copy_from_slice(&out[44..]);
        out.zeroize();
        Ok(MessageKeys { key: LessSafeKey::new(key), base_nonce, commitment })
    }

    /// The commitment (stored after the salt).
    pub fn commitment(&self) -> &[u8; COMMITMENT] {
        &self.commitment
    }

    fn nonce(&self, counter: u64) -> Result<Nonce, ChunkedError> {
        if counter >= MAX_CHUNKS {
            return Err(ChunkedError::TooLong);
        }
        let mut n = self.base_nonce;
        for (b, c) in n[4..].iter_mut().zip(counter.to_be_bytes()) {
            *b ^= c;
        }
        Ok(Nonce::assume_unique_for_key(n))
    }

    /// Seals chunk `counter` (`plaintext` at most [`CHUNK`] bytes) into `out`, which must be
    /// `plaintext.len() + TAG` bytes.
    pub fn seal_chunk(&self, counter: u64, plaintext: &[u8], out: &mut [u8]) -> Result<(), ChunkedError> {
        let (body, tag) = out.split_at_mut(plaintext.len());
        self.key
            .seal_out_of_place_scatter(self.nonce(counter)?, Aad::empty(), plaintext, body, &[], tag)
            .map_err(|_| ChunkedError::Library("AES-256-GCM seal"))
    }

    /// Opens chunk `counter` (`sealed` is its ciphertext and tag) into `out`, which must be
    /// `sealed.len() - TAG` bytes.
    pub fn open_chunk(&self, counter: u64, sealed: &[u8], out: &mut [u8]) -> Result<(), ChunkedError> {
        let split = sealed.len().checked_sub(TAG).ok_or(ChunkedError::CutTag(counter))?;
        let (body, tag) = sealed.split_at(split);
        self.key
            .open_separate_gather(self.nonce(counter)?, Aad::empty(), body, tag, out)
            .map_err(|_| ChunkedError::Chunk(counter))
    }
}

/// Where a stream ends: the number of full chunks and the length of the final one.
fn final_chunk(sealed_len: u64) -> Result<(u64, usize), ChunkedError> {
    let body = sealed_len.checked_sub(PREFIX as u64).ok_or(ChunkedError::Short(sealed_len))?;
    let full = body / SEALED_CHUNK as u64;
    let rest = (body % SEALED_CHUNK as u64) as usize;
    match rest {
        0 => Err(ChunkedError::Truncated(full)),
        r if r < TAG => Err(ChunkedError::CutTag(full)),
        r => Ok((full, r - TAG)),
    }
}

/// The plaintext length of a ciphertext of `sealed_len` bytes, if that length is valid.
pub fn plaintext_len(sealed_len: u64) -> Result<u64, ChunkedError> {
    let (full, last) = final_chunk(sealed_len)?;
    Ok(full * CHUNK as u64 + last as u64)
}

/// The ciphertext length of a plaintext of `len` bytes.
pub fn sealed_len(len: u64) -> u64 {
    PREFIX as u64 + (len / CHUNK as u64 + 1) * TAG as u64 + len
}

/// Encrypts `reader` to `writer` under `input` and `context`, with a fresh random salt.
/// `progress` receives the plaintext bytes read so far. Returns the plaintext length.
pub fn encrypt(
    input: &InputKey,
    context: &[u8],
    reader: &mut (impl Read + Send),
    writer: &mut (impl Write + Send),
    progress: impl FnMut(u64),
) -> Result<u64, ChunkedError> {
    let mut salt = [0u8; SALT];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| ChunkedError::Library("random"))?;
    let keys = MessageKeys::derive(input, &salt, context)?;
    writer.write_all(&salt).map_err(ChunkedError::Write)?;
    writer.write_all(keys.commitment()).map_err(ChunkedError::Write)?;
    let seal = |index: u64, plain: &[u8], last: bool, out: &mut Vec<u8>| -> Result<(), ChunkedError> {
        // A last batch ends with a short chunk, empty if the batch is whole chunks.
        let chunks = plain.len() / CHUNK + usize::from(last);
        out.resize(plain.len() + chunks * TAG, 0);
        for i in 0..chunks {
            let p = &plain[i * CHUNK..((i + 1) * CHUNK).min(plain.len())];
            let o = &mut out[i * SEALED_CHUNK..i * SEALED_CHUNK + p.len() + TAG];
            keys.seal_chunk(index * BATCH_CHUNKS as u64 + i as u64, p, o)?;
        }
        Ok(())
    };
    let read = pipeline(reader, writer, BATCH_CHUNKS * CHUNK, &seal, progress)?;
    Ok(read)
}

/// Decrypts `reader` (a whole ciphertext: salt, commitment, chunks) to `writer`. The
/// commitment is checked before any chunk; each batch is written once all its chunks
/// authenticated, and a truncated ciphertext fails at its end, so a caller writing to a file
/// must discard the output on error. `progress` receives the ciphertext bytes read so far.
/// Returns the plaintext length.
pub fn decrypt(
    input: &InputKey,
    context: &[u8],
    reader: &mut (impl Read + Send),
    writer: &mut (impl Write + Send),
    progress: impl FnMut(u64),
) -> Result<u64, ChunkedError> {
    let prefix = read_at_most(reader, PREFIX).map_err(ChunkedError::Read)?;
    let prefix: &[u8; PREFIX] = prefix.as_slice().try_into().map_err(|_| ChunkedError::Short(prefix.len() as u64))?;
    let keys = opened_keys(input, context, prefix)?;
    let open = |index: u64, sealed: &[u8], last: bool, out: &mut Vec<u8>| -> Result<(), ChunkedError> {
        let first = index * BATCH_CHUNKS as u64;
        let full = sealed.len() / SEALED_CHUNK;
        let rest = sealed.len() % SEALED_CHUNK;
        if last && rest == 0 {
            return Err(ChunkedError::Truncated(first + full as u64));
        }
        if rest != 0 && rest < TAG {
            return Err(ChunkedError::CutTag(first + full as u64));
        }
        let chunks = full + usize::from(rest > 0);
        out.resize(sealed.len() - chunks * TAG, 0);
        for i in 0..chunks {
            let s = &sealed[i * SEALED_CHUNK..((i + 1) * SEALED_CHUNK).min(sealed.len())];
            let o = &mut out[i * CHUNK..i * CHUNK + s.len() - TAG];
            keys.open_chunk(first + i as u64, s, o)?;
        }
        Ok(())
    };
    let read = pipeline(reader, writer, BATCH_CHUNKS * SEALED_CHUNK, &open, progress)?;
    plaintext_len(read + PREFIX as u64)
}

/// Derives the keys for a ciphertext starting with `prefix` and checks its commitment.
fn opened_keys(input: &InputKey, context: &[u8], prefix: &[u8; PREFIX]) -> Result<MessageKeys, ChunkedError> {
    let mut salt = [0u8; SALT];
    salt.copy_from_slice(&prefix[..SALT]);
    let keys = MessageKeys::derive(input, &salt, context)?;
    aws_lc_rs::constant_time::verify_slices_are_equal(keys.commitment(), &prefix[SALT..])
        .map_err(|_| ChunkedError::Commitment)?;
    Ok(keys)
}

/// Up to `n` bytes from the front of `reader`: fewer only where the input ends.
pub(crate) fn read_at_most(reader: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// One batch in flight: its index, its input, whether it is the last.
type Job = (u64, Vec<u8>, bool);
/// One batch done: its index, its input buffer (to reuse), its output or the failure.
type Done = (u64, Vec<u8>, Result<Vec<u8>, ChunkedError>);

/// Reads `batch`-byte batches on this thread, transforms them on every core and writes the
/// results in order on another thread. The last batch is the first one shorter than `batch`
/// (possibly empty). Returns the bytes read.
fn pipeline<F>(
    reader: &mut (impl Read + Send),
    writer: &mut (impl Write + Send),
    batch: usize,
    transform: &F,
    mut progress: impl FnMut(u64),
) -> Result<u64, ChunkedError>
where
    F: Fn(u64, &[u8], bool, &mut Vec<u8>) -> Result<(), ChunkedError> + Sync,
{
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16);
    let in_flight = 2 * workers + 2;
    let (job_tx, job_rx) = sync_channel::<Job>(in_flight);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = sync_channel::<Done>(in_flight);
    // Input buffers go back to the reader once their batch is written.
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(in_flight + 1);
    // Output buffers too: allocating a fresh megabyte per batch costs its page faults.
    let outputs = Mutex::new(Vec::new());
    let outputs = &outputs;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
            scope.spawn(move || work(&job_rx, &done_tx, transform, outputs));
        }
        drop(done_tx);
        let written = scope.spawn(move || write_in_order(writer, done_rx, free_tx, outputs));
        let read = read_batches(reader, batch, &job_tx, &free_rx, &mut progress);
        drop(job_tx);
        let written = written.join().unwrap_or(Err(ChunkedError::Library("the writer thread panicked")));
        // A failure of the transform or the writer explains a reader that stopped early.
        written.and(read)
    })
}

fn work<F>(jobs: &Mutex<Receiver<Job>>, done: &SyncSender<Done>, transform: &F, outputs: &Mutex<Vec<Vec<u8>>>)
where
    F: Fn(u64, &[u8], bool, &mut Vec<u8>) -> Result<(), ChunkedError> + Sync,
{
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((index, input, last)) = job else { return };
        let mut out = outputs.lock().ok().and_then(|mut pool| pool.pop()).unwrap_or_default();
        let result = transform(index, &input, last, &mut out).map(|()| out);
        if done.send((index, input, result)).is_err() {
            return;
        }
    }
}

fn read_batches(
    reader: &mut impl Read,
    batch: usize,
    jobs: &SyncSender<Job>,
    free: &Receiver<Vec<u8>>,
    progress: &mut impl FnMut(u64),
) -> Result<u64, ChunkedError> {
    let mut total = 0u64;
    for index in 0u64.. {
        let mut buf = free.try_recv().unwrap_or_default();
        buf.clear();
        let got = reader.take(batch as u64).read_to_end(&mut buf).map_err(ChunkedError::Read)?;
        total += got as u64;
        progress(total);
        let last = got < batch;
        if jobs.send((index, buf, last)).is_err() || last {
            break;
        }
    }
    Ok(total)
}

fn write_in_order(
    writer: &mut impl Write,
    done: Receiver<Done>,
    free: SyncSender<Vec<u8>>,
    outputs: &Mutex<Vec<Vec<u8>>>,
) -> Result<(), ChunkedError> {
    let mut next = 0u64;
    let mut waiting = std::collections::BTreeMap::new();
    // Failures wait their turn like outputs: several batches can fail at once (a dropped chunk
    // shifts every later one), and the error reported is the first in stream order, whichever
    // core finished first.
    for (index, input, result) in done {
        let _ = free.try_send(input);
        waiting.insert(index, result);
        while let Some(result) = waiting.remove(&next) {
            let out = result?;
            writer.write_all(&out).map_err(ChunkedError::Write)?;
            if let Ok(mut pool) = outputs.lock() {
                pool.push(out);
            }
            next += 1;
        }
    }
    // Anything still waiting lost a batch before it (a worker that died).
    if let Some((_, result)) = waiting.pop_first() {
        result?;
        return Err(ChunkedError::Library("a batch was lost"));
    }
    writer.flush().map_err(ChunkedError::Write)?;
    Ok(())
}

/// A ciphertext that can be read at any offset.
pub trait Sealed {
    /// Its length in bytes.
    fn size(&self) -> std::io::Result<u64>;
    /// Fills `buf` from `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl Sealed for [u8] {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let src = self
            .get(start..start + buf.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A ciphertext that starts `offset` bytes into a file (after a container header, or 0).
#[derive(Debug)]
pub struct FileAt<'a> {
    /// The file.
    pub file: &'a std::fs::File,
    /// Where the ciphertext starts.
    pub offset: u64,
}

impl Sealed for FileAt<'_> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len().saturating_sub(self.offset))
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self.file, buf, self.offset + offset)
    }
}

/// Authenticated random access to a ciphertext: the commitment and the final chunk (which
/// fixes the length) are checked when it is opened; a range read opens only its chunks.
pub struct RandomAccess<'a, S: Sealed + ?Sized> {
    sealed: &'a S,
    keys: MessageKeys,
    len: u64,
}

impl<'a, S: Sealed + ?Sized> RandomAccess<'a, S> {
    /// Opens `sealed` with `input` and `context`.
    pub fn open(input: &InputKey, context: &[u8], sealed: &'a S) -> Result<Self, ChunkedError> {
        let total = sealed.size().map_err(ChunkedError::Read)?;
        let mut prefix = [0u8; PREFIX];
        if total < PREFIX as u64 {
            return Err(ChunkedError::Short(total));
        }
        sealed.read_exact_at(&mut prefix, 0).map_err(ChunkedError::Read)?;
        let keys = opened_keys(input, context, &prefix)?;
        let (full, last) = final_chunk(total)?;
        let mut ra = RandomAccess { sealed, keys, len: full * CHUNK as u64 + last as u64 };
        ra.open_chunk(full, &mut Vec::new())?;
        Ok(ra)
    }

    /// The plaintext's length (authenticated).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Opens chunk `i` into `out`.
    fn open_chunk(&mut self, i: u64, out: &mut Vec<u8>) -> Result<(), ChunkedError> {
        let plain = (self.len - i * CHUNK as u64).min(CHUNK as u64) as usize;
        let mut sealed = vec![0u8; plain + TAG];
        self.sealed.read_exact_at(&mut sealed, PREFIX as u64 + i * SEALED_CHUNK as u64).map_err(ChunkedError::Read)?;
        out.resize(plain, 0);
        self.keys.open_chunk(i, &sealed, out)
    }

    /// The plaintext bytes `range`, authenticated.
    pub fn read_range(&mut self, range: Range<u64>) -> Result<Vec<u8>, ChunkedError> {
        if range.start > range.end || range.end > self.len {
            return Err(ChunkedError::Range { start: range.start, end: range.end, len: self.len });
        }
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut at = range.start;
        while at < range.end {
            let i = at / CHUNK as u64;
            self.open_chunk(i, &mut chunk)?;
            let from = (at - i * CHUNK as u64) as usize;
            let to = ((range.end - i * CHUNK as u64) as usize).min(chunk.len());
            out.extend_from_slice(&chunk[from..to]);
            at = (i + 1) * CHUNK as u64;
        }
        Ok(out)
    }
}
