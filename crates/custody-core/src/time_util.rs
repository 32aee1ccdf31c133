use time::OffsetDateTime;

/// A UTC instant, serialised as RFC 3339.
pub type Timestamp = OffsetDateTime;

/// The current UTC time, truncated to microseconds (the precision every store keeps).
pub fn now() -> Timestamp {
    let t = OffsetDateTime::now_utc();
    let micros = t.unix_timestamp_nanos() / 1_000 * 1_000;
    OffsetDateTime::from_unix_timestamp_nanos(micros).unwrap_or(t)
}
