//! The lineage graphs of every project, in memory: built on start from the stored events and
//! the project's context (the registry's datasets and versions, the transform declarations),
//! kept current by this server after each write it commits, and brought up to date before
//! every read from the store's change counts (`lineage_heads`), so a replica never answers
//! from a graph older than the last write any replica committed before the read began. The
//! count a graph reflects advances with this server's own writes while they are contiguous
//! with it, so a read after them does not read and parse them again.
//!
//! The graph's merges are commutative and idempotent, so the order events are applied in (on
//! start, after a write, catching up) never changes an answer, and applying one twice is a
//! no-op.

use custody_core::{Classification, ProjectId};
use custody_lineage::{DatasetName, Graph, JobName, TransformDeclaration, TransformKind, facts_of, parse_event};
use custody_store::{LineageHead, RegisteredDataset, Store, StoreError, StoredEvent, TransformRecord};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::RwLock;

/// The namespace of the names every registered dataset has in lineage, besides the one its
/// source URI gives it: `custody://<project>` + the dataset's name.
pub(crate) fn registry_namespace(project: &str) -> String {
    format!("custody://{project}")
}

/// The lineage names of a registered dataset: `custody://<project>/<name>`, and its source
/// URI's OpenLineage name when it has one.
pub(crate) fn lineage_names(project: &str, d: &RegisteredDataset) -> Vec<DatasetName> {
    let mut names = vec![DatasetName::new(registry_namespace(project), d.name.clone())];
    names.extend(DatasetName::from_uri(&d.source_uri));
    names
}

/// A project's graph and what it was built from.
#[derive(Default)]
struct ProjectLineage {
    graph: Graph,
    /// The change counts the graph reflects: every event up to `head.events` is in it.
    head: LineageHead,
    /// Event counts above `head.events` whose writes this server has applied, waiting for
    /// those before them (another replica's, or a concurrent write of this one).
    applied_ahead: BTreeSet<i64>,
    /// The registry's levels and digests as last applied.
    datasets: HashMap<DatasetName, (Classification, HashSet<custody_core::Sha256Digest>)>,
    /// The declarations as last applied.
    transforms: HashMap<JobName, TransformDeclaration>,
}

/// One graph per project.
#[derive(Default)]
pub(crate) struct LineageIndex {
    projects: RwLock<HashMap<ProjectId, ProjectLineage>>,
    /// One catch-up at a time: a second reader waits and then finds nothing to do.
    sync: tokio::sync::Mutex<()>,
}

/// The index could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the lineage index is poisoned")]
    Poisoned,
}

impl LineageIndex {
    /// Builds every project's graph from the store.
    pub(crate) async fn load(store: &Store) -> Result<Self, StoreError> {
        let index = Self::default();
        let mut projects: Vec<ProjectId> = store.lineage_projects().await?;
        projects.extend(store.lineage_heads().await?);
        projects.sort_by_key(|p| p.to_string());
        projects.dedup();
        for project in projects {
            match index.sync(store, project).await {
                Ok(()) => {}
                Err(IndexError::Store(e)) => return Err(e),
                Err(IndexError::Poisoned) => {}
            }
        }
        Ok(index)
    }

    /// Applies one event's facts to `project`'s graph, just after this server stored it
    /// (`None` for a duplicate, which changes nothing), and advances over the count it took.
    pub(crate) fn apply(&self, project: ProjectId, stored: StoredEvent, facts: Option<&custody_lineage::Facts>) {
        // A poisoned lock means a panic while applying; the graph may be half-updated, and
        // answering from it would be worse than refusing, so the write is skipped and logged.
        match self.projects.write() {
            Ok(mut projects) => {
                let p = projects.entry(project).or_default();
                if let Some(facts) = facts {
                    p.graph.apply(facts);
                }
                if let Some(g) = stored.generation {
                    p.applied_ahead.insert(g);
                    p.advance_events(0);
                }
            }
            Err(_) => tracing::error!(%project, "the lineage index is poisoned; the event is stored but not indexed"),
        }
    }

    /// Brings `project`'s graph up to the store's change counts: the events stored since,
    /// and the context again when it changed.
    pub(crate) async fn sync(&self, store: &Store, project: ProjectId) -> Result<(), IndexError> {
        let head = store.lineage_head(project).await?;
        if self.head(project)? == Some(head) {
            return Ok(());
        }
        let _one = self.sync.lock().await;
        let known = self.head(project)?;
        let local = known.unwrap_or_default();
        if known.is_none() || head.events > local.events {
            // Events stored before the change counts existed carry generation 0: a graph
            // built from nothing reads them all.
            let bodies = if local.events == 0 {
                store.lineage_events(project).await?
            } else {
                store.lineage_events_between(project, local.events, head.events).await?
            };
            let facts = parsed_facts(project, &bodies);
            let mut projects = self.projects.write().map_err(|_| IndexError::Poisoned)?;
            let p = projects.entry(project).or_default();
            p.graph.apply_all(facts.iter());
            p.advance_events(head.events);
        }
        if head.context > local.context {
            let (name, datasets, transforms, registry) = context(store, project).await?;
            let bodies: Vec<String> = registry.iter().map(Value::to_string).collect();
            let registry_facts = parsed_facts(project, &bodies);
            let mut projects = self.projects.write().map_err(|_| IndexError::Poisoned)?;
            let p = projects.entry(project).or_default();
            p.graph.apply_all(registry_facts.iter());
            p.apply_datasets(&name, &datasets);
            p.apply_transforms(&transforms);
            p.head.context = p.head.context.max(head.context);
        }
        Ok(())
    }

    fn head(&self, project: ProjectId) -> Result<Option<LineageHead>, IndexError> {
        let projects = self.projects.read().map_err(|_| IndexError::Poisoned)?;
        Ok(projects.get(&project).map(|p| p.head))
    }

    /// Runs `f` over `project`'s graph (an empty one if it has nothing yet); `None` if the
    /// index is poisoned. Call [`LineageIndex::sync`] first.
    pub(crate) fn read<R>(&self, project: ProjectId, f: impl FnOnce(&Graph) -> R) -> Option<R> {
        let projects = self.projects.read().ok()?;
        match projects.get(&project) {
            Some(p) => Some(f(&p.graph)),
            None => Some(f(&Graph::new())),
        }
    }
}

/// The facts of stored bodies. A stored event that no longer parses (it was accepted by an
/// older parser) is logged and left out rather than keeping the server from starting.
fn parsed_facts(project: ProjectId, bodies: &[String]) -> Vec<custody_lineage::Facts> {
    let mut facts = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.iter().enumerate() {
        match parse_event(body.as_bytes()) {
            Ok(parsed) => facts.push(facts_of(&parsed.event)),
            Err(e) => tracing::error!(%project, event = i, error = %e, "a stored lineage event no longer parses"),
        }
    }
    facts
}

type Context = (String, Vec<RegisteredDataset>, Vec<TransformRecord>, Vec<Value>);

/// What the graph reads besides events: registered datasets, transform declarations, and the
/// model registry's versions and deployments as the events they stand for.
async fn context(store: &Store, project: ProjectId) -> Result<Context, StoreError> {
    let p = store.project_by_id(project).await?;
    let name = p.name.to_string();
    let datasets = store.registered_datasets(project).await?;
    let mut registry = Vec::new();
    for m in store.models(&p).await? {
        let versions = store.model_versions(m.id).await?;
        let deployments = store.deployments(m.id).await?;
        registry.extend(crate::lineage_registry::model_events(&name, &datasets, &versions, &deployments));
    }
    Ok((name, datasets, store.transforms(project).await?, registry))
}

/// The declaration a stored record stands for (an unknown kind, impossible through the API,
/// counts as not approved: it never stops inheritance).
pub(crate) fn declaration_of(t: &TransformRecord) -> (JobName, TransformDeclaration) {
    let kind = match t.kind.as_str() {
        "aggregating" => Some(TransformKind::Aggregating),
        "anonymizing" => Some(TransformKind::Anonymizing),
        _ => None,
    };
    let declaration = TransformDeclaration {
        kind: kind.unwrap_or(TransformKind::Anonymizing),
        approval: None,
        approved: kind.is_some() && t.approved_by.is_some(),
        justification: t.justification.clone(),
    };
    (JobName::new(t.job_namespace.clone(), t.job_name.clone()), declaration)
}

impl ProjectLineage {
    /// Moves the event count to `caught_up` (every event up to it was applied) if that is
    /// ahead, then over the counts applied since that follow on without a gap.
    fn advance_events(&mut self, caught_up: i64) {
        self.head.events = self.head.events.max(caught_up);
        let head = self.head.events;
        self.applied_ahead.retain(|g| *g > head);
        while self.applied_ahead.remove(&(self.head.events + 1)) {
            self.head.events += 1;
        }
    }

    /// Registers what changed since the last time (a propagation per changed level).
    fn apply_datasets(&mut self, project: &str, datasets: &[RegisteredDataset]) {
        let mut levels = Vec::new();
        for d in datasets {
            let digests: HashSet<_> = d.versions.iter().map(|(_, digest)| *digest).collect();
            for name in lineage_names(project, d) {
                let known = self.datasets.entry(name.clone()).or_insert((d.classification, HashSet::new()));
                if known.0 != d.classification || !self.graph.is_registered(&name) {
                    levels.push((name.clone(), d.classification));
                }
                for digest in digests.difference(&known.1) {
                    self.graph.register_dataset_version(&name, *digest);
                }
                *known = (d.classification, digests.clone());
            }
        }
        if !levels.is_empty() {
            self.graph.register_datasets(levels);
        }
    }

    /// Sets the declarations that changed and withdraws those that are gone.
    fn apply_transforms(&mut self, transforms: &[TransformRecord]) {
        let now: HashMap<JobName, TransformDeclaration> = transforms.iter().map(declaration_of).collect();
        let gone: Vec<JobName> = self.transforms.keys().filter(|j| !now.contains_key(*j)).cloned().collect();
        for job in gone {
            self.graph.set_transform(&job, None);
        }
        for (job, d) in &now {
            if self.transforms.get(job) != Some(d) {
                self.graph.set_transform(job, Some(d.clone()));
            }
        }
        self.transforms = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(applied: &[i64], caught_up: i64) -> (i64, Vec<i64>) {
        let mut p = ProjectLineage::default();
        for g in applied {
            p.applied_ahead.insert(*g);
            p.advance_events(0);
        }
        p.advance_events(caught_up);
        (p.head.events, p.applied_ahead.iter().copied().collect())
    }

    #[test]
    fn the_event_count_advances_only_over_counts_without_a_gap() {
        // In order, out of order, with a gap another replica's write left, then caught up.
        assert_eq!(counted(&[1, 2, 3], 0), (3, vec![]));
        assert_eq!(counted(&[3, 1, 2], 0), (3, vec![]));
        assert_eq!(counted(&[1, 3, 4], 0), (1, vec![3, 4]));
        assert_eq!(counted(&[1, 3, 4], 2), (4, vec![]));
        assert_eq!(counted(&[1, 3, 6], 4), (4, vec![6]));
        // A count at or below what was caught up to changes nothing.
        assert_eq!(counted(&[2], 5), (5, vec![]));
    }
}
