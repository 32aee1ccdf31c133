//! Public identities of graph nodes. The dataset version rule is documented on [`VersionRef`].

use custody_core::Sha256Digest;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A dataset's identity: namespace + name (see the OpenLineage naming conventions).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DatasetName {
    /// Namespace (data source).
    pub namespace: String,
    /// Name within the namespace.
    pub name: String,
}

/// A job's identity: namespace + name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobName {
    /// Namespace (scheduler).
    pub namespace: String,
    /// Name within the namespace.
    pub name: String,
}

impl DatasetName {
    /// A dataset name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }

    /// The name the OpenLineage naming conventions give the dataset at `uri`: namespace
    /// `scheme://authority`, name the path without its leading `/` (`s3://bucket/a/b` gives
    /// `s3://bucket` and `a/b`, `postgres://db:5432/shop.public.orders` gives
    /// `postgres://db:5432` and `shop.public.orders`); local files are namespace `file`, name
    /// the absolute path. `None` when the URI has no authority and path to split (`urn:…`, `s3://bucket`).
    pub fn from_uri(uri: &str) -> Option<Self> {
        let (scheme, rest) = uri.split_once(':')?;
        let valid_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return None;
        }
        let after = rest.strip_prefix("//")?;
        if scheme.eq_ignore_ascii_case("file") {
            // file:///abs/path (empty authority) or file://host/abs/path: the path.
            let path = &after[after.find('/')?..];
            return (path.len() > 1).then(|| Self::new("file", path));
        }
        let (authority, path) = after.split_once('/')?;
        let path = path.split(['?', '#']).next().unwrap_or_default();
        if authority.is_empty() || path.is_empty() {
            return None;
        }
        Some(Self::new(format!("{scheme}://{authority}"), path))
    }
}

impl JobName {
    /// A job name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

/// Which version of a dataset.
///
/// # The dataset version rule
///
/// OpenLineage names a dataset by namespace + name; Custody's graph is about *versions*.
/// A dataset mentioned in an event is the version given by, in order:
///
/// 1. its `version` facet (`datasetVersion`) → [`VersionRef::Declared`];
/// 2. else the `contentDigest` of its `custody` facet → [`VersionRef::Digest`];
/// 3. else, for an **output of a run** R → [`VersionRef::Run`]`(R)`: each run that writes a
///    dataset makes a new version of it;
/// 4. else, for an **input** → no fixed version: the input means "the latest version of the
///    dataset as of the event time" (a floating reference, [`crate::Source::Latest`]). It is
///    resolved when the graph is read, never frozen at ingest, so that events arriving late
///    or out of order change the answer exactly as if they had arrived in time order. The
///    latest version is the one with the greatest creation time ≤ the event time (creation
///    time = earliest event time that mentions the version; ties broken by event id, then
///    key), skipping the version the consuming run itself wrote (a run that appends to the
///    table it reads does not read its own output). When no version qualifies, it is the
///    dataset's [`VersionRef::Base`] version;
/// 5. else (DatasetEvent, JobEvent outputs) → [`VersionRef::Base`]: the dataset as a whole,
///    not produced by any known run (static metadata, designed lineage, external sources).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "camelCase")]
pub enum VersionRef {
    /// The dataset as a whole, not written by a known run.
    Base,
    /// The producer's `version` facet.
    Declared(String),
    /// The content digest.
    Digest(Sha256Digest),
    /// The version written by this run.
    Run(Uuid),
}

/// A node of the lineage graph. Model versions and deployments are dataset versions whose
/// `custody` facet declares that kind (OpenLineage has no model concept).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum NodeKey {
    /// A version of a dataset (or model version, deployment, cache).
    DatasetVersion {
        /// The dataset.
        dataset: DatasetName,
        /// Its version.
        version: VersionRef,
    },
    /// A job.
    Job(JobName),
    /// A run.
    Run {
        /// The run id.
        run_id: Uuid,
    },
}

impl NodeKey {
    /// A dataset version key.
    pub fn version(namespace: impl Into<String>, name: impl Into<String>, version: VersionRef) -> Self {
        Self::DatasetVersion { dataset: DatasetName::new(namespace, name), version }
    }

    /// A job key.
    pub fn job(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::Job(JobName::new(namespace, name))
    }

    /// A run key.
    pub fn run(run_id: Uuid) -> Self {
        Self::Run { run_id }
    }
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Base => f.write_str("base"),
            Self::Declared(v) => write!(f, "v:{v}"),
            Self::Digest(d) => write!(f, "{d}"),
            Self::Run(r) => write!(f, "run:{r}"),
        }
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DatasetVersion { dataset, version } => {
                write!(f, "dataset {}/{}@{version}", dataset.namespace, dataset.name)
            }
            Self::Job(j) => write!(f, "job {}/{}", j.namespace, j.name),
            Self::Run { run_id } => write!(f, "run {run_id}"),
        }
    }
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeKind {
    /// A dataset version.
    Dataset,
    /// A cache version.
    Cache,
    /// A model version.
    ModelVersion,
    /// A deployment.
    Deployment,
    /// A job.
    Job,
    /// A run.
    Run,
}

impl NodeKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dataset => "dataset",
            Self::Cache => "cache",
            Self::ModelVersion => "model version",
            Self::Deployment => "deployment",
            Self::Job => "job",
            Self::Run => "run",
        }
    }

    /// Whether the node holds data (dataset, cache, model version, deployment).
    pub fn is_data(self) -> bool {
        !matches!(self, Self::Job | Self::Run)
    }
}

/// The kind of an edge. Every edge points downstream, in the direction data flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EdgeKind {
    /// Input → run (or job, for designed lineage): the run consumed the input.
    Consumed,
    /// Run (or job) → output: the run produced the output.
    Produced,
    /// Dataset → dataset, without a run (DatasetEvent column lineage): the target is derived
    /// from the source.
    DerivedFrom,
    /// Run → model version: the model version was trained on the run's inputs. Stored as
    /// `Produced`; reported as `TrainedOn` when the output is a model version, so the kind
    /// never depends on which event declared the node's kind first.
    TrainedOn,
    /// Run → deployment: the deployment serves the run's input model. Stored as `Produced`,
    /// reported like `TrainedOn`.
    DeployedAs,
    /// Job → run: the run is an execution of the job.
    RunOf,
}

impl EdgeKind {
    /// Whether classification flows along the edge (all but `RunOf`: code is not data).
    pub fn carries_data(self) -> bool {
        !matches!(self, Self::RunOf)
    }
}

/// A [`NodeKey`] borrowed from the graph's interned strings: serializes exactly as the
/// `NodeKey` it stands for, without allocating (answers list thousands of keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum KeyView<'g> {
    DatasetVersion { dataset: NameView<'g>, version: VersionView<'g> },
    Job(NameView<'g>),
    Run { run_id: Uuid },
}

/// A [`DatasetName`] or [`JobName`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct NameView<'g> {
    pub(crate) namespace: &'g str,
    pub(crate) name: &'g str,
}

/// A [`VersionRef`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "by", content = "value", rename_all = "camelCase")]
pub(crate) enum VersionView<'g> {
    Base,
    Declared(&'g str),
    Digest(Sha256Digest),
    Run(Uuid),
}

impl KeyView<'_> {
    /// The owned key.
    pub(crate) fn to_key(self) -> NodeKey {
        match self {
            Self::DatasetVersion { dataset, version } => {
                let version = match version {
                    VersionView::Base => VersionRef::Base,
                    VersionView::Declared(s) => VersionRef::Declared(s.to_owned()),
                    VersionView::Digest(d) => VersionRef::Digest(d),
                    VersionView::Run(r) => VersionRef::Run(r),
                };
                NodeKey::version(dataset.namespace, dataset.name, version)
            }
            Self::Job(j) => NodeKey::job(j.namespace, j.name),
            Self::Run { run_id } => NodeKey::run(run_id),
        }
    }
}
