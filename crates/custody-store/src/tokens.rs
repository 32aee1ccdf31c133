use crate::rows::{self, micros};
use crate::{Store, StoreError};
use custody_core::{
    ApiToken, AuditDraft, AuditEvent, DatasetId, Grant, PrincipalKind, ProjectScope, Region, ResourceRef, Role,
    Timestamp, TokenId,
};
use sqlx::any::AnyRow;

/// A token as stored: its metadata and the SHA-256 (hex) of its secret.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// The metadata.
    pub token: ApiToken,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
}

/// What the store needs to create a token (the caller generated the secret and hashed it).
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Its id.
    pub id: TokenId,
    /// A label for people.
    pub name: String,
    /// The principal it authenticates as.
    pub principal: String,
    /// Person or workload.
    pub kind: PrincipalKind,
    /// The role it carries, and where.
    pub grant: Grant,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
    /// When set, the only regions it may touch.
    pub allowed_regions: Option<Vec<Region>>,
    /// When it stops working.
    pub expires_at: Option<Timestamp>,
    /// Who created it.
    pub created_by: String,
}

impl Store {
    /// Stores a new token.
    pub async fn create_token(&self, draft: AuditDraft, new: NewToken) -> Result<(ApiToken, AuditEvent), StoreError> {
        self.write(draft, move |conn, draft| {
            let new = new.clone();
            Box::pin(async move {
                let token = ApiToken {
                    id: new.id,
                    name: new.name,
                    principal: new.principal,
                    kind: new.kind,
                    grant: new.grant,
                    allowed_regions: new.allowed_regions,
                    created_by: new.created_by,
                    created_at: custody_core::now(),
                    expires_at: new.expires_at,
                    revoked_at: None,
                };
                sqlx::query(
                    "INSERT INTO api_tokens (id, name, principal, kind, scope, role, secret_hash, regions, created_by, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(token.id.to_string())
                .bind(&token.name)
                .bind(&token.principal)
                .bind(token.kind.as_str())
                .bind(token.grant.scope.to_string())
                .bind(token.grant.role.as_str())
                .bind(&new.secret_hash)
                .bind(token.allowed_regions.as_ref().map(|r| rows::to_json("regions", r)).transpose()?)
                .bind(&token.created_by)
                .bind(micros(token.created_at))
                .bind(token.expires_at.map(micros))
                .execute(&mut *conn)
                .await?;
                draft.resource = ResourceRef::new("token", token.id);
                draft.details = serde_json::json!({
                    "name": token.name, "principal": token.principal, "scope": token.grant.scope,
                    "role": token.grant.role, "expires_at": token.expires_at.map(micros),
                });
                Ok(token)
            })
        })
        .await
    }

    /// Revokes a token at once: the next request that presents it is refused.
    pub async fn revoke_token(&self, draft: AuditDraft, id: TokenId) -> Result<(ApiToken, AuditEvent), StoreError> {
        self.write_changing_facts(draft, move |conn, _draft| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(micros(custody_core::now()))
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("active token", id));
                }
                let row = sqlx::query("SELECT * FROM api_tokens WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(token_from_row(&row)?.token)
            })
        })
        .await
    }

    /// The token with `id`, revoked or not.
    pub async fn token(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query("SELECT * FROM api_tokens WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    /// The token with `id` and the restricted datasets its principal was granted, in one
    /// query (authentication runs on every request).
    pub async fn token_with_access(&self, id: TokenId) -> Result<Option<(TokenRecord, Vec<DatasetId>)>, StoreError> {
        if let Some(facts) = self.facts.token(id) {
            return Ok(Some(facts));
        }
        let ticket = self.facts.ticket();
        let found = self.token_with_access_uncached(id).await?;
        if let Some(facts) = &found {
            self.facts.put_token(ticket, id, facts.clone());
        }
        Ok(found)
    }

    async fn token_with_access_uncached(
        &self,
        id: TokenId,
    ) -> Result<Option<(TokenRecord, Vec<DatasetId>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.*, a.dataset_id AS granted FROM api_tokens t \
             LEFT JOIN dataset_access a ON a.principal = t.principal WHERE t.id = $1",
        )
        .bind(id.to_string())
        .fetch_all(&self.read)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let record = token_from_row(first)?;
        let granted = rows
            .iter()
            .filter_map(|r| rows::opt_text(r, "granted").transpose())
            .map(|g| {
                g.and_then(|g| {
                    g.parse().map_err(|e: custody_core::CoreError| StoreError::Corrupt {
                        what: "granted",
                        reason: e.to_string(),
                    })
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((record, granted)))
    }

    /// Tokens in `scope` (`None`: all), newest first.
    pub async fn tokens(&self, scope: Option<&ProjectScope>) -> Result<Vec<ApiToken>, StoreError> {
        let rows = match scope {
            Some(s) => {
                sqlx::query("SELECT * FROM api_tokens WHERE scope = $1 ORDER BY created_at DESC")
                    .bind(s.to_string())
                    .fetch_all(&self.read)
                    .await?
            }
            None => sqlx::query("SELECT * FROM api_tokens ORDER BY created_at DESC").fetch_all(&self.read).await?,
        };
        rows.iter().map(|r| token_from_row(r).map(|t| t.token)).collect()
    }

    /// Whether any token exists (a new data directory has none until bootstrap).
    pub async fn has_tokens(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM api_tokens LIMIT 1").fetch_optional(&self.read).await?.is_some())
    }
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let regions: Option<Vec<Region>> = match rows::opt_text(row, "regions")? {
        Some(s) => {
            Some(serde_json::from_str(&s).map_err(|e| StoreError::Corrupt { what: "regions", reason: e.to_string() })?)
        }
        None => None,
    };
    Ok(TokenRecord {
        token: ApiToken {
            id: rows::parsed(row, "id")?,
            name: rows::text(row, "name")?,
            principal: rows::text(row, "principal")?,
            kind: rows::parsed(row, "kind")?,
            grant: Grant {
                scope: rows::parsed::<ProjectScope>(row, "scope")?,
                role: rows::parsed::<Role>(row, "role")?,
            },
            allowed_regions: regions,
            created_by: rows::text(row, "created_by")?,
            created_at: rows::time(row, "created_at")?,
            expires_at: rows::opt_time(row, "expires_at")?,
            revoked_at: rows::opt_time(row, "revoked_at")?,
        },
        secret_hash: rows::text(row, "secret_hash")?,
    })
}
