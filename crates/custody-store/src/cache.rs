//! The authorization-facts cache: token records (with their grants) and datasets, the two
//! lookups every authorized request makes before it can be decided.
//!
//! Correctness rests on three rules:
//! - Every write that changes a cached fact (token revocation, a grant or its removal, a
//!   classification change, a restricted registration) goes through
//!   [`Store::write_changing_facts`](crate::Store): after its commit the local cache is
//!   cleared, and on PostgreSQL the same transaction sends `NOTIFY custody_facts`, which
//!   clears the cache of every other replica when it commits.
//! - A value read from the database is cached only if no invalidation happened since the
//!   read began (a generation counter), so a read racing a write cannot put back what the
//!   write replaced.
//! - On PostgreSQL the cache is bypassed whenever the replica is not listening for
//!   notifications (before the listener is up, after it loses its connection), because an
//!   invalidation it missed would otherwise leave a revoked token usable.
//! - On SQLite there are no notifications: the cache is on only for a database file this
//!   process owns (`owner.rs`: an exclusive lock, a second process refused), with one cache
//!   shared by every store of the process on that file. An in-memory database never caches.
//!
//! Entries also expire after [`MAX_AGE`] and the cache is cleared when full, so memory stays
//! bounded and a fact cannot outlive a missed invalidation for long even in theory.

use crate::tokens::TokenRecord;
use custody_core::{Dataset, DatasetId, TokenId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cached fact may be served.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(30);
/// Entries of each kind kept before the cache starts over.
const MAX_ENTRIES: usize = 65_536;
/// The PostgreSQL notification channel for invalidations.
pub(crate) const CHANNEL: &str = "custody_facts";

pub(crate) type TokenFacts = (TokenRecord, Vec<DatasetId>);

#[derive(Default)]
struct Entries {
    /// Bumped by every invalidation; `None` while the cache is off.
    generation: Option<u64>,
    next_generation: u64,
    tokens: HashMap<TokenId, (Instant, TokenFacts)>,
    datasets: HashMap<DatasetId, (Instant, Dataset)>,
}

/// A ticket taken before a database read: the value read may be cached only if the
/// generation is unchanged when it is offered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(Option<u64>);

pub(crate) struct FactsCache {
    entries: Mutex<Entries>,
}

impl FactsCache {
    pub(crate) fn is_on(&self) -> bool {
        self.lock().generation.is_some()
    }

    pub(crate) fn new(on: bool) -> Self {
        let cache = Self { entries: Mutex::new(Entries::default()) };
        cache.set_on(on);
        cache
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the maps inconsistent with the database
        // (they only ever hold committed values), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Turns the cache on or off; either way everything cached so far is dropped.
    pub(crate) fn set_on(&self, on: bool) {
        self.lock().restart(on);
    }

    /// Drops every cached fact; reads in flight will not cache what they read.
    pub(crate) fn invalidate(&self) {
        let mut e = self.lock();
        let on = e.generation.is_some();
        e.restart(on);
    }

    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    pub(crate) fn token(&self, id: TokenId) -> Option<TokenFacts> {
        let e = self.lock();
        e.generation.and_then(|_| fresh(&e.tokens, &id))
    }

    pub(crate) fn put_token(&self, ticket: Ticket, id: TokenId, facts: TokenFacts) {
        let mut e = self.lock();
        if e.accepts(ticket) {
            put(&mut e.tokens, id, facts);
        }
    }

    pub(crate) fn dataset(&self, id: DatasetId) -> Option<Dataset> {
        let e = self.lock();
        e.generation.and_then(|_| fresh(&e.datasets, &id))
    }

    pub(crate) fn put_dataset(&self, ticket: Ticket, dataset: Dataset) {
        let mut e = self.lock();
        if e.accepts(ticket) {
            put(&mut e.datasets, dataset.id, dataset);
        }
    }
}

impl Entries {
    /// A new generation (or none, when off), with nothing cached.
    fn restart(&mut self, on: bool) {
        self.next_generation += 1;
        self.generation = on.then_some(self.next_generation);
        self.tokens.clear();
        self.datasets.clear();
    }

    /// Whether a value read under `ticket` may be cached: on, and nothing invalidated since.
    fn accepts(&self, ticket: Ticket) -> bool {
        ticket.0.is_some() && self.generation == ticket.0
    }
}

fn fresh<K: std::hash::Hash + Eq, V: Clone>(map: &HashMap<K, (Instant, V)>, key: &K) -> Option<V> {
    map.get(key).filter(|(at, _)| at.elapsed() < MAX_AGE).map(|(_, v)| v.clone())
}

fn put<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, (Instant, V)>, key: K, value: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, (Instant::now(), value));
}

/// Keeps `cache` on only while this replica hears every invalidation: listens on
/// [`CHANNEL`], clears the cache on each notification, and turns it off (and reconnects)
/// whenever the listening connection fails.
pub(crate) async fn listen(url: String, cache: std::sync::Arc<FactsCache>) {
    let mut delay = Duration::from_millis(100);
    loop {
        cache.set_on(false);
        match subscribe(&url).await {
            Ok(mut listener) => {
                delay = Duration::from_millis(100);
                cache.set_on(true);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => cache.invalidate(),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "invalidation listener failed; cache off until it reconnects");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for invalidations; cache off");
            }
        }
        cache.set_on(false);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset() -> Dataset {
        serde_json::from_value(serde_json::json!({
            "id": DatasetId::new(), "project_id": custody_core::ProjectId::new(), "project": "p", "name": "d",
            "owner": "o", "licence": "l", "source_uri": "s3://b", "classification": "internal",
            "region": "eu-west-1", "retention": "30d", "intended_use": [], "prohibited_use": [],
            "created_by": "o", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_cached() {
        let cache = FactsCache::new(true);
        let d = dataset();
        let ticket = cache.ticket();
        cache.invalidate();
        cache.put_dataset(ticket, d.clone());
        assert!(cache.dataset(d.id).is_none());
        cache.put_dataset(cache.ticket(), d.clone());
        assert_eq!(cache.dataset(d.id).map(|c| c.id), Some(d.id));
        cache.invalidate();
        assert!(cache.dataset(d.id).is_none());
    }

    #[test]
    fn an_off_cache_serves_and_keeps_nothing() {
        let cache = FactsCache::new(false);
        let d = dataset();
        cache.put_dataset(cache.ticket(), d.clone());
        assert!(cache.dataset(d.id).is_none());
        cache.set_on(true);
        let ticket = cache.ticket();
        cache.set_on(false);
        cache.set_on(true);
        cache.put_dataset(ticket, d.clone());
        assert!(cache.dataset(d.id).is_none(), "a ticket from before an off period is stale");
    }
}
