use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A SHA-256 content digest, written `sha256:<64 lower-case hex digits>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// Wraps 32 raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses `sha256:<hex>`; a bare 64-digit hex string is accepted too.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let hex_part = s.strip_prefix("sha256:").unwrap_or(s);
        if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(CoreError::invalid(
                "digest",
                format!("`{s}` is not `sha256:` followed by 64 lower-case hex digits"),
            ));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|e| CoreError::invalid("digest", e.to_string()))?;
        Ok(Self(out))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

crate::string_conversions!(Sha256Digest, Sha256Digest::parse);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_malformed() {
        for bad in
            ["", "sha256:", "sha256:xyz", &format!("sha256:{}", "A".repeat(64)), &format!("md5:{}", "a".repeat(64))]
        {
            assert!(Sha256Digest::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn roundtrip(bytes in proptest::array::uniform32(any::<u8>())) {
            let d = Sha256Digest::from_bytes(bytes);
            prop_assert_eq!(Sha256Digest::parse(&d.to_string()).unwrap(), d);
        }
    }
}
