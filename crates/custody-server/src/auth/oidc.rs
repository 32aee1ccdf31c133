//! OIDC bearer JWTs, checked against the issuer's JWKS (fetched over HTTP, cached, and
//! refetched when a token names a key the cache does not have, at most every 30 seconds).

use super::AuthError;
use crate::config::OidcConfig;
use custody_core::{Grant, Principal, PrincipalKind, ProjectScope, Role};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

const MIN_REFETCH: Duration = Duration::from_secs(30);
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Validates JWTs from one issuer.
#[derive(Clone)]
pub struct OidcVerifier {
    config: Arc<OidcConfig>,
    http: reqwest::Client,
    keys: Arc<RwLock<Cache>>,
}

struct Cache {
    set: JwkSet,
    fetched: Option<Instant>,
}

impl OidcVerifier {
    /// A verifier for `config`. Keys are fetched on first use.
    pub fn new(config: OidcConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self {
            config: Arc::new(config),
            http,
            keys: Arc::new(RwLock::new(Cache { set: JwkSet { keys: vec![] }, fetched: None })),
        })
    }

    /// Validates `jwt` (signature, `iss`, `aud`, `exp`, `nbf`) and maps its claims to a
    /// principal: `sub` is the id, the roles claim gives the grants.
    pub async fn verify(&self, jwt: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|e| AuthError::InvalidJwt(e.to_string()))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(AuthError::InvalidJwt(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| AuthError::InvalidJwt("the header has no `kid`".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway_secs;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(jwt, &key, &validation)
            .map_err(|e| AuthError::InvalidJwt(e.to_string()))?;
        principal_from_claims(&data.claims, &self.config.roles_claim)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let cache = self.keys.read().await;
            if let Some(jwk) = cache.set.find(kid) {
                return DecodingKey::from_jwk(jwk).map_err(|e| AuthError::InvalidJwt(e.to_string()));
            }
            if cache.fetched.is_some_and(|t| t.elapsed() < MIN_REFETCH) {
                return Err(AuthError::InvalidJwt(format!("no key `{kid}` in the issuer's JWKS")));
            }
        }
        let mut cache = self.keys.write().await;
        if cache.set.find(kid).is_none() && cache.fetched.is_none_or(|t| t.elapsed() >= MIN_REFETCH) {
            cache.fetched = Some(Instant::now());
            cache.set = self.fetch().await?;
        }
        let jwk =
            cache.set.find(kid).ok_or_else(|| AuthError::InvalidJwt(format!("no key `{kid}` in the issuer's JWKS")))?;
        DecodingKey::from_jwk(jwk).map_err(|e| AuthError::InvalidJwt(e.to_string()))
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let url = match &self.config.jwks_url {
            Some(url) => url.clone(),
            None => {
                let discovery =
                    format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                let doc: serde_json::Value = self.get_json(&discovery).await?;
                doc.get("jwks_uri").and_then(|v| v.as_str()).map(str::to_owned).ok_or(AuthError::JwksUnavailable)?
            }
        };
        self.get_json(&url).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, AuthError> {
        let resp = self.http.get(url).send().await.and_then(|r| r.error_for_status()).map_err(|e| {
            tracing::warn!(error = %e, url, "fetching OIDC keys failed");
            AuthError::JwksUnavailable
        })?;
        resp.json().await.map_err(|e| {
            tracing::warn!(error = %e, url, "OIDC keys are not valid JSON");
            AuthError::JwksUnavailable
        })
    }
}

fn principal_from_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    roles_claim: &str,
) -> Result<Principal, AuthError> {
    let sub = claims
        .get("sub")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| AuthError::InvalidJwt("`sub` must be a non-empty string".into()))?;
    let mut grants = Vec::new();
    if let Some(roles) = claims.get(roles_claim) {
        let roles =
            roles.as_array().ok_or_else(|| AuthError::InvalidJwt(format!("`{roles_claim}` must be an array")))?;
        for r in roles {
            let r =
                r.as_str().ok_or_else(|| AuthError::InvalidJwt(format!("`{roles_claim}` entries must be strings")))?;
            let (scope, role) = r.split_once(':').ok_or_else(|| {
                AuthError::InvalidJwt(format!("`{roles_claim}` entry `{r}` is not `<project>:<role>`"))
            })?;
            let scope = ProjectScope::parse(scope).map_err(|e| AuthError::InvalidJwt(e.to_string()))?;
            let role: Role = role.parse().map_err(|e: custody_core::CoreError| AuthError::InvalidJwt(e.to_string()))?;
            grants.push(Grant { scope, role });
        }
    }
    Ok(Principal {
        id: format!("oidc:{sub}"),
        kind: PrincipalKind::User,
        grants,
        restricted_access: Vec::new(),
        allowed_regions: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_to_principal() {
        let claims = serde_json::json!({"sub": "u1", "custody_roles": ["fraud:viewer", "*:auditor"]});
        let p = principal_from_claims(claims.as_object().unwrap(), "custody_roles").unwrap();
        assert_eq!(p.id, "oidc:u1");
        assert_eq!(p.grants.len(), 2);
        assert_eq!(p.grants[1].scope, ProjectScope::All);
        for bad in [
            serde_json::json!({"custody_roles": []}),
            serde_json::json!({"sub": "u", "custody_roles": "fraud:viewer"}),
            serde_json::json!({"sub": "u", "custody_roles": ["fraud"]}),
            serde_json::json!({"sub": "u", "custody_roles": ["fraud:king"]}),
        ] {
            assert!(principal_from_claims(bad.as_object().unwrap(), "custody_roles").is_err(), "{bad}");
        }
    }
}
