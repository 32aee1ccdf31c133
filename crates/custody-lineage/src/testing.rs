//! Deterministic generator of large lineage graphs shaped like real ones, for benchmarks and
//! for the server's comparison with its SQL store (same spec and seed → same graph).
//!
//! Shape: source datasets → `layers` layers of transform runs (each reads 2–7 datasets,
//! mostly neighbours in the previous layer, a few far away, a very few from the *next*
//! layer, which closes cycles) → training runs reading 4–8 late-layer datasets and writing
//! model versions → deploy runs reading one model version and writing a deployment.

use crate::event_id::EventId;
use crate::facets::DatasetKind;
use crate::facts::{EdgeFact, Facts, NodeFact, RunFact, Source};
use crate::keys::{DatasetName, EdgeKind, JobName, NodeKey, VersionRef};
use custody_core::{Classification, Sha256Digest};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Parameters of a generated graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphSpec {
    /// Source datasets.
    pub sources: u32,
    /// Transform layers.
    pub layers: u32,
    /// Transform runs (and output datasets) per layer.
    pub runs_per_layer: u32,
    /// Jobs per layer (runs are spread over them).
    pub jobs_per_layer: u32,
    /// Training runs (one model version each).
    pub trainings: u32,
    /// Deploy runs (one deployment each).
    pub deployments: u32,
    /// Neighbourhood, in the previous layer, inputs are drawn from.
    pub window: u32,
    /// Per 10,000 inputs: drawn from any earlier layer.
    pub far_per_10k: u32,
    /// Per 10,000 inputs: drawn from the next layer (closes cycles).
    pub back_per_10k: u32,
    /// PRNG seed.
    pub seed: u64,
}

impl GraphSpec {
    /// ≈1,000,000 nodes and ≈3,000,000 edges.
    pub fn million() -> Self {
        Self {
            sources: 50_000,
            layers: 8,
            runs_per_layer: 52_900,
            jobs_per_layer: 2_000,
            trainings: 20_000,
            deployments: 9_100,
            window: 6,
            far_per_10k: 5,
            back_per_10k: 2,
            seed: 0x00C0_FFEE,
        }
    }

    /// A few thousand nodes, same shape (tests).
    pub fn small() -> Self {
        Self {
            sources: 200,
            layers: 4,
            runs_per_layer: 300,
            jobs_per_layer: 20,
            trainings: 40,
            deployments: 20,
            window: 4,
            far_per_10k: 50,
            back_per_10k: 30,
            seed: 7,
        }
    }
}

/// SplitMix64: tiny, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Prng(u64);

impl Prng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n.max(1))) >> 32) as u32
    }
}

#[derive(Debug, Clone)]
struct GenRun {
    job: u32,
    inputs: Vec<(u32, bool)>,
    kind: DatasetKind,
    time: i64,
}

/// A generated graph: `facts()` yields one DatasetEvent's facts per source, then one COMPLETE
/// event's facts per run.
#[derive(Debug, Clone)]
pub struct GeneratedGraph {
    spec: GraphSpec,
    runs: Vec<GenRun>,
}

const T0: i64 = 1_704_067_200_000_000; // 2024-01-01T00:00:00Z in µs
const DAY: i64 = 86_400_000_000;

/// Generates the graph of `spec`.
pub fn generate(spec: GraphSpec) -> GeneratedGraph {
    let mut rng = Prng::new(spec.seed);
    let s = spec.sources;
    let per = spec.runs_per_layer.max(1);
    // Dataset index d: d < s is a source; else it is the output of run d - s.
    let layer_start = |l: u32| if l == 0 { 0 } else { s + (l - 1) * per };
    let layer_len = |l: u32| if l == 0 { s } else { per };
    let mut runs = Vec::new();
    for l in 1..=spec.layers {
        for i in 0..per {
            // 3–8 inputs (fewer distinct after de-duplication): ≈3 edges per node overall.
            let n_in = 3 + rng.below(6);
            let mut inputs = Vec::with_capacity(n_in as usize);
            for _ in 0..n_in {
                let roll = rng.below(10_000);
                let d = if roll < spec.back_per_10k && l < spec.layers {
                    layer_start(l + 1) + (i + rng.below(spec.window * 2 + 1)).min(per - 1)
                } else if roll < spec.back_per_10k + spec.far_per_10k {
                    let from = rng.below(l);
                    layer_start(from) + rng.below(layer_len(from))
                } else {
                    let prev = l - 1;
                    let centre = (u64::from(i) * u64::from(layer_len(prev)) / u64::from(per)) as u32;
                    let off = rng.below(spec.window * 2 + 1);
                    layer_start(prev) + (centre + off).saturating_sub(spec.window).min(layer_len(prev) - 1)
                };
                // A fifth of source reads name no version: "latest as of the event time".
                let floating = d < s && rng.below(5) == 0;
                if !inputs.iter().any(|x: &(u32, bool)| x.0 == d) {
                    inputs.push((d, floating));
                }
            }
            runs.push(GenRun {
                job: (l - 1) * spec.jobs_per_layer + rng.below(spec.jobs_per_layer),
                inputs,
                kind: DatasetKind::Dataset,
                time: T0 + i64::from(l) * DAY + i64::from(i),
            });
        }
    }
    let training_job0 = spec.layers * spec.jobs_per_layer;
    let late = spec.layers / 2;
    for i in 0..spec.trainings {
        let n_in = 4 + rng.below(5);
        let mut inputs = Vec::new();
        for _ in 0..n_in {
            let l = late + rng.below(spec.layers - late + 1);
            let d = layer_start(l) + rng.below(layer_len(l));
            if !inputs.iter().any(|x: &(u32, bool)| x.0 == d) {
                inputs.push((d, false));
            }
        }
        runs.push(GenRun {
            job: training_job0 + i % 500,
            inputs,
            kind: DatasetKind::ModelVersion,
            time: T0 + i64::from(spec.layers + 1) * DAY + i64::from(i),
        });
    }
    let model0 = s + spec.layers * per;
    for i in 0..spec.deployments {
        let m = model0 + rng.below(spec.trainings.max(1));
        runs.push(GenRun {
            job: training_job0 + 500 + i % 100,
            inputs: vec![(m, false)],
            kind: DatasetKind::Deployment,
            time: T0 + i64::from(spec.layers + 2) * DAY + i64::from(i),
        });
    }
    GeneratedGraph { spec, runs }
}

impl GeneratedGraph {
    /// The spec it was generated from.
    pub fn spec(&self) -> GraphSpec {
        self.spec
    }

    /// Number of runs (= events).
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    fn run_id(&self, r: u32) -> Uuid {
        Uuid::from_u64_pair(self.spec.seed, u64::from(r))
    }

    fn name(d: u32) -> DatasetName {
        DatasetName::new("gen://lake", format!("ds{d}"))
    }

    /// The key of dataset index `d`.
    pub fn dataset_key(&self, d: u32) -> NodeKey {
        let version = if d < self.spec.sources {
            VersionRef::Declared("v1".into())
        } else {
            VersionRef::Run(self.run_id(d - self.spec.sources))
        };
        NodeKey::DatasetVersion { dataset: Self::name(d), version }
    }

    /// Keys of the source dataset versions.
    pub fn sources(&self) -> impl Iterator<Item = NodeKey> + '_ {
        (0..self.spec.sources).map(|d| self.dataset_key(d))
    }

    /// Keys of the model versions.
    pub fn model_versions(&self) -> impl Iterator<Item = NodeKey> + '_ {
        let m0 = self.spec.sources + self.spec.layers * self.spec.runs_per_layer;
        (0..self.spec.trainings).map(move |i| self.dataset_key(m0 + i))
    }

    /// Datasets the registry knows (all sources but every twentieth) with their level.
    pub fn registrations(&self) -> impl Iterator<Item = (DatasetName, Classification)> + '_ {
        (0..self.spec.sources).filter(|d| d % 20 != 19).map(|d| (Self::name(d), Classification::ALL[(d % 4) as usize]))
    }

    /// The facts of run `r` (its COMPLETE event).
    pub fn facts_of_run(&self, r: u32) -> Option<Facts> {
        let run = self.runs.get(r as usize)?;
        let run_id = self.run_id(r);
        let job = JobName::new("gen://scheduler", format!("job{}", run.job));
        let run_key = NodeKey::run(run_id);
        let out_key = self.dataset_key(self.spec.sources + r);
        let mut nodes = vec![NodeFact::bare(NodeKey::Job(job.clone())), NodeFact::bare(run_key.clone())];
        let mut edges = vec![EdgeFact {
            kind: EdgeKind::RunOf,
            from: Source::Node(NodeKey::Job(job.clone())),
            to: run_key.clone(),
        }];
        for &(d, floating) in &run.inputs {
            let src = if floating {
                Source::Latest(Self::name(d))
            } else {
                let key = self.dataset_key(d);
                let mut nf = NodeFact::bare(key.clone());
                if d < self.spec.sources {
                    nf.content_digest = Some(digest_of(d));
                }
                nodes.push(nf);
                Source::Node(key)
            };
            edges.push(EdgeFact { kind: EdgeKind::Consumed, from: src, to: run_key.clone() });
        }
        let mut out = NodeFact::bare(out_key.clone());
        out.kind = Some(run.kind);
        out.content_digest = (r % 10 != 9).then(|| digest_of(self.spec.sources + r));
        if run.kind == DatasetKind::Deployment {
            out.live = Some(!r.is_multiple_of(5));
        }
        nodes.push(out);
        edges.push(EdgeFact { kind: EdgeKind::Produced, from: Source::Node(run_key), to: out_key });
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&self.spec.seed.to_be_bytes());
        id[8..12].copy_from_slice(&r.to_be_bytes());
        let mut parameters = BTreeMap::new();
        if run.kind == DatasetKind::ModelVersion {
            parameters.insert("learning_rate".to_owned(), "0.001".to_owned());
        }
        Some(Facts {
            event_id: EventId::from_bytes(id),
            time: run.time,
            nodes,
            edges,
            run: Some(RunFact {
                run_id,
                job,
                event_type: Some(crate::event::EventType::Complete),
                code_commit: Some(format!("{:040x}", u128::from(run.job) * 0x9E37_79B9)),
                image_digest: Some(digest_of(u32::MAX - run.job)),
                parameters,
                parent_run: None,
            }),
            columns: Vec::new(),
        })
    }

    /// The facts asserting source `d`'s version (a DatasetEvent with version and digest).
    pub fn facts_of_source(&self, d: u32) -> Facts {
        let mut node = NodeFact::bare(self.dataset_key(d));
        node.content_digest = Some(digest_of(d));
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&self.spec.seed.to_be_bytes());
        id[12] = 1;
        id[13..17].copy_from_slice(&d.to_be_bytes());
        Facts {
            event_id: EventId::from_bytes(id),
            time: T0,
            nodes: vec![node],
            edges: Vec::new(),
            run: None,
            columns: Vec::new(),
        }
    }

    /// Every event's facts: the sources' DatasetEvents, then the runs in run order.
    pub fn facts(&self) -> impl Iterator<Item = Facts> + '_ {
        (0..self.spec.sources)
            .map(|d| self.facts_of_source(d))
            .chain((0..self.runs.len() as u32).filter_map(|r| self.facts_of_run(r)))
    }
}

fn digest_of(d: u32) -> Sha256Digest {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&d.to_be_bytes());
    b[31] = 1;
    Sha256Digest::from_bytes(b)
}
