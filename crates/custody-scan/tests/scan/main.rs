//! custody-scan's integration tests: the picklescan corpus, the bypass classes peers miss, no
//! false alarms on real scikit-learn/NumPy/joblib files, the model formats beyond pickle, and
//! properties over arbitrary input.
#![allow(missing_docs)]

mod bypass;
mod corpus;
mod deps;
mod formats;
mod notebooks;
mod paths;
mod properties;
mod real_models;
