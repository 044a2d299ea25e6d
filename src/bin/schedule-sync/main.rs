//! The `schedule-sync` command line.

// Everything printed goes through `output`, where a closed pipe ends the
// printing, not the command (`print!` and friends panic on it).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod cli;
mod import;
mod output;
mod report;
mod serve;
mod status;

fn main() -> std::process::ExitCode {
    output::finish(cli::run())
}
