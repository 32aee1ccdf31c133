//! The local keyring: the embedded default [`KeyProvider`].
//!
//! KEKs live in one file, created with mode 0600 and refused if group or others can read or
//! write it. The file is sealed (AES-256-GCM) under a key from the environment: either
//! `CUSTODY_KEYRING_KEY` (base64 of 32 random bytes) or a passphrase
//! (`CUSTODY_KEYRING_PASSPHRASE`) stretched with Argon2id. Every change is written to a
//! temporary file, synced and renamed over the keyring, so a crash leaves the old or the new
//! keyring, never a mix. Destroying a version removes its material from the file.

use crate::chunked::InputKey;
use crate::container::KekRef;
use crate::provider::{BoxFuture, KekInfo, KeyError, KeyProvider, ShredReceipt, now_rfc3339};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zeroize::Zeroizing;

const FORMAT: &str = "custody-keyring/1";
/// Argon2id cost: 64 MiB, 3 passes, one lane (above OWASP's minimums).
const ARGON2_M_KIB: u32 = 64 * 1024;
const ARGON2_T: u32 = 3;

/// How the keyring file is unlocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum Unlock {
    /// A passphrase through Argon2id.
    Argon2id { salt: String, m_kib: u32, t: u32, p: u32 },
    /// A 256-bit key from the environment.
    EnvironmentKey,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: String,
    unlock: Unlock,
    /// base64(nonce || ciphertext || tag) of the JSON [`State`].
    sealed: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    keys: BTreeMap<String, Kek>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kek {
    current: u32,
    min_decryption_version: u32,
    versions: BTreeMap<u32, Version>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Version {
    /// base64 key material; `None` once destroyed.
    material: Option<String>,
    created: String,
    destroyed: Option<String>,
}

/// The secret that unlocks a keyring.
pub enum Unlocker {
    /// A passphrase (Argon2id).
    Passphrase(Zeroizing<String>),
    /// A 256-bit key.
    Key(Zeroizing<[u8; 32]>),
}

impl Unlocker {
    /// From `CUSTODY_KEYRING_KEY` (base64, 32 bytes) or else `CUSTODY_KEYRING_PASSPHRASE`.
    pub fn from_env() -> Result<Self, KeyError> {
        if let Ok(text) = std::env::var("CUSTODY_KEYRING_KEY") {
            let bytes =
                Zeroizing::new(B64.decode(text.trim()).map_err(|_| {
                    KeyError::Unavailable("CUSTODY_KEYRING_KEY is not base64 (of 32 random bytes)".into())
                })?);
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                KeyError::Unavailable(format!("CUSTODY_KEYRING_KEY holds {} bytes, not 32", bytes.len()))
            })?;
            return Ok(Unlocker::Key(Zeroizing::new(key)));
        }
        match std::env::var("CUSTODY_KEYRING_PASSPHRASE") {
            Ok(p) if !p.is_empty() => Ok(Unlocker::Passphrase(Zeroizing::new(p))),
            _ => Err(KeyError::Unavailable(
                "the local keyring needs CUSTODY_KEYRING_KEY (base64 of 32 bytes) or CUSTODY_KEYRING_PASSPHRASE".into(),
            )),
        }
    }
}

/// The local keyring provider.
pub struct LocalKeyring {
    path: PathBuf,
    unlock: Unlock,
    master: LessSafeKey,
    state: Mutex<State>,
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| KeyError::Unavailable("the system random source failed".into()))?;
    Ok(b)
}

fn aes_key(bytes: &[u8]) -> Result<LessSafeKey, KeyError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| KeyError::Unavailable("AES-256-GCM refused a key".into()))
}

/// AES-256-GCM with a random nonce: nonce || ciphertext || tag.
fn seal(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, KeyError> {
    let nonce = random::<NONCE_LEN>()?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .map_err(|_| KeyError::Unavailable("sealing failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend(buf);
    Ok(out)
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = Zeroizing::new(body.to_vec());
    let len = key.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?.len();
    buf.truncate(len);
    Some(buf)
}

fn unlock_aad(unlock: &Unlock) -> Vec<u8> {
    let mut aad = format!("{FORMAT}\n").into_bytes();
    aad.extend(serde_json::to_vec(unlock).unwrap_or_default());
    aad
}

fn master_key(unlock: &Unlock, unlocker: &Unlocker) -> Result<LessSafeKey, KeyError> {
    match (unlock, unlocker) {
        (Unlock::EnvironmentKey, Unlocker::Key(k)) => aes_key(k.as_slice()),
        (Unlock::Argon2id { salt, m_kib, t, p }, Unlocker::Passphrase(pass)) => {
            let salt =
                B64.decode(salt).map_err(|_| KeyError::Unavailable("the keyring's salt is not base64".into()))?;
            let params = argon2::Params::new(*m_kib, *t, *p, Some(32))
                .map_err(|e| KeyError::Unavailable(format!("the keyring's Argon2 parameters: {e}")))?;
            let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let mut out = Zeroizing::new([0u8; 32]);
            argon
                .hash_password_into(pass.as_bytes(), &salt, out.as_mut_slice())
                .map_err(|e| KeyError::Unavailable(format!("Argon2id: {e}")))?;
            aes_key(out.as_slice())
        }
        (Unlock::EnvironmentKey, Unlocker::Passphrase(_)) => {
            Err(KeyError::Unavailable("this keyring is unlocked by CUSTODY_KEYRING_KEY, not a passphrase".into()))
        }
        (Unlock::Argon2id { .. }, Unlocker::Key(_)) => Err(KeyError::Unavailable(
            "this keyring is unlocked by a passphrase (CUSTODY_KEYRING_PASSPHRASE), not CUSTODY_KEYRING_KEY".into(),
        )),
    }
}

impl LocalKeyring {
    /// Creates a new, empty keyring at `path` (which must not exist), mode 0600.
    pub fn create(path: &Path, unlocker: &Unlocker) -> Result<Self, KeyError> {
        if path.exists() {
            return Err(KeyError::Invalid(format!("`{}` exists; a keyring is never overwritten", path.display())));
        }
        let unlock = match unlocker {
            Unlocker::Key(_) => Unlock::EnvironmentKey,
            Unlocker::Passphrase(_) => {
                Unlock::Argon2id { salt: B64.encode(random::<16>()?), m_kib: ARGON2_M_KIB, t: ARGON2_T, p: 1 }
            }
        };
        let master = master_key(&unlock, unlocker)?;
        let ring = LocalKeyring { path: path.to_owned(), unlock, master, state: Mutex::new(State::default()) };
        ring.save(&State::default())?;
        Ok(ring)
    }

    /// Opens the keyring at `path`; refuses one that group or others can access.
    pub fn open(path: &Path, unlocker: &Unlocker) -> Result<Self, KeyError> {
        let unavailable = |e: std::io::Error| KeyError::Unavailable(format!("keyring `{}`: {e}", path.display()));
        let mode = std::fs::metadata(path).map_err(unavailable)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Unavailable(format!(
                "keyring `{}` is accessible to group or others (mode {:o}); refusing to use it (chmod 600)",
                path.display(),
                mode & 0o777
            )));
        }
        let text = std::fs::read_to_string(path).map_err(unavailable)?;
        let file: KeyringFile = serde_json::from_str(&text)
            .map_err(|e| KeyError::Unavailable(format!("keyring `{}` is malformed: {e}", path.display())))?;
        if file.format != FORMAT {
            return Err(KeyError::Unavailable(format!("keyring format `{}` is not `{FORMAT}`", file.format)));
        }
        let master = master_key(&file.unlock, unlocker)?;
        let sealed = B64.decode(&file.sealed).map_err(|_| KeyError::Unavailable("the keyring is not base64".into()))?;
        let plain = open(&master, &unlock_aad(&file.unlock), &sealed).ok_or_else(|| {
            KeyError::Unavailable(format!(
                "keyring `{}` does not open: wrong passphrase or key, or the file was altered",
                path.display()
            ))
        })?;
        let state: State = serde_json::from_slice(&plain)
            .map_err(|e| KeyError::Unavailable(format!("keyring `{}` content: {e}", path.display())))?;
        Ok(LocalKeyring { path: path.to_owned(), unlock: file.unlock, master, state: Mutex::new(state) })
    }

    /// Seals `state` and replaces the file atomically (mode 0600).
    fn save(&self, state: &State) -> Result<(), KeyError> {
        let fail = |e: std::io::Error| KeyError::Unavailable(format!("writing keyring `{}`: {e}", self.path.display()));
        let plain = Zeroizing::new(serde_json::to_vec(state).map_err(|e| KeyError::Unavailable(e.to_string()))?);
        let sealed = seal(&self.master, &unlock_aad(&self.unlock), &plain)?;
        let file = KeyringFile { format: FORMAT.into(), unlock: self.unlock.clone(), sealed: B64.encode(sealed) };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| KeyError::Unavailable(e.to_string()))?;
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(fail)?;
        let written = f.write_all(&text).and_then(|()| f.sync_all()).and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(e));
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
        }
        Ok(())
    }

    /// Runs `change` on the state and saves it; on failure nothing changes.
    fn update<T>(&self, change: impl FnOnce(&mut State) -> Result<T, KeyError>) -> Result<T, KeyError> {
        let mut state = self.state.lock().map_err(|_| KeyError::Unavailable("the keyring lock is poisoned".into()))?;
        let mut next = state.clone();
        let out = change(&mut next)?;
        self.save(&next)?;
        *state = next;
        Ok(out)
    }

    fn wrap_aad(key_id: &str, version: u32, aad: &[u8]) -> Vec<u8> {
        let mut out = b"custody-local-wrap/1\n".to_vec();
        out.extend_from_slice(key_id.as_bytes());
        out.push(0);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(aad);
        out
    }

    fn new_version() -> Result<Version, KeyError> {
        Ok(Version { material: Some(B64.encode(random::<32>()?)), created: now_rfc3339(), destroyed: None })
    }

    fn wrap_now(&self, key_id: &str, data_key: &InputKey, aad: &[u8]) -> Result<(KekRef, Vec<u8>), KeyError> {
        let state = self.state.lock().map_err(|_| KeyError::Unavailable("the keyring lock is poisoned".into()))?;
        let kek = state.keys.get(key_id).ok_or_else(|| KeyError::UnknownKey(key_id.into()))?;
        let version = kek.current;
        let material = kek
            .versions
            .get(&version)
            .and_then(|v| v.material.as_deref())
            .ok_or_else(|| KeyError::Destroyed { key: key_id.into(), version })?;
        let material = Zeroizing::new(B64.decode(material).map_err(|_| KeyError::Unavailable("bad material".into()))?);
        let wrapped = seal(&aes_key(&material)?, &Self::wrap_aad(key_id, version, aad), data_key.bytes())?;
        Ok((KekRef { provider: self.name().into(), key_id: key_id.into(), version }, wrapped))
    }

    fn unwrap_now(&self, kek: &KekRef, wrapped: &[u8], aad: &[u8]) -> Result<InputKey, KeyError> {
        if kek.provider != self.name() {
            return Err(KeyError::WrongProvider(kek.provider.clone()));
        }
        let state = self.state.lock().map_err(|_| KeyError::Unavailable("the keyring lock is poisoned".into()))?;
        let (key_id, version) = (kek.key_id.as_str(), kek.version);
        let entry = state.keys.get(key_id).ok_or_else(|| KeyError::UnknownKey(key_id.into()))?;
        let v = entry.versions.get(&version).ok_or(KeyError::UnknownVersion { key: key_id.into(), version })?;
        let material = v.material.as_deref().ok_or(KeyError::Destroyed { key: key_id.into(), version })?;
        if version < entry.min_decryption_version {
            return Err(KeyError::Retired { key: key_id.into(), version, min: entry.min_decryption_version });
        }
        let material = Zeroizing::new(B64.decode(material).map_err(|_| KeyError::Unavailable("bad material".into()))?);
        let plain = open(&aes_key(&material)?, &Self::wrap_aad(key_id, version, aad), wrapped)
            .ok_or(KeyError::Unwrap { key: key_id.into(), version })?;
        let bytes: [u8; 32] =
            plain.as_slice().try_into().map_err(|_| KeyError::Unwrap { key: key_id.into(), version })?;
        Ok(InputKey::new(bytes))
    }

    fn destroy_now(&self, key_id: &str, version: Option<u32>) -> Result<ShredReceipt, KeyError> {
        self.update(|state| {
            let kek = state.keys.get_mut(key_id).ok_or_else(|| KeyError::UnknownKey(key_id.into()))?;
            if let Some(w) = version.filter(|w| !kek.versions.contains_key(w)) {
                return Err(KeyError::UnknownVersion { key: key_id.into(), version: w });
            }
            let when = now_rfc3339();
            let mut versions = Vec::new();
            for (n, v) in kek.versions.iter_mut().filter(|(n, _)| version.is_none_or(|w| **n == w)) {
                if v.material.take().is_some() {
                    v.destroyed = Some(when.clone());
                    versions.push(*n);
                }
            }
            Ok(ShredReceipt {
                provider: "local".into(),
                key_id: key_id.into(),
                versions,
                destroyed_at: when,
                pending_until: None,
            })
        })
    }

    fn info(state: &State) -> Vec<KekInfo> {
        state
            .keys
            .iter()
            .map(|(id, k)| KekInfo {
                key_id: id.clone(),
                current: k.current,
                min_decryption_version: k.min_decryption_version,
                live_versions: k.versions.iter().filter(|(_, v)| v.material.is_some()).map(|(n, _)| *n).collect(),
                destroyed_versions: k.versions.iter().filter(|(_, v)| v.material.is_none()).map(|(n, _)| *n).collect(),
            })
            .collect()
    }
}

impl KeyProvider for LocalKeyring {
    fn name(&self) -> &'static str {
        "local"
    }

    fn wrap<'a>(
        &'a self,
        key_id: &'a str,
        data_key: &'a InputKey,
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<(KekRef, Vec<u8>), KeyError>> {
        Box::pin(async move { self.wrap_now(key_id, data_key, aad) })
    }

    fn unwrap<'a>(
        &'a self,
        kek: &'a KekRef,
        wrapped: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<InputKey, KeyError>> {
        Box::pin(async move { self.unwrap_now(kek, wrapped, aad) })
    }

    fn ensure_key<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<u32, KeyError>> {
        Box::pin(async move {
            if key_id.is_empty() || key_id.len() > 128 || key_id.chars().any(|c| c.is_control()) {
                return Err(KeyError::Invalid(format!("`{key_id}` is not a key name (1-128 printable characters)")));
            }
            self.update(|state| {
                if let Some(k) = state.keys.get(key_id) {
                    return Ok(k.current);
                }
                let versions = BTreeMap::from([(1, Self::new_version()?)]);
                state.keys.insert(key_id.into(), Kek { current: 1, min_decryption_version: 1, versions });
                Ok(1)
            })
        })
    }

    fn rotate<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<u32, KeyError>> {
        Box::pin(async move {
            self.update(|state| {
                let kek = state.keys.get_mut(key_id).ok_or_else(|| KeyError::UnknownKey(key_id.into()))?;
                let next = kek.versions.keys().next_back().copied().unwrap_or(0) + 1;
                kek.versions.insert(next, Self::new_version()?);
                kek.current = next;
                Ok(next)
            })
        })
    }

    fn set_min_decryption_version<'a>(&'a self, key_id: &'a str, version: u32) -> BoxFuture<'a, Result<(), KeyError>> {
        Box::pin(async move {
            self.update(|state| {
                let kek = state.keys.get_mut(key_id).ok_or_else(|| KeyError::UnknownKey(key_id.into()))?;
                if version == 0 || version > kek.current {
                    return Err(KeyError::Invalid(format!(
                        "minimum decryption version {version} must be between 1 and the current version {}",
                        kek.current
                    )));
                }
                kek.min_decryption_version = version;
                Ok(())
            })
        })
    }

    fn destroy<'a>(&'a self, key_id: &'a str, version: Option<u32>) -> BoxFuture<'a, Result<ShredReceipt, KeyError>> {
        Box::pin(async move { self.destroy_now(key_id, version) })
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<KekInfo>, KeyError>> {
        Box::pin(async move {
            let state = self.state.lock().map_err(|_| KeyError::Unavailable("the keyring lock is poisoned".into()))?;
            Ok(Self::info(&state))
        })
    }
}
