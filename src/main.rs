use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match rekindle::cli::Cli::try_parse() {
        Ok(cli) => rekindle::run(cli),
        Err(err) => {
            // --help and --version print and succeed; a bad command line is EX_USAGE (64), as
            // the README says, not clap's own 2.
            let _ = err.print();
            if err.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
