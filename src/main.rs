use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    rekindle::run(rekindle::cli::Cli::parse())
}
