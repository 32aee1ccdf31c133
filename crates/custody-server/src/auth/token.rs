//! API tokens: `cust_<id: 32 hex>_<secret: 43 base64url>`. The id finds the record; only the
//! SHA-256 of the secret is stored, and it is compared in constant time.

use super::AuthError;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use custody_core::{Principal, TokenId};
use custody_store::Store;
use subtle::ConstantTimeEq;

/// Every API token starts with this, so secret scanners and people can recognise one.
pub const TOKEN_PREFIX: &str = "cust_";

/// A newly generated token. `token` is shown to its holder once and never stored.
pub struct IssuedToken {
    /// The id (public).
    pub id: TokenId,
    /// The whole token string, secret included.
    pub token: String,
    /// Hex SHA-256 of the secret, which is what the store keeps.
    pub secret_hash: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("id", &self.id).field("token", &"<redacted>").finish()
    }
}

/// Generates a token with 256 random bits of secret.
pub fn issue_token() -> Result<IssuedToken, aws_lc_rs::error::Unspecified> {
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret)?;
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let id = TokenId::new();
    Ok(IssuedToken {
        id,
        token: format!("{TOKEN_PREFIX}{}_{secret}", id.as_uuid().simple()),
        secret_hash: hash_secret(&secret),
    })
}

fn hash_secret(secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

fn parse(token: &str) -> Result<(TokenId, &str), AuthError> {
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or(AuthError::Malformed("missing token prefix"))?;
    if rest.len() != 32 + 1 + 43 || !rest.is_char_boundary(32) || rest.as_bytes()[32] != b'_' {
        return Err(AuthError::Malformed("API token has the wrong length"));
    }
    let (id, secret) = (&rest[..32], &rest[33..]);
    let id = TokenId::parse(id).map_err(|_| AuthError::Malformed("API token id is not hex"))?;
    Ok((id, secret))
}

pub(super) async fn authenticate(store: &Store, token: &str) -> Result<Principal, AuthError> {
    let (id, secret) = parse(token)?;
    let presented = digest::digest(&digest::SHA256, secret.as_bytes());
    let found = store.token_with_access(id).await?;
    let (record, access) = match found {
        Some((r, a)) => (Some(r), a),
        None => (None, Vec::new()),
    };
    // Compare against a dummy hash when the id is unknown so both paths do the same work.
    let stored = record.as_ref().and_then(|r| hex::decode(&r.secret_hash).ok()).unwrap_or_else(|| vec![0; 32]);
    let matches: bool = presented.as_ref().ct_eq(stored.as_slice()).into();
    let record = match record {
        Some(r) if matches => r,
        _ => return Err(AuthError::InvalidToken),
    };
    let t = record.token;
    if t.revoked_at.is_some() {
        return Err(AuthError::Revoked);
    }
    if t.expires_at.is_some_and(|e| e <= custody_core::now()) {
        return Err(AuthError::Expired);
    }
    Ok(Principal {
        id: t.principal,
        kind: t.kind,
        grants: vec![t.grant],
        restricted_access: access,
        allowed_regions: t.allowed_regions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_parse_and_hash() {
        let t = issue_token().unwrap();
        let (id, secret) = parse(&t.token).unwrap();
        assert_eq!(id, t.id);
        assert_eq!(hash_secret(secret), t.secret_hash);
        assert!(!format!("{t:?}").contains(secret), "Debug never shows the secret");
        let other = issue_token().unwrap();
        assert_ne!(t.token, other.token);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let t = issue_token().unwrap();
        for bad in [
            "",
            "cust_",
            "cust_xyz",
            &t.token[..t.token.len() - 1],
            &format!("{}A", t.token),
            &t.token.replacen("cust_", "cusx_", 1),
            &format!("cust_{}_{}", "g".repeat(32), "a".repeat(43)),
            &format!("cust_{}é{}", "a".repeat(31), "a".repeat(43)),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
