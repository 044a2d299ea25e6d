//! The `schedule-sync` command line.

mod cli;
mod import;
mod serve;

fn main() -> std::process::ExitCode {
    cli::run()
}
