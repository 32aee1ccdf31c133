//! Signing and verification keys: ECDSA P-256/P-384/P-521 (what OMS key signing uses) and
//! Ed25519, read from and written to PEM.

use crate::ProvenanceError;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::fmt;

/// A signature algorithm, named by its key type. ECDSA signatures are DER-encoded and use the
/// curve's hash (SHA-256, SHA-384, SHA-512), as OMS key signing does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// ECDSA on P-521 with SHA-512.
    EcdsaP521,
    /// Ed25519 (for Custody's own bundles; OMS key verifiers accept only ECDSA).
    Ed25519,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order keys are tried.
    pub const ALL: [KeyAlgorithm; 4] = [Self::EcdsaP256, Self::EcdsaP384, Self::EcdsaP521, Self::Ed25519];

    /// A short name: `p256`, `p384`, `p521`, `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "p256",
            Self::EcdsaP384 => "p384",
            Self::EcdsaP521 => "p521",
            Self::Ed25519 => "ed25519",
        }
    }

    /// Parses a short name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    fn ecdsa_signing(self) -> Option<&'static signature::EcdsaSigningAlgorithm> {
        match self {
            Self::EcdsaP256 => Some(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
            Self::EcdsaP384 => Some(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
            Self::EcdsaP521 => Some(&signature::ECDSA_P521_SHA512_ASN1_SIGNING),
            Self::Ed25519 => None,
        }
    }

    fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Self::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
            Self::EcdsaP521 => &signature::ECDSA_P521_SHA512_ASN1,
            Self::Ed25519 => &signature::ED25519,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Anything that can sign a statement: a key in memory, or a key held by a key service.
pub trait StatementSigner {
    /// The public half, which goes into the bundle as its hint.
    fn public_key(&self) -> &PublicKey;
    /// Signs `message` (the DSSE pre-authentication encoding) and returns the raw signature.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProvenanceError>;
}

enum PrivateKey {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key held in memory.
pub struct SigningKey {
    key: PrivateKey,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("public", &self.public).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key; returns it with its PKCS#8 PEM (to be stored 0600 by the caller).
    pub fn generate(algorithm: KeyAlgorithm) -> Result<(Self, String), ProvenanceError> {
        let rng = SystemRandom::new();
        let failed = |_| ProvenanceError::key("generation", "the random generator failed");
        let der = match algorithm.ecdsa_signing() {
            Some(alg) => EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(failed)?.as_ref().to_vec(),
            None => Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?.as_ref().to_vec(),
        };
        let pem = pem::encode_config(&pem::Pem::new("PRIVATE KEY", der), lf());
        Ok((Self::from_pem(pem.as_bytes(), "generated")?, pem))
    }

    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`). `what`
    /// names the key in errors (usually its path).
    pub fn from_pem(text: &[u8], what: &str) -> Result<Self, ProvenanceError> {
        let block = pem::parse(text).map_err(|e| ProvenanceError::key(what, format!("not PEM: {e}")))?;
        let der = block.contents();
        let key = match block.tag() {
            "PRIVATE KEY" => pkcs8_key(der),
            "EC PRIVATE KEY" => KeyAlgorithm::ALL.iter().find_map(|a| {
                let alg = a.ecdsa_signing()?;
                EcdsaKeyPair::from_private_key_der(alg, der).ok().map(|k| (*a, PrivateKey::Ecdsa(k)))
            }),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(ProvenanceError::key(
                    what,
                    "is encrypted; decrypt it first (openssl pkcs8 -in KEY -out PLAIN.pem) or use a key service",
                ));
            }
            other => {
                return Err(ProvenanceError::key(
                    what,
                    format!("`{other}` PEM is not an ECDSA or Ed25519 private key"),
                ));
            }
        };
        let (algorithm, key) =
            key.ok_or_else(|| ProvenanceError::key(what, "is not an ECDSA P-256/P-384/P-521 or Ed25519 private key"))?;
        let spki = match &key {
            PrivateKey::Ecdsa(k) => AsDer::<PublicKeyX509Der>::as_der(k.public_key()).map(|d| d.as_ref().to_vec()),
            PrivateKey::Ed25519(k) => AsDer::<PublicKeyX509Der>::as_der(k.public_key()).map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| ProvenanceError::key(what, "its public key cannot be encoded"))?;
        Ok(Self { key, public: PublicKey { algorithm, spki } })
    }
}

fn pkcs8_key(der: &[u8]) -> Option<(KeyAlgorithm, PrivateKey)> {
    for a in KeyAlgorithm::ALL {
        match a.ecdsa_signing() {
            Some(alg) => {
                if let Ok(k) = EcdsaKeyPair::from_pkcs8(alg, der) {
                    return Some((a, PrivateKey::Ecdsa(k)));
                }
            }
            None => {
                if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                    return Some((a, PrivateKey::Ed25519(k)));
                }
            }
        }
    }
    None
}

impl StatementSigner for SigningKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProvenanceError> {
        match &self.key {
            PrivateKey::Ecdsa(k) => k
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| ProvenanceError::key("signing", "ECDSA signing failed")),
            PrivateKey::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

/// A public key: its algorithm and X.509 SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    spki: Vec<u8>,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn from_pem(text: &[u8], what: &str) -> Result<Self, ProvenanceError> {
        let block = pem::parse(text).map_err(|e| ProvenanceError::key(what, format!("not PEM: {e}")))?;
        if block.tag() != "PUBLIC KEY" {
            return Err(ProvenanceError::key(what, format!("is a `{}` PEM, not a `PUBLIC KEY`", block.tag())));
        }
        Self::from_spki(block.contents(), what)
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki(der: &[u8], what: &str) -> Result<Self, ProvenanceError> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| UnparsedPublicKey::new(a.verification(), der).parse().is_ok())
            .map(|algorithm| Self { algorithm, spki: der.to_vec() })
            .ok_or_else(|| ProvenanceError::key(what, "is not an ECDSA P-256/P-384/P-521 or Ed25519 public key"))
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The PEM form (64-column lines, `\n`), as OpenSSL and Python `cryptography` write it.
    pub fn to_pem(&self) -> String {
        pem::encode_config(&pem::Pem::new("PUBLIC KEY", self.spki.clone()), lf())
    }

    /// The OMS key hint: hex SHA-256 of [`PublicKey::to_pem`].
    pub fn hint(&self) -> String {
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.to_pem().as_bytes()))
    }

    /// Checks `sig` over `message`.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), ProvenanceError> {
        UnparsedPublicKey::new(self.algorithm.verification(), &self.spki)
            .verify(message, sig)
            .map_err(|_| ProvenanceError::BadSignature)
    }
}

fn lf() -> pem::EncodeConfig {
    pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for a in KeyAlgorithm::ALL {
            let (key, pem) = SigningKey::generate(a).unwrap();
            let reread = SigningKey::from_pem(pem.as_bytes(), "k").unwrap();
            assert_eq!(reread.public_key(), key.public_key());
            let public = PublicKey::from_pem(key.public_key().to_pem().as_bytes(), "p").unwrap();
            assert_eq!(public.algorithm(), a);
            let sig = key.sign(b"message").unwrap();
            public.verify(b"message", &sig).unwrap();
            assert!(matches!(public.verify(b"messagE", &sig), Err(ProvenanceError::BadSignature)));
        }
    }

    #[test]
    fn wrong_pem_kinds_are_named() {
        let (key, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let err = SigningKey::from_pem(key.public_key().to_pem().as_bytes(), "pub.pem").unwrap_err();
        assert!(err.to_string().contains("pub.pem") && err.to_string().contains("PUBLIC KEY"), "{err}");
        let err = PublicKey::from_pem(b"junk", "x.pem").unwrap_err();
        assert!(err.to_string().contains("not PEM"), "{err}");
        let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(SigningKey::from_pem(enc.as_bytes(), "e").unwrap_err().to_string().contains("encrypted"));
    }
}
