//! The lineage graphs of every project, in memory: rebuilt from the stored events on start,
//! updated after each stored event commits. The graph's merges are commutative and
//! idempotent, so the order events are applied in (on start, or as replicas receive them)
//! never changes an answer.

use custody_core::ProjectId;
use custody_lineage::{Graph, facts_of, parse_event};
use custody_store::Store;
use std::collections::HashMap;
use std::sync::RwLock;

/// One graph per project.
#[derive(Default)]
pub(crate) struct LineageIndex {
    graphs: RwLock<HashMap<ProjectId, Graph>>,
}

impl LineageIndex {
    /// Reads every project's events and builds its graph. A stored event that no longer
    /// parses (it was accepted by an older parser) is logged with its position and left out,
    /// rather than keeping the server from starting.
    pub(crate) async fn load(store: &Store) -> Result<Self, custody_store::StoreError> {
        let mut graphs = HashMap::new();
        for project in store.lineage_projects().await? {
            let bodies = store.lineage_events(project).await?;
            let mut facts = Vec::with_capacity(bodies.len());
            for (i, body) in bodies.iter().enumerate() {
                match parse_event(body.as_bytes()) {
                    Ok(parsed) => facts.push(facts_of(&parsed.event)),
                    Err(e) => {
                        tracing::error!(%project, event = i, error = %e, "a stored lineage event no longer parses")
                    }
                }
            }
            let mut graph = Graph::new();
            graph.apply_all(facts.iter());
            graphs.insert(project, graph);
        }
        Ok(Self { graphs: RwLock::new(graphs) })
    }

    /// Applies one event's facts to `project`'s graph.
    pub(crate) fn apply(&self, project: ProjectId, facts: &custody_lineage::Facts) {
        // A poisoned lock means a panic while applying; the graph may be half-updated, and
        // answering from it would be worse than refusing, so the write is skipped and logged.
        match self.graphs.write() {
            Ok(mut graphs) => {
                graphs.entry(project).or_default().apply(facts);
            }
            Err(_) => tracing::error!(%project, "the lineage index is poisoned; the event is stored but not indexed"),
        }
    }

    /// Runs `f` over `project`'s graph (an empty one if it has no events yet); `None` if the
    /// index is poisoned.
    pub(crate) fn read<R>(&self, project: ProjectId, f: impl FnOnce(&Graph) -> R) -> Option<R> {
        let graphs = self.graphs.read().ok()?;
        match graphs.get(&project) {
            Some(g) => Some(f(g)),
            None => Some(f(&Graph::new())),
        }
    }
}
