//! OpenLineage 2-0-2 events, parsed from a request body.
//!
//! Strict on what the spec requires (`eventTime`, `producer`, `schemaURL`, `run.runId`,
//! `job.namespace`/`job.name`, `dataset.namespace`/`dataset.name`, the `eventType` enum),
//! lenient on everything else: unknown fields and facets are kept, as received, in `extra`
//! and in the facet containers' `raw` maps. The envelope is walked by hand rather than
//! derived so that every refusal names the exact JSON path (`inputs[1].name`).

use crate::error::{EventError, FacetWarning};
use crate::event_id::EventId;
use crate::facets::{DatasetFacets, FacetReader, InputFacets, JobFacets, OutputFacets, RawFacets, RunFacets, raw_of};
use crate::json::{Json, Object};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// The run-state transition a RunEvent reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// The run started.
    Start,
    /// The run is in progress (periodic update).
    Running,
    /// The run finished successfully.
    Complete,
    /// The run was stopped before finishing.
    Abort,
    /// The run failed.
    Fail,
    /// Extra metadata, no state transition.
    Other,
}

impl EventType {
    /// All values, in spec order.
    pub const ALL: [EventType; 6] = [Self::Start, Self::Running, Self::Complete, Self::Abort, Self::Fail, Self::Other];

    /// The spec's upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "START",
            Self::Running => "RUNNING",
            Self::Complete => "COMPLETE",
            Self::Abort => "ABORT",
            Self::Fail => "FAIL",
            Self::Other => "OTHER",
        }
    }

    /// Whether the run is over after this transition.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Abort | Self::Fail)
    }
}

/// A job: namespace + name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Job namespace.
    pub namespace: String,
    /// Job name, unique in its namespace.
    pub name: String,
    /// Job facets.
    pub facets: JobFacets,
}

/// A run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Globally unique run id.
    pub run_id: Uuid,
    /// Run facets.
    pub facets: RunFacets,
}

/// A dataset: namespace + name, with its facets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Dataset namespace (the data source, e.g. `postgres://db.example:5432`).
    pub namespace: String,
    /// Dataset name in its namespace (e.g. `schema.table`).
    pub name: String,
    /// Dataset facets.
    pub facets: DatasetFacets,
}

/// A dataset read by a run or job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputDataset {
    /// The dataset.
    pub dataset: Dataset,
    /// Input facets.
    pub input_facets: InputFacets,
}

/// A dataset written by a run or job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputDataset {
    /// The dataset.
    pub dataset: Dataset,
    /// Output facets.
    pub output_facets: OutputFacets,
}

/// A RunEvent: a run of a job changed state, reading `inputs` and writing `outputs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    /// The transition; the spec makes it optional (absent is treated like OTHER).
    pub event_type: Option<EventType>,
    /// The run.
    pub run: Run,
    /// The job.
    pub job: Job,
    /// Datasets read.
    pub inputs: Vec<InputDataset>,
    /// Datasets written.
    pub outputs: Vec<OutputDataset>,
}

/// A DatasetEvent: static metadata about one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetEvent {
    /// The dataset.
    pub dataset: Dataset,
}

/// A JobEvent: static (designed) lineage of a job, without a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// The job.
    pub job: Job,
    /// Datasets the job reads.
    pub inputs: Vec<InputDataset>,
    /// Datasets the job writes.
    pub outputs: Vec<OutputDataset>,
}

/// Which of the three event shapes an event is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventBody {
    /// A RunEvent.
    Run(Box<RunEvent>),
    /// A DatasetEvent.
    Dataset(DatasetEvent),
    /// A JobEvent.
    Job(JobEvent),
}

/// A validated OpenLineage event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Content-derived id: the same event received twice has the same id.
    pub id: EventId,
    /// When the event occurred (RFC 3339 with an offset), as sent.
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
    /// URI of the producer.
    pub producer: String,
    /// URI of the schema version the producer followed.
    pub schema_url: String,
    /// The event proper.
    pub body: EventBody,
    /// Top-level fields the spec does not define, kept as received.
    pub extra: RawFacets,
    /// Known facets that were malformed and kept only raw.
    pub warnings: Vec<FacetWarning>,
}

impl Event {
    /// The event time as the graph orders it: microseconds since the Unix epoch, because
    /// that is the precision the stores keep, and a graph rebuilt from the store must equal
    /// the one built live.
    pub fn time_micros(&self) -> i64 {
        micros(self.event_time)
    }
}

/// Microseconds since the Unix epoch, rounded down.
pub fn micros(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    // i128 → i64 cannot overflow: `time` limits years to ±9999.
    i64::try_from(n.div_euclid(1_000)).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// An event and the body it was parsed from, for the store.
#[derive(Debug, Clone)]
pub struct ParsedEvent {
    /// The typed event.
    pub event: Event,
    /// The body exactly as received, without the whitespace around it.
    pub raw: String,
}

/// Parses and validates an OpenLineage event body.
///
/// ```
/// let body = br#"{"eventTime":"2024-05-01T10:00:00Z","eventType":"START",
///   "producer":"https://example.com/p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json",
///   "run":{"runId":"0190c3a4-1b2c-7d3e-8f40-123456789abc"},"job":{"namespace":"ns","name":"j"}}"#;
/// let parsed = custody_lineage::parse_event(body).unwrap();
/// assert!(matches!(parsed.event.body, custody_lineage::EventBody::Run(_)));
/// let err = custody_lineage::parse_event(br#"{"eventTime":"2024-05-01T10:00:00Z"}"#).unwrap_err();
/// assert_eq!(err.path(), "producer");
/// ```
pub fn parse_event(body: &[u8]) -> Result<ParsedEvent, EventError> {
    // One pass: the body that parsed as JSON is UTF-8 (JSON outside strings is ASCII, and
    // serde_json checks every string), so the stored copy is the request's bytes.
    let tree = Json::parse(body).map_err(json_error)?;
    let raw = std::str::from_utf8(body.trim_ascii())
        .map_err(|_| EventError::WrongType { path: String::new(), expected: "UTF-8 JSON" })?
        .to_owned();
    let event = event_from_tree(tree)?;
    Ok(ParsedEvent { event, raw })
}

/// Validates an already-decoded JSON value as an event (used when the caller holds a `Value`).
pub fn event_from_value(value: Value) -> Result<Event, EventError> {
    event_from_tree(Json::from(&value))
}

fn event_from_tree(value: Json<'_>) -> Result<Event, EventError> {
    let id = EventId::of_tree(&value);
    let Json::Object(mut top) = value else {
        return Err(EventError::WrongType { path: String::new(), expected: "a JSON object" });
    };
    let mut warnings = Vec::new();
    let mut facets = FacetReader { warnings: &mut warnings };

    let event_time = take_time(&mut top, "eventTime")?;
    let producer = take_uri(&mut top, "producer", "")?;
    let schema_url = take_uri(&mut top, "schemaURL", "")?;

    // The schema's `oneOf`: RunEvent needs run+job; DatasetEvent needs dataset and not both
    // run and job; JobEvent needs job and no run.
    let (has_run, has_job, has_dataset) = (top.has("run"), top.has("job"), top.has("dataset"));
    let is_run = has_run && has_job;
    let is_dataset = has_dataset && !is_run;
    let is_job = has_job && !has_run;
    let body = if is_run {
        let event_type = match top.remove("eventType") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(parse_event_type(&s)?),
            Some(_) => return Err(EventError::WrongType { path: "eventType".into(), expected: "a string" }),
        };
        let run = take_run(&mut top, &mut facets)?;
        let job = take_job(&mut top, "job", &mut facets)?;
        let inputs = take_inputs(&mut top, &mut facets)?;
        let outputs = take_outputs(&mut top, &mut facets)?;
        // A RunEvent may also carry `dataset`; it is not part of the RunEvent shape and
        // stays in `extra` like any unknown field.
        EventBody::Run(Box::new(RunEvent { event_type, run, job, inputs, outputs }))
    } else if is_dataset && is_job {
        return Err(EventError::Shape {
            reason: "`job` and `dataset` without `run` match both JobEvent and DatasetEvent".into(),
        });
    } else if is_dataset {
        let Some(v) = top.remove("dataset") else { return Err(EventError::Missing { path: "dataset".into() }) };
        EventBody::Dataset(DatasetEvent { dataset: dataset_from(v, "dataset", &mut facets)? })
    } else if is_job {
        let job = take_job(&mut top, "job", &mut facets)?;
        let inputs = take_inputs(&mut top, &mut facets)?;
        let outputs = take_outputs(&mut top, &mut facets)?;
        EventBody::Job(JobEvent { job, inputs, outputs })
    } else if has_run {
        return Err(EventError::Missing { path: "job".into() });
    } else {
        // No shape fits; a RunEvent is by far the most common, so name its fields.
        return Err(EventError::Missing { path: "run".into() });
    };
    Ok(Event { id, event_time, producer, schema_url, body, extra: raw_of(top), warnings })
}

fn json_error(e: serde_json::Error) -> EventError {
    EventError::Json { line: e.line(), column: e.column(), message: e.to_string() }
}

fn parse_event_type(s: &str) -> Result<EventType, EventError> {
    EventType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| EventError::Invalid {
        path: "eventType".into(),
        reason: format!("`{}` is not one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER", clip(s)),
    })
}

fn path_of(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

/// Removes a required string field.
fn take_str(map: &mut Object<'_>, key: &str, prefix: &str) -> Result<String, EventError> {
    match map.remove(key) {
        None | Some(Json::Null) => Err(EventError::Missing { path: path_of(prefix, key) }),
        Some(Json::String(s)) => Ok(s.into_owned()),
        Some(_) => Err(EventError::WrongType { path: path_of(prefix, key), expected: "a string" }),
    }
}

/// Removes a required, non-empty string field (namespaces and names).
fn take_name(map: &mut Object<'_>, key: &str, prefix: &str) -> Result<String, EventError> {
    let s = take_str(map, key, prefix)?;
    if s.trim().is_empty() {
        return Err(EventError::Invalid { path: path_of(prefix, key), reason: "must not be empty".into() });
    }
    Ok(s)
}

/// Removes a required URI field. Only the RFC 3986 scheme is checked: producers put URLs
/// here, and the check is what tells a URI from free text.
fn take_uri(map: &mut Object<'_>, key: &str, prefix: &str) -> Result<String, EventError> {
    let s = take_str(map, key, prefix)?;
    let scheme_ok = s.split_once(':').is_some_and(|(scheme, rest)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
    });
    if !scheme_ok {
        return Err(EventError::Invalid {
            path: path_of(prefix, key),
            reason: format!("`{}` is not an absolute URI", clip(&s)),
        });
    }
    Ok(s)
}

fn take_time(map: &mut Object<'_>, key: &str) -> Result<OffsetDateTime, EventError> {
    let s = take_str(map, key, "")?;
    OffsetDateTime::parse(&s, &Rfc3339).map_err(|_| EventError::Invalid {
        path: key.into(),
        reason: format!("`{}` is not an RFC 3339 date-time with an offset", clip(&s)),
    })
}

/// Parses a UUID in its canonical hyphenated form, as the schema's `format: uuid` requires.
fn parse_uuid(s: &str, path: &str) -> Result<Uuid, EventError> {
    match Uuid::try_parse(s) {
        Ok(u) if s.len() == 36 => Ok(u),
        _ => Err(EventError::Invalid { path: path.into(), reason: format!("`{}` is not a UUID", clip(s)) }),
    }
}

fn take_object<'a>(map: &mut Object<'a>, key: &str, prefix: &str) -> Result<Object<'a>, EventError> {
    match map.remove(key) {
        None | Some(Json::Null) => Err(EventError::Missing { path: path_of(prefix, key) }),
        Some(Json::Object(m)) => Ok(m),
        Some(_) => Err(EventError::WrongType { path: path_of(prefix, key), expected: "an object" }),
    }
}

/// Removes an optional facet map. Facet values are kept whatever their shape.
fn take_facets<'a>(map: &mut Object<'a>, key: &str, prefix: &str) -> Result<Object<'a>, EventError> {
    match map.remove(key) {
        None | Some(Json::Null) => Ok(Object::default()),
        Some(Json::Object(m)) => Ok(m),
        Some(_) => Err(EventError::WrongType { path: path_of(prefix, key), expected: "an object" }),
    }
}

fn take_run(top: &mut Object<'_>, facets: &mut FacetReader<'_>) -> Result<Run, EventError> {
    let mut run = take_object(top, "run", "")?;
    let id = take_str(&mut run, "runId", "run")?;
    let run_id = parse_uuid(&id, "run.runId")?;
    let raw = take_facets(&mut run, "facets", "run")?;
    Ok(Run { run_id, facets: facets.run(raw, "run.facets")? })
}

fn take_job(top: &mut Object<'_>, key: &str, facets: &mut FacetReader<'_>) -> Result<Job, EventError> {
    let mut job = take_object(top, key, "")?;
    let namespace = take_name(&mut job, "namespace", key)?;
    let name = take_name(&mut job, "name", key)?;
    let raw = take_facets(&mut job, "facets", key)?;
    Ok(Job { namespace, name, facets: facets.job(raw, &format!("{key}.facets")) })
}

fn dataset_from(v: Json<'_>, path: &str, facets: &mut FacetReader<'_>) -> Result<Dataset, EventError> {
    let Json::Object(mut m) = v else {
        return Err(EventError::WrongType { path: path.into(), expected: "an object" });
    };
    dataset_from_map(&mut m, path, facets)
}

fn dataset_from_map(m: &mut Object<'_>, path: &str, facets: &mut FacetReader<'_>) -> Result<Dataset, EventError> {
    let namespace = take_name(m, "namespace", path)?;
    let name = take_name(m, "name", path)?;
    let raw = take_facets(m, "facets", path)?;
    Ok(Dataset { namespace, name, facets: facets.dataset(raw, &format!("{path}.facets"))? })
}

fn take_array<'a>(top: &mut Object<'a>, key: &str) -> Result<Vec<Json<'a>>, EventError> {
    match top.remove(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(a)) => Ok(a),
        Some(_) => Err(EventError::WrongType { path: key.into(), expected: "an array" }),
    }
}

fn take_inputs(top: &mut Object<'_>, facets: &mut FacetReader<'_>) -> Result<Vec<InputDataset>, EventError> {
    let mut out = Vec::new();
    for (i, v) in take_array(top, "inputs")?.into_iter().enumerate() {
        let path = format!("inputs[{i}]");
        let Json::Object(mut m) = v else { return Err(EventError::WrongType { path, expected: "an object" }) };
        let raw = take_facets(&mut m, "inputFacets", &path)?;
        let dataset = dataset_from_map(&mut m, &path, facets)?;
        out.push(InputDataset { dataset, input_facets: facets.input(raw, &format!("{path}.inputFacets")) });
    }
    Ok(out)
}

fn take_outputs(top: &mut Object<'_>, facets: &mut FacetReader<'_>) -> Result<Vec<OutputDataset>, EventError> {
    let mut out = Vec::new();
    for (i, v) in take_array(top, "outputs")?.into_iter().enumerate() {
        let path = format!("outputs[{i}]");
        let Json::Object(mut m) = v else { return Err(EventError::WrongType { path, expected: "an object" }) };
        let raw = take_facets(&mut m, "outputFacets", &path)?;
        let dataset = dataset_from_map(&mut m, &path, facets)?;
        out.push(OutputDataset { dataset, output_facets: facets.output(raw, &format!("{path}.outputFacets")) });
    }
    Ok(out)
}

/// At most 60 characters of untrusted input, for error messages.
fn clip(s: &str) -> String {
    if s.chars().count() <= 60 { s.to_owned() } else { format!("{}…", s.chars().take(60).collect::<String>()) }
}
