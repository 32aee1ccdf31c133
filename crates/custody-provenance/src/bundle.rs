//! Sigstore bundle v0.3 holding a DSSE envelope over an in-toto statement, signed with a key
//! (no certificate, no transparency log): the form OMS key signing writes.

use crate::ProvenanceError;
use crate::keys::{PublicKey, StatementSigner};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::{Deserialize, Serialize};

/// The bundle media type written and required.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The equivalent spelling of the v0.3 media type that Sigstore clients also accept.
const BUNDLE_MEDIA_TYPE_ALT: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";
/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto statement type.
pub const IN_TOTO_STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// A Sigstore bundle (only the parts key signing uses; other fields are ignored on read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Must be [`BUNDLE_MEDIA_TYPE`].
    pub media_type: String,
    /// The key hint.
    pub verification_material: VerificationMaterial,
    /// The signed statement.
    pub dsse_envelope: Envelope,
}

/// How a verifier finds the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// The public key's hint; absent in certificate bundles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyIdentifier>,
    /// Transparency log entries (none for key signing; kept for the format).
    #[serde(default)]
    pub tlog_entries: Vec<serde_json::Value>,
    /// Present in certificate bundles, which this verifier does not take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<serde_json::Value>,
    /// Present in older certificate bundles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<serde_json::Value>,
}

/// `publicKey.hint`: hex SHA-256 of the PEM public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyIdentifier {
    /// The hint (older bundles have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Base64 of the statement bytes.
    pub payload: String,
    /// Must be [`IN_TOTO_PAYLOAD_TYPE`].
    pub payload_type: String,
    /// At least one.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Base64 of the raw signature.
    pub sig: String,
    /// Unused by key signing (empty).
    #[serde(default)]
    pub keyid: String,
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The encoding model_signing 0.2 signed by mistake (the body written as Python `repr` of
/// bytes, and `DSSEV1`); verifiers accept it for signatures made then.
fn pae_compat(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    format!("DSSEV1 {} {} {} {}", payload_type.len(), payload_type, payload.len(), python_bytes_repr(payload))
        .into_bytes()
}

/// Python's `repr(bytes)`: `b'...'` with escapes (quotes chosen as Python does).
fn python_bytes_repr(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') { '"' } else { '\'' };
    let mut out = String::with_capacity(data.len() + 3);
    out.push('b');
    out.push(quote);
    for &b in data {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if char::from(b) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

impl Bundle {
    /// Signs `statement` (in-toto JSON bytes) into a bundle.
    pub fn sign(statement: &[u8], signer: &dyn StatementSigner) -> Result<Self, ProvenanceError> {
        let sig = signer.sign(&Self::signing_input(statement))?;
        Ok(Self::assemble(statement, signer.public_key(), sig))
    }

    /// The bytes a signer signs for `statement`: the DSSE pre-authentication encoding of
    /// the in-toto payload. For keys held by a service that signs asynchronously.
    pub fn signing_input(statement: &[u8]) -> Vec<u8> {
        pae(IN_TOTO_PAYLOAD_TYPE, statement)
    }

    /// A bundle from a signature made elsewhere over [`Bundle::signing_input`]; the signature
    /// is checked under `key` first, so a wrong answer from a key service never becomes a
    /// bundle.
    pub fn from_signature(statement: &[u8], key: &PublicKey, sig: Vec<u8>) -> Result<Self, ProvenanceError> {
        key.verify(&Self::signing_input(statement), &sig)?;
        Ok(Self::assemble(statement, key, sig))
    }

    fn assemble(statement: &[u8], key: &PublicKey, sig: Vec<u8>) -> Self {
        Self {
            media_type: BUNDLE_MEDIA_TYPE.to_owned(),
            verification_material: VerificationMaterial {
                public_key: Some(PublicKeyIdentifier { hint: Some(key.hint()) }),
                tlog_entries: Vec::new(),
                certificate: None,
                x509_certificate_chain: None,
            },
            dsse_envelope: Envelope {
                payload: STANDARD.encode(statement),
                payload_type: IN_TOTO_PAYLOAD_TYPE.to_owned(),
                signatures: vec![EnvelopeSignature { sig: STANDARD.encode(sig), keyid: String::new() }],
            },
        }
    }

    /// Parses a bundle, naming the field at fault.
    pub fn from_json(text: &[u8]) -> Result<Self, ProvenanceError> {
        let de = &mut serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            ProvenanceError::bundle(if field == "." { "(document)".to_owned() } else { field }, e.inner().to_string())
        })
    }

    /// The bundle as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the media type, the key hint, the payload type and a signature by `key`;
    /// returns the signed statement bytes.
    pub fn open(&self, key: &PublicKey) -> Result<Vec<u8>, ProvenanceError> {
        if self.media_type != BUNDLE_MEDIA_TYPE && self.media_type != BUNDLE_MEDIA_TYPE_ALT {
            return Err(ProvenanceError::bundle(
                "mediaType",
                format!("`{}` is not `{BUNDLE_MEDIA_TYPE}`", self.media_type),
            ));
        }
        let material = &self.verification_material;
        if material.certificate.is_some() || material.x509_certificate_chain.is_some() {
            return Err(ProvenanceError::bundle(
                "verificationMaterial",
                "holds a certificate; this bundle was signed with Sigstore or a certificate, not a key",
            ));
        }
        if let Some(hint) = material.public_key.as_ref().and_then(|k| k.hint.as_deref()) {
            let key_hint = key.hint();
            if hint != key_hint {
                return Err(ProvenanceError::KeyMismatch { bundle_hint: hint.to_owned(), key_hint });
            }
        }
        let envelope = &self.dsse_envelope;
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(ProvenanceError::bundle(
                "dsseEnvelope.payloadType",
                format!("`{}` is not `{IN_TOTO_PAYLOAD_TYPE}`", envelope.payload_type),
            ));
        }
        let payload = decode_base64(&envelope.payload, "dsseEnvelope.payload")?;
        if envelope.signatures.is_empty() {
            return Err(ProvenanceError::bundle("dsseEnvelope.signatures", "is empty"));
        }
        let message = pae(&envelope.payload_type, &payload);
        let mut compat = None;
        for (i, s) in envelope.signatures.iter().enumerate() {
            let sig = decode_base64(&s.sig, &format!("dsseEnvelope.signatures[{i}].sig"))?;
            if key.verify(&message, &sig).is_ok()
                || key.verify(compat.get_or_insert_with(|| pae_compat(&envelope.payload_type, &payload)), &sig).is_ok()
            {
                return Ok(payload);
            }
        }
        Err(ProvenanceError::BadSignature)
    }
}

fn decode_base64(text: &str, field: &str) -> Result<Vec<u8>, ProvenanceError> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|e| ProvenanceError::bundle(field, format!("is not base64: {e}")))
}

/// An in-toto subject or resource descriptor: a name and its digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The name.
    pub name: String,
    /// Algorithm → lower-case hex.
    pub digest: std::collections::BTreeMap<String, String>,
}

/// The envelope of every in-toto statement, with the predicate left as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement<P> {
    /// Must be [`IN_TOTO_STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// The predicate's type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: P,
}

impl<P: serde::de::DeserializeOwned> Statement<P> {
    /// Parses statement bytes, checking `_type`; the error names the field at fault.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProvenanceError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let statement: Self = serde_path_to_error::deserialize(de)
            .map_err(|e| ProvenanceError::bundle(format!("statement.{}", e.path()), e.inner().to_string()))?;
        if statement.statement_type != IN_TOTO_STATEMENT_TYPE {
            return Err(ProvenanceError::bundle(
                "statement._type",
                format!("`{}` is not `{IN_TOTO_STATEMENT_TYPE}`", statement.statement_type),
            ));
        }
        Ok(statement)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::keys::{KeyAlgorithm, SigningKey};

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn python_repr_of_bytes() {
        assert_eq!(python_bytes_repr(b"{\"a\": 1}\n"), "b'{\"a\": 1}\\n'");
        assert_eq!(python_bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(python_bytes_repr(b"'\""), "b'\\'\"'");
        assert_eq!(python_bytes_repr(&[0, 0xff, b'\\']), "b'\\x00\\xff\\\\'");
    }

    #[test]
    fn sign_open_and_refuse() {
        let (key, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let (other, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let bundle = Bundle::sign(b"{}", &key).unwrap();
        let reread = Bundle::from_json(bundle.to_json().as_bytes()).unwrap();
        assert_eq!(reread.open(key.public_key()).unwrap(), b"{}");
        assert!(matches!(reread.open(other.public_key()), Err(ProvenanceError::KeyMismatch { .. })));

        let mut no_hint = reread.clone();
        no_hint.verification_material.public_key = None;
        assert!(matches!(no_hint.open(other.public_key()), Err(ProvenanceError::BadSignature)));

        let mut media = reread.clone();
        media.media_type = "application/vnd.dev.sigstore.bundle.v0.2+json".into();
        assert!(media.open(key.public_key()).unwrap_err().to_string().contains("mediaType"));

        let mut ptype = reread.clone();
        ptype.dsse_envelope.payload_type = "text/plain".into();
        assert!(ptype.open(key.public_key()).unwrap_err().to_string().contains("payloadType"));

        let mut payload = reread;
        payload.dsse_envelope.payload = STANDARD.encode(b"[]");
        assert!(matches!(payload.open(key.public_key()), Err(ProvenanceError::BadSignature)));
    }

    #[test]
    fn malformed_bundles_name_the_field() {
        let err = Bundle::from_json(br#"{"mediaType":1}"#).unwrap_err().to_string();
        assert!(err.contains("mediaType"), "{err}");
        let err = Bundle::from_json(br#"{"mediaType":"x","verificationMaterial":{},"dsseEnvelope":{"payload":"","payloadType":"t","signatures":[{"sig":5}]}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dsseEnvelope.signatures[0].sig"), "{err}");
    }
}
