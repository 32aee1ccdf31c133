//! The facets Custody understands, read into typed structs. Every facet is also kept as
//! received in the `raw` map of its container, so nothing a producer sent is lost and unknown
//! facets are stored, not rejected.
//!
//! Policy for a malformed *known* facet: the event is accepted, the facet stays in `raw`, its
//! typed field is `None` and a [`FacetWarning`] names the path (the spec asks consumers to be
//! tolerant of facets). The exception is Custody's own `custody` facets: they carry
//! classifications, digests and kinds that security decisions rest on, so a malformed one
//! refuses the whole event rather than silently dropping a declaration.

use crate::error::{EventError, FacetWarning};
use crate::json::{Json, Object};
use custody_core::{Classification, Sha256Digest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// Facets (or fields) as received, by name.
pub type RawFacets = BTreeMap<String, RawJson>;

/// A JSON value as received, in compact form: what `serde_json` writes for the same value.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The compact JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The value, parsed.
    pub fn to_value(&self) -> Value {
        // The text is JSON that serde_json wrote; reading it back cannot fail.
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    fn of(v: &Json<'_>) -> Self {
        // Writing a tree of plain JSON values cannot fail.
        Self(serde_json::value::to_raw_value(v).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

/// An object's members as received, by name.
pub(crate) fn raw_of(members: Object<'_>) -> RawFacets {
    members.into_members().map(|(k, v)| (k.into_owned(), RawJson::of(&v))).collect()
}

/// `schema` dataset facet: the fields of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaFacet {
    /// Top-level fields.
    #[serde(default)]
    pub fields: Vec<SchemaField>,
}

/// One field of a [`SchemaFacet`]; nested types have sub-fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaField {
    /// Field name.
    pub name: String,
    /// Type as the producer names it.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub field_type: Option<String>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Nested fields (struct / array element types).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<SchemaField>,
}

/// `dataSource` dataset facet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSourceFacet {
    /// Data source name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Data source URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// `columnLineage` dataset facet: which input fields each output field is computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnLineageFacet {
    /// Output field name → its inputs.
    #[serde(default)]
    pub fields: BTreeMap<String, ColumnLineageField>,
    /// Inputs that affect the whole dataset (e.g. filters), not one field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset: Vec<InputField>,
}

/// The inputs of one output field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnLineageField {
    /// The input fields.
    #[serde(default, rename = "inputFields")]
    pub input_fields: Vec<InputField>,
}

/// One input field of a column-lineage entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputField {
    /// Input dataset namespace.
    pub namespace: String,
    /// Input dataset name.
    pub name: String,
    /// Input field name.
    pub field: String,
    /// How the input is transformed into the output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transformations: Vec<Transformation>,
}

/// One transformation of an [`InputField`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transformation {
    /// DIRECT (the value flows into the output) or INDIRECT (it only influences it: join, filter…).
    #[serde(rename = "type")]
    pub kind: TransformationType,
    /// IDENTITY, TRANSFORMATION, AGGREGATION, JOIN, FILTER, … as the producer names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// True when the transformation masks the data (e.g. a hash of PII).
    #[serde(default)]
    pub masking: bool,
}

/// DIRECT or INDIRECT; anything else is kept by name, since the enum is open in practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TransformationType {
    /// The input value flows into the output value.
    Direct,
    /// The input only influences the output (join key, filter, sort…).
    Indirect,
    /// A type this crate does not know.
    #[serde(untagged)]
    Other(String),
}

/// `dataQualityMetrics` dataset or input facet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataQualityMetricsFacet {
    /// Number of rows.
    #[serde(default, rename = "rowCount", skip_serializing_if = "Option::is_none")]
    pub row_count: Option<i64>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    /// Number of files.
    #[serde(default, rename = "fileCount", skip_serializing_if = "Option::is_none")]
    pub file_count: Option<i64>,
    /// Per-column metrics, kept as received (the shape is open).
    #[serde(default, rename = "columnMetrics")]
    pub column_metrics: BTreeMap<String, Value>,
}

/// `version` dataset facet: the producer's version of the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionFacet {
    /// The version string (a snapshot id, a commit, a timestamp…).
    #[serde(rename = "datasetVersion")]
    pub dataset_version: String,
}

/// `ownership` dataset or job facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnershipFacet {
    /// The owners.
    #[serde(default)]
    pub owners: Vec<Owner>,
}

/// One owner of an [`OwnershipFacet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Owner identifier, recommended as a URN (`team:data`).
    pub name: String,
    /// Kind of ownership (MAINTAINER…).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<String>,
}

/// `lifecycleStateChange` dataset facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleStateChangeFacet {
    /// What happened to the dataset.
    #[serde(rename = "lifecycleStateChange")]
    pub change: LifecycleChange,
    /// For a rename: the previous identifier.
    #[serde(default, rename = "previousIdentifier", skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousIdentifier>,
}

/// The lifecycle changes of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LifecycleChange {
    /// Schema changed.
    Alter,
    /// Created.
    Create,
    /// Dropped: the dataset no longer exists (a dropped deployment is no longer live).
    Drop,
    /// Content replaced.
    Overwrite,
    /// Renamed.
    Rename,
    /// Emptied.
    Truncate,
}

/// Previous name of a renamed dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousIdentifier {
    /// Previous namespace.
    pub namespace: String,
    /// Previous name.
    pub name: String,
}

/// `parent` run facet: the run (and job) that started this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRunFacet {
    /// The parent run.
    pub run: ParentRun,
    /// The parent job.
    pub job: ParentJob,
    /// The root of the hierarchy, when the producer knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<RootRef>,
}

/// The run part of a [`ParentRunFacet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRun {
    /// Parent run id.
    #[serde(rename = "runId")]
    pub run_id: Uuid,
}

/// The job part of a [`ParentRunFacet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentJob {
    /// Parent job namespace.
    pub namespace: String,
    /// Parent job name.
    pub name: String,
}

/// The root run and job of a [`ParentRunFacet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRef {
    /// Root run.
    pub run: ParentRun,
    /// Root job.
    pub job: ParentJob,
}

/// `processing_engine` run facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingEngineFacet {
    /// Engine version.
    pub version: String,
    /// Engine name (Spark, Airflow…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Version of the OpenLineage adapter.
    #[serde(default, rename = "openlineageAdapterVersion", skip_serializing_if = "Option::is_none")]
    pub adapter_version: Option<String>,
}

/// `executionParameters` run facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionParametersFacet {
    /// The parameters.
    #[serde(default)]
    pub parameters: Vec<ExecutionParameter>,
}

/// One parameter of an [`ExecutionParametersFacet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionParameter {
    /// Parameter key.
    pub key: String,
    /// Parameter value (the schema says string; numbers are accepted and kept as text).
    #[serde(default, deserialize_with = "string_or_scalar", skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `sourceCodeLocation` job facet: where the job's code lives, and at which commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCodeLocationFacet {
    /// VCS type (git…).
    #[serde(rename = "type")]
    pub vcs: String,
    /// Location URL.
    pub url: String,
    /// Repository URL.
    #[serde(default, rename = "repoUrl", skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    /// Path in the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The commit (or other revision): this is the run's code commit unless the `custody` run
    /// facet names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// `jobType` job facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTypeFacet {
    /// BATCH or STREAMING.
    #[serde(rename = "processingType")]
    pub processing_type: String,
    /// The integration (SPARK, AIRFLOW, DBT…).
    pub integration: String,
    /// QUERY, TASK, DAG, MODEL…
    #[serde(default, rename = "jobType", skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
}

/// What a dataset-like node is, as declared by the `custody` dataset facet.
/// The order is a precedence: when events disagree the most specific kind wins, so the
/// answer does not depend on which event arrived last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DatasetKind {
    /// A table, file set or stream (the default).
    Dataset,
    /// A cache or materialised intermediate that can simply be dropped.
    Cache,
    /// A trained model version.
    ModelVersion,
    /// A deployment (serving endpoint) of a model version.
    Deployment,
}

/// Custody's own dataset facet, named `custody`, on any dataset of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustodyDatasetFacet {
    /// What the node is; absent means a plain dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<DatasetKind>,
    /// The producer's classification of this data. It can only raise the level: the effective
    /// level is never below the inputs' nor below the registry's declaration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    /// SHA-256 of the content; identifies the version when no `version` facet is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<Sha256Digest>,
    /// For a deployment: whether it is serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<bool>,
}

/// Custody's own run facet, named `custody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustodyRunFacet {
    /// Container image the run executed in, by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_image_digest: Option<Sha256Digest>,
    /// Code commit; overrides `sourceCodeLocation.version` of the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_commit: Option<String>,
    /// Run parameters (hyper-parameters, config), values kept as text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "string_map")]
    pub parameters: BTreeMap<String, String>,
}

/// Typed reading of a run's facets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFacets {
    /// All facets as received.
    pub raw: RawFacets,
    /// `parent`.
    pub parent: Option<ParentRunFacet>,
    /// `processing_engine`.
    pub processing_engine: Option<ProcessingEngineFacet>,
    /// `executionParameters`.
    pub execution_parameters: Option<ExecutionParametersFacet>,
    /// `custody`.
    pub custody: Option<CustodyRunFacet>,
}

/// Typed reading of a job's facets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobFacets {
    /// All facets as received.
    pub raw: RawFacets,
    /// `sourceCodeLocation`.
    pub source_code_location: Option<SourceCodeLocationFacet>,
    /// `jobType`.
    pub job_type: Option<JobTypeFacet>,
    /// `ownership`.
    pub ownership: Option<OwnershipFacet>,
}

/// Typed reading of a dataset's facets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetFacets {
    /// All facets as received.
    pub raw: RawFacets,
    /// `schema`.
    pub schema: Option<SchemaFacet>,
    /// `dataSource`.
    pub data_source: Option<DataSourceFacet>,
    /// `columnLineage`.
    pub column_lineage: Option<ColumnLineageFacet>,
    /// `dataQualityMetrics` (dataset-level).
    pub data_quality_metrics: Option<DataQualityMetricsFacet>,
    /// `version`.
    pub version: Option<VersionFacet>,
    /// `ownership`.
    pub ownership: Option<OwnershipFacet>,
    /// `lifecycleStateChange`.
    pub lifecycle_state_change: Option<LifecycleStateChangeFacet>,
    /// `custody`.
    pub custody: Option<CustodyDatasetFacet>,
}

/// Typed reading of an input's `inputFacets`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputFacets {
    /// All input facets as received.
    pub raw: RawFacets,
    /// `dataQualityMetrics` (input-level: measured while reading).
    pub data_quality_metrics: Option<DataQualityMetricsFacet>,
}

/// Typed reading of an output's `outputFacets`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputFacets {
    /// All output facets as received.
    pub raw: RawFacets,
    /// `outputStatistics`.
    pub output_statistics: Option<OutputStatisticsFacet>,
}

/// `outputStatistics` output facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputStatisticsFacet {
    /// Rows written.
    #[serde(default, rename = "rowCount", skip_serializing_if = "Option::is_none")]
    pub row_count: Option<i64>,
    /// Bytes written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Files written.
    #[serde(default, rename = "fileCount", skip_serializing_if = "Option::is_none")]
    pub file_count: Option<i64>,
}

/// Reads facet maps, collecting warnings for malformed known facets.
pub(crate) struct FacetReader<'w> {
    pub(crate) warnings: &'w mut Vec<FacetWarning>,
}

impl FacetReader<'_> {
    /// Reads `name` from `facets` as `T`. A facet marked `_deleted: true` or `null` is not read.
    fn lenient<T: DeserializeOwned>(&mut self, facets: &Object<'_>, name: &str, path: &str) -> Option<T> {
        let value = live_facet(facets, name)?;
        match read_facet::<T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.warnings.push(FacetWarning {
                    path: join_path(&format!("{path}.{name}"), e.path()),
                    message: e.into_inner().to_string(),
                });
                None
            }
        }
    }

    /// Reads the `custody` facet strictly: a malformed one refuses the event.
    fn strict<T: DeserializeOwned>(facets: &Object<'_>, path: &str) -> Result<Option<T>, EventError> {
        let Some(value) = live_facet(facets, "custody") else { return Ok(None) };
        read_facet::<T>(value).map(Some).map_err(|e| EventError::Invalid {
            path: join_path(&format!("{path}.custody"), e.path()),
            reason: e.into_inner().to_string(),
        })
    }

    pub(crate) fn run(&mut self, facets: Object<'_>, path: &str) -> Result<RunFacets, EventError> {
        Ok(RunFacets {
            parent: self.lenient(&facets, "parent", path),
            processing_engine: self.lenient(&facets, "processing_engine", path),
            execution_parameters: self.lenient(&facets, "executionParameters", path),
            custody: Self::strict(&facets, path)?,
            raw: raw_of(facets),
        })
    }

    pub(crate) fn job(&mut self, facets: Object<'_>, path: &str) -> JobFacets {
        JobFacets {
            source_code_location: self.lenient(&facets, "sourceCodeLocation", path),
            job_type: self.lenient(&facets, "jobType", path),
            ownership: self.lenient(&facets, "ownership", path),
            raw: raw_of(facets),
        }
    }

    pub(crate) fn dataset(&mut self, facets: Object<'_>, path: &str) -> Result<DatasetFacets, EventError> {
        Ok(DatasetFacets {
            schema: self.lenient(&facets, "schema", path),
            data_source: self.lenient(&facets, "dataSource", path),
            column_lineage: self.lenient(&facets, "columnLineage", path),
            data_quality_metrics: self.lenient(&facets, "dataQualityMetrics", path),
            version: self.lenient(&facets, "version", path),
            ownership: self.lenient(&facets, "ownership", path),
            lifecycle_state_change: self.lenient(&facets, "lifecycleStateChange", path),
            custody: Self::strict(&facets, path)?,
            raw: raw_of(facets),
        })
    }

    pub(crate) fn input(&mut self, facets: Object<'_>, path: &str) -> InputFacets {
        InputFacets { data_quality_metrics: self.lenient(&facets, "dataQualityMetrics", path), raw: raw_of(facets) }
    }

    pub(crate) fn output(&mut self, facets: Object<'_>, path: &str) -> OutputFacets {
        OutputFacets { output_statistics: self.lenient(&facets, "outputStatistics", path), raw: raw_of(facets) }
    }
}

/// The facet `name`, unless absent, `null` or marked deleted (`_deleted: true` is how a
/// producer withdraws a facet; it is kept raw but asserts nothing).
fn live_facet<'r, 'a>(facets: &'r Object<'a>, name: &str) -> Option<&'r Json<'a>> {
    let value = facets.get(name)?;
    match value {
        Json::Null => None,
        Json::Object(m) if matches!(m.get("_deleted"), Some(Json::Bool(true))) => None,
        v => Some(v),
    }
}

/// Reads a facet as `T`. Tracking the path costs on every value read, and nearly every facet is
/// well formed, so the path is only traced when a first, plain read has failed (reading is
/// deterministic: the second read fails at the same place with the same error).
fn read_facet<T: DeserializeOwned>(value: &Json<'_>) -> Result<T, serde_path_to_error::Error<crate::json::DeError>> {
    T::deserialize(value).or_else(|_| serde_path_to_error::deserialize::<_, T>(value))
}

/// `prefix` followed by the serde path inside it (`.` when the error is at the facet itself).
fn join_path(prefix: &str, inner: &serde_path_to_error::Path) -> String {
    let inner = inner.to_string();
    if inner == "." || inner.is_empty() { prefix.to_owned() } else { format!("{prefix}.{inner}") }
}

/// Accepts a JSON string, number or bool and keeps it as text (producers are loose here).
fn string_or_scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(scalar_text))
}

/// A map of scalars kept as text; nested values are kept as compact JSON.
fn string_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = Map::<String, Value>::deserialize(d)?;
    Ok(m.into_iter().map(|(k, v)| (k, scalar_text(v.clone()).unwrap_or_else(|| v.to_string()))).collect())
}

fn scalar_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}
