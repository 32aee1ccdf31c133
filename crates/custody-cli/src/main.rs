//! The `custody` binary: the server, the demo, and a CLI for the API.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line program prints")]

mod auditlog;
mod cli;
mod client;
mod commands;
mod demo;
mod digest;
mod edge;
mod envelope;
mod lineage;
mod output;
mod provenance;
mod registry;
mod sarif;
mod scan;
mod scan_attach;

/// mimalloc rather than glibc's allocator: the server's request path allocates and frees many
/// small objects across threads (parsed events, keys, rows), where glibc's arenas spent a
/// fifth of the CPU of lineage ingest (BENCHMARKS.md, "Lineage").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, Parser};
use client::ClientError;
use std::process::ExitCode;

/// Exit codes (also in docs/cli.md).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A local failure: bad input file, I/O, invalid policies.
    pub const FAILURE: u8 = 1;
    /// Usage error (clap's).
    pub const USAGE: u8 = 2;
    /// The server did not accept the credentials (401).
    pub const UNAUTHENTICATED: u8 = 3;
    /// The policies denied the action (403).
    pub const FORBIDDEN: u8 = 4;
    /// Not found (404).
    pub const NOT_FOUND: u8 = 5;
    /// Conflict with existing state (409).
    pub const CONFLICT: u8 = 6;
    /// The server rejected the input (400, 413, 415).
    pub const INVALID: u8 = 7;
    /// The server failed or could not be reached (5xx, network).
    pub const UNAVAILABLE: u8 = 8;
    /// An audit log or proof does not verify (`audit verify`): it was tampered with.
    pub const TAMPERED: u8 = crate::auditlog::TAMPERED;
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // `custody scan` documents 3 for usage errors (2 is its "inconclusive").
            let usage = if std::env::args().nth(1).as_deref() == Some("scan") { scan::USAGE } else { exit::USAGE };
            return ExitCode::from(if e.use_stderr() { usage } else { exit::OK });
        }
    };
    if let cli::Command::Completions { shell } = &cli.command {
        clap_complete::generate(*shell, &mut cli::Cli::command(), "custody", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    // The server's runtime (request workers below the store's writer) for every command: the
    // client commands' main work runs on this thread, which keeps its priority.
    let runtime = match custody_server::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // An `Exit` was explained on stderr where it arose.
            if e.downcast_ref::<commands::Exit>().is_none() {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(c) = e.downcast_ref::<commands::Exit>() {
        return c.0;
    }
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Transport(_)) => exit::UNAVAILABLE,
        Some(ClientError::Api { status, .. }) => match status.as_u16() {
            401 => exit::UNAUTHENTICATED,
            403 => exit::FORBIDDEN,
            404 => exit::NOT_FOUND,
            409 => exit::CONFLICT,
            400 | 413 | 415 | 422 => exit::INVALID,
            _ => exit::UNAVAILABLE,
        },
        None => exit::FAILURE,
    }
}
