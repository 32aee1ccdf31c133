//! OpenLineage ingest model and lineage graph of Custody. Pure: no I/O, no async, no
//! database. The server parses a body with [`parse_event`], stores the raw JSON and the
//! [`Event`], turns it into [`Facts`] with [`facts_of`], and applies them to the in-memory
//! [`Graph`], which answers lineage, impact, training-provenance, classification, erasure
//! and completeness queries.
//!
//! ```
//! use custody_lineage::{facts_of, parse_event, Graph, NodeKey, Query, VersionRef};
//! let body = br#"{"eventTime":"2024-05-01T10:00:00Z","eventType":"COMPLETE",
//!   "producer":"https://example.com/p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json",
//!   "run":{"runId":"0190c3a4-1b2c-7d3e-8f40-123456789abc"},"job":{"namespace":"etl","name":"clean"},
//!   "inputs":[{"namespace":"s3://raw","name":"users","facets":{"version":{"datasetVersion":"7"}}}],
//!   "outputs":[{"namespace":"s3://clean","name":"users"}]}"#;
//! let event = parse_event(body).unwrap().event;
//! let mut graph = Graph::new();
//! graph.apply(&facts_of(&event));
//! let raw = NodeKey::version("s3://raw", "users", VersionRef::Declared("7".into()));
//! let impact = graph.impact(&raw, &Query::all()).unwrap();
//! assert_eq!(impact.datasets.len(), 1);
//! ```

mod adjacency;
mod erasure;
mod error;
mod event;
mod event_id;
mod facets;
mod facts;
mod graph;
mod impact;
mod json;
mod keys;
mod kpi;
mod propagation;
mod query;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use erasure::{ErasureItem, ErasureReport, SuggestedAction};
pub use error::{EventError, FacetWarning, GraphError};
pub use event::{
    Dataset, DatasetEvent, Event, EventBody, EventType, InputDataset, Job, JobEvent, OutputDataset, ParsedEvent, Run,
    RunEvent, event_from_value, micros, parse_event,
};
pub use event_id::EventId;
pub use facets::{
    ColumnLineageFacet, ColumnLineageField, CustodyDatasetFacet, CustodyRunFacet, DataQualityMetricsFacet,
    DataSourceFacet, DatasetFacets, DatasetKind, ExecutionParameter, ExecutionParametersFacet, InputFacets, InputField,
    JobFacets, JobTypeFacet, LifecycleChange, LifecycleStateChangeFacet, OutputFacets, OutputStatisticsFacet, Owner,
    OwnershipFacet, ParentJob, ParentRun, ParentRunFacet, PreviousIdentifier, ProcessingEngineFacet, RawFacets,
    RawJson, RootRef, RunFacets, SchemaFacet, SchemaField, SourceCodeLocationFacet, Transformation, TransformationType,
    VersionFacet,
};
pub use facts::{ColumnFact, EdgeFact, Facts, NodeFact, RunFact, Source, facts_of};
pub use graph::{ApplyOutcome, Graph, Snapshot, SnapshotEdge, TransformDeclaration, TransformKind};
pub use impact::{Impact, ImpactCounts, ImpactView, RunInfo, Training, TrainingInput};
pub use keys::{DatasetName, EdgeKind, JobName, NodeKey, NodeKind, VersionRef};
pub use kpi::{Completeness, Untraced};
pub use propagation::{EffectiveClassification, Origin};
pub use query::{ColumnEdgeRef, Direction, EdgeRef, Lineage, NodeRef, Query, Reached};
