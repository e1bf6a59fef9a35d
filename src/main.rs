//! The `llmbench` binary: parse the command line, hand it to the library, exit with its code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = llmbench::app::cli::Cli::parse();
    ExitCode::from(llmbench::app::main(cli))
}
