//! The API end to end, over HTTP, on every backend. One test binary (see ARCHITECTURE.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr, missing_docs)]

mod authn;
mod bad_input;
mod common;
mod data;
mod lifecycle;
mod lineage;
mod lineage_governance;
mod oidc;
mod proofs;
mod registry;
mod routes;
mod scans;
mod tls;
