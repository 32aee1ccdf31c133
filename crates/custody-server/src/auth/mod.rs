//! Authentication: who is calling. API tokens (`cust_…`) and OIDC bearer JWTs.

mod oidc;
mod token;

pub use oidc::OidcVerifier;
pub use token::{IssuedToken, TOKEN_PREFIX, issue_token};

use custody_core::Principal;
use custody_store::Store;

/// Why a caller was not authenticated. Messages never echo the credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing `Authorization: Bearer` header")]
    Missing,
    /// The header or token is not well-formed.
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    /// No such token, or the secret does not match.
    #[error("unknown or invalid API token")]
    InvalidToken,
    /// The token was revoked.
    #[error("the API token was revoked")]
    Revoked,
    /// The token has expired.
    #[error("the API token has expired")]
    Expired,
    /// A JWT was presented but no OIDC issuer is configured.
    #[error("OIDC tokens are not accepted: no issuer is configured")]
    OidcDisabled,
    /// The JWT failed validation.
    #[error("invalid OIDC token: {0}")]
    InvalidJwt(String),
    /// The JWKS could not be fetched.
    #[error("the issuer's keys are unavailable")]
    JwksUnavailable,
    /// The store failed while checking the token.
    #[error("credential store unavailable")]
    Store(#[from] custody_store::StoreError),
}

/// Turns a bearer credential into a [`Principal`].
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    oidc: Option<OidcVerifier>,
}

impl Authenticator {
    /// Authenticates against tokens in `store`, and JWTs of `oidc` when given.
    pub fn new(store: Store, oidc: Option<OidcVerifier>) -> Self {
        Self { store, oidc }
    }

    /// Authenticates the value of an `Authorization` header.
    pub async fn authenticate(&self, header: Option<&[u8]>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let header = std::str::from_utf8(header).map_err(|_| AuthError::Malformed("header is not UTF-8"))?;
        let (scheme, credential) = header.split_once(' ').ok_or(AuthError::Malformed("expected `Bearer <token>`"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed("only the Bearer scheme is accepted"));
        }
        let credential = credential.trim();
        if credential.starts_with(TOKEN_PREFIX) {
            token::authenticate(&self.store, credential).await
        } else if credential.split('.').count() == 3 {
            let oidc = self.oidc.as_ref().ok_or(AuthError::OidcDisabled)?;
            let mut principal = oidc.verify(credential).await?;
            principal.restricted_access = self.store.access_of(&principal.id).await?;
            Ok(principal)
        } else {
            Err(AuthError::Malformed("neither an API token nor a JWT"))
        }
    }
}
