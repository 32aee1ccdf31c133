//! Conversions between stored columns and domain values.

use crate::{Backend, StoreError};
use custody_core::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Microseconds since the Unix epoch, as stored.
pub(crate) fn micros(t: Timestamp) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_micros(what: &'static str, v: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_timestamp_nanos(i128::from(v) * 1_000)
        .map_err(|e| StoreError::Corrupt { what, reason: e.to_string() })
}

pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String, StoreError> {
    Ok(row.try_get::<String, _>(col)?)
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

/// A hex SHA-256 hash as stored; `what` names it in the error.
pub(crate) fn parse_hash(what: &'static str, text: &str) -> Result<custody_audit::Hash, StoreError> {
    let bytes = hex::decode(text).map_err(|e| StoreError::Corrupt { what, reason: e.to_string() })?;
    custody_audit::hash_from_slice(&bytes).map_err(|e| StoreError::Corrupt { what, reason: e.to_string() })
}

pub(crate) fn hash(row: &AnyRow, col: &'static str) -> Result<custody_audit::Hash, StoreError> {
    parse_hash(col, &text(row, col)?)
}

pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(crate) fn time(row: &AnyRow, col: &'static str) -> Result<Timestamp, StoreError> {
    from_micros(col, int(row, col)?)
}

pub(crate) fn opt_time(row: &AnyRow, col: &'static str) -> Result<Option<Timestamp>, StoreError> {
    row.try_get::<Option<i64>, _>(col)?.map(|v| from_micros(col, v)).transpose()
}

/// Parses a stored string with the domain type's own parser.
pub(crate) fn parsed<T>(row: &AnyRow, col: &'static str) -> Result<T, StoreError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let s = text(row, col)?;
    s.parse().map_err(|e: T::Err| StoreError::Corrupt { what: col, reason: e.to_string() })
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &'static str) -> Result<T, StoreError> {
    let s = text(row, col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt { what: col, reason: e.to_string() })
}

pub(crate) fn to_json<T: serde::Serialize>(what: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt { what, reason: e.to_string() })
}

/// The VALUES list of a multi-row INSERT of `rows` rows of `columns` parameters. SQLite's are
/// positional (`?`): sqlx looks a named one up by name, which costs time quadratic in their
/// number (measured: 100 rows of 13 named ones spent two thirds of the append time naming
/// them).
pub(crate) fn values_list(backend: Backend, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 4);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ",(" });
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(r * columns + c + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}
