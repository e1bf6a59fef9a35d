//! The `llmbench` binary: parse the command line, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = llmbench::cli::Cli::parse();
    ExitCode::from(llmbench::run::main(cli))
}
