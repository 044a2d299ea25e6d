//! The `schedule-sync` command line.

mod cli;
mod serve;

fn main() -> std::process::ExitCode {
    cli::run()
}
