//! Signing keys held by the transit engine: model signatures and provenance made without the
//! private key ever leaving OpenBao.
//!
//! Transit signs ECDSA keys over the hash it is told to use; the hash is the curve's
//! (P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512), as OMS key signing expects, and
//! the signature comes back ASN.1 (DER), as DSSE carries it. Ed25519 keys sign the message
//! itself.

use super::{B64, Engine, Failure, OpenBaoTransit, valid_name};
use custody_crypto::KeyError;
use custody_provenance::{KeyAlgorithm, PublicKey};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410) before the 32 raw key bytes,
/// which is how transit returns such a key.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A signing key in transit: its name, the version that signs, and that version's public key.
#[derive(Debug, Clone)]
pub struct TransitSigningKey {
    /// The transit key's name.
    pub name: String,
    /// The version transit signs with (its latest).
    pub version: u32,
    /// That version's public key.
    pub public_key: PublicKey,
}

#[derive(Deserialize)]
struct SigningKeyData {
    #[serde(rename = "type")]
    kind: String,
    latest_version: u32,
    keys: BTreeMap<String, Value>,
}

fn transit_type(algorithm: KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
        KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
        KeyAlgorithm::EcdsaP521 => "ecdsa-p521",
        KeyAlgorithm::Ed25519 => "ed25519",
    }
}

fn algorithm_of(kind: &str) -> Option<KeyAlgorithm> {
    KeyAlgorithm::ALL.into_iter().find(|a| transit_type(*a) == kind)
}

/// The hash transit must apply before signing, `None` for Ed25519.
fn hash_of(algorithm: KeyAlgorithm) -> Option<&'static str> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => Some("sha2-256"),
        KeyAlgorithm::EcdsaP384 => Some("sha2-384"),
        KeyAlgorithm::EcdsaP521 => Some("sha2-512"),
        KeyAlgorithm::Ed25519 => None,
    }
}

fn unexpected(name: &str, what: impl std::fmt::Display) -> KeyError {
    KeyError::Unavailable(format!("OpenBao: unexpected answer for signing key `{name}`: {what}"))
}

/// The public key transit gives for one version: PEM for ECDSA, base64 raw bytes for Ed25519.
fn public_key(name: &str, algorithm: KeyAlgorithm, version: &Value) -> Result<PublicKey, KeyError> {
    let text = version
        .get("public_key")
        .and_then(Value::as_str)
        .ok_or_else(|| unexpected(name, "the version has no public_key"))?;
    let what = format!("OpenBao signing key `{name}`");
    let key = if algorithm == KeyAlgorithm::Ed25519 {
        let raw = B64.decode(text.trim()).map_err(|e| unexpected(name, e))?;
        let spki = [&ED25519_SPKI_PREFIX[..], &raw].concat();
        PublicKey::from_spki(&spki, &what)
    } else {
        PublicKey::from_pem(text.as_bytes(), &what)
    }
    .map_err(|e| unexpected(name, e))?;
    if key.algorithm() != algorithm {
        return Err(unexpected(name, format!("its public key is {}, not {algorithm}", key.algorithm())));
    }
    Ok(key)
}

impl OpenBaoTransit {
    /// Creates signing key `name` of `algorithm` in transit (not exportable), or returns the
    /// existing key if it is already a signing key of that algorithm. A key of another type
    /// under that name is refused, never replaced.
    pub async fn create_signing_key(&self, name: &str, algorithm: KeyAlgorithm) -> Result<TransitSigningKey, KeyError> {
        valid_name("key", name)?;
        match self.signing_key(name).await {
            Ok(k) if k.public_key.algorithm() == algorithm => return Ok(k),
            Ok(k) => {
                return Err(KeyError::Invalid(format!(
                    "OpenBao key `{name}` already exists as a {} signing key, not {algorithm}",
                    k.public_key.algorithm()
                )));
            }
            Err(KeyError::UnknownKey(_)) => {}
            Err(e) => return Err(e),
        }
        let body = json!({ "type": transit_type(algorithm), "exportable": false });
        self.transit(Method::POST, &format!("keys/{name}"), Some(body))
            .await
            .map_err(|f| self.failure(name, None, f))?;
        self.signing_key(name).await
    }

    /// Reads signing key `name`: its latest version and that version's public key. A transit
    /// key that cannot sign (an encryption key) is refused.
    pub async fn signing_key(&self, name: &str) -> Result<TransitSigningKey, KeyError> {
        valid_name("key", name)?;
        let data = self
            .transit(Method::GET, &format!("keys/{name}"), None)
            .await
            .map_err(|f| self.failure(name, None, f))?
            .ok_or_else(|| KeyError::UnknownKey(name.into()))?;
        let data: SigningKeyData = serde_json::from_value(data).map_err(|e| unexpected(name, e))?;
        let algorithm = algorithm_of(&data.kind).ok_or_else(|| {
            KeyError::Invalid(format!(
                "OpenBao key `{name}` is a `{}` key, not an ECDSA P-256/P-384/P-521 or Ed25519 signing key",
                data.kind
            ))
        })?;
        let latest = data
            .keys
            .get(&data.latest_version.to_string())
            .ok_or_else(|| unexpected(name, format!("version {} is not listed", data.latest_version)))?;
        let public_key = public_key(name, algorithm, latest)?;
        Ok(TransitSigningKey { name: name.to_owned(), version: data.latest_version, public_key })
    }

    /// Signs `message` with `key`'s version `key.version`; the signature is checked against
    /// that version's public key before it is returned.
    pub async fn sign(&self, key: &TransitSigningKey, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let algorithm = key.public_key.algorithm();
        let mut body =
            json!({ "input": B64.encode(message), "key_version": key.version, "marshaling_algorithm": "asn1" });
        if let Some(hash) = hash_of(algorithm) {
            body["hash_algorithm"] = json!(hash);
        }
        let name = &key.name;
        let data = match self.transit(Method::POST, &format!("sign/{name}"), Some(body)).await {
            Ok(data) => data.ok_or_else(|| unexpected(name, "no data in the answer"))?,
            Err(Failure::Status(StatusCode::BAD_REQUEST, m)) if m.contains("signing not supported") => {
                return Err(KeyError::Invalid(format!("OpenBao key `{name}` cannot sign: {m}")));
            }
            Err(f) => return Err(self.failure(name, Some(key.version), f)),
        };
        let text = data
            .get("signature")
            .and_then(Value::as_str)
            .ok_or_else(|| unexpected(name, "the answer has no signature"))?;
        let prefix = format!("vault:v{}:", key.version);
        let encoded = text.strip_prefix(&prefix).ok_or_else(|| {
            unexpected(
                name,
                format!(
                    "the signature is not from version {} (`{}…`)",
                    key.version,
                    text.chars().take(12).collect::<String>()
                ),
            )
        })?;
        let sig = B64.decode(encoded).map_err(|e| unexpected(name, e))?;
        key.public_key.verify(message, &sig).map_err(|_| {
            unexpected(name, format!("the signature does not verify under version {}'s public key", key.version))
        })?;
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use custody_provenance::StatementSigner;

    #[test]
    fn every_algorithm_has_a_transit_type_and_back() {
        for a in KeyAlgorithm::ALL {
            assert_eq!(algorithm_of(transit_type(a)), Some(a));
        }
        assert_eq!(algorithm_of("aes256-gcm96"), None);
        assert_eq!(algorithm_of("rsa-2048"), None);
    }

    #[test]
    fn ed25519_public_keys_come_as_raw_bytes() {
        let (key, _) = custody_provenance::SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let spki = key.public_key().spki();
        assert_eq!(spki[..12], ED25519_SPKI_PREFIX);
        let version = json!({ "public_key": B64.encode(&spki[12..]) });
        assert_eq!(&public_key("k", KeyAlgorithm::Ed25519, &version).unwrap(), key.public_key());
        assert!(public_key("k", KeyAlgorithm::EcdsaP256, &version).is_err(), "raw bytes are not a PEM");
        assert!(public_key("k", KeyAlgorithm::Ed25519, &json!({})).is_err());
    }
}
