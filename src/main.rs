//! The `siteid` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    siteid::telemetry::init();
    siteid::cli::run(siteid::cli::Cli::parse())
}
