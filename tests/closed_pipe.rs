//! `schedule-sync plan | head -1`: every command that prints, into a pipe
//! whose reader leaves after the first line. The command exits with its own
//! exit code, quietly (no panic, no "Broken pipe"), and `apply` still makes
//! every write to Temporal. Whether the reader leaves before or after a
//! given write is a race, so each case runs many times.
//!
//! The pipe's buffer is cut to one page, so that even the fixed outputs
//! (`schema`, `completions`, `man`) overflow it and the command must meet
//! the closed pipe; the projects are big enough that their output overflows
//! a default 64 KiB pipe too.
//!
//! A new command that prints is one more [`Case`] in a list below.

mod support;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use schedule_sync::store::{ScheduleStore, TemporalStore};

/// The pipe's buffer: one page, the least Linux allows.
const PIPE_BUFFER: usize = 4096;
/// A pipe's buffer unless someone sets it (Linux).
const DEFAULT_PIPE_BUFFER: usize = 64 * 1024;
/// Schedules in the big project: its plan overflows [`DEFAULT_PIPE_BUFFER`].
const SCHEDULES: usize = 320;
/// The longest one run may take before it counts as hung.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Whose reader leaves, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaving {
    /// The reader of standard output, after the first line (`| head -1`).
    Stdout,
    /// The reader of standard output, before the first line, for outputs
    /// too small to overflow even a one-page pipe (`| true`).
    StdoutAtOnce,
    /// The reader of standard error, where the logs go, after the first
    /// line (`2>&1 | head -1` leaves both; this leaves only the logs).
    Stderr,
}

/// One command that prints, and how it must end.
#[derive(Clone, Debug)]
struct Case {
    args: Vec<String>,
    leaving: Leaving,
    exit_code: i32,
    rounds: usize,
}

impl Case {
    /// `args`, whose standard output's reader leaves, exiting `exit_code`.
    fn new(args: &[&str], exit_code: i32) -> Self {
        Case {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            leaving: Leaving::Stdout,
            exit_code,
            rounds: 20,
        }
    }

    /// The reader of the logs leaves instead.
    fn logs_reader_leaves(mut self) -> Self {
        self.leaving = Leaving::Stderr;
        self
    }

    /// The reader leaves before anything is printed.
    fn reader_leaves_at_once(mut self) -> Self {
        self.leaving = Leaving::StdoutAtOnce;
        self
    }

    fn rounds(mut self, rounds: usize) -> Self {
        self.rounds = rounds;
        self
    }

    /// The same command against the Temporal server at `address`.
    fn against(mut self, address: &str) -> Self {
        self.args
            .extend(["--address".to_owned(), address.to_owned()]);
        self
    }
}

/// How one run ended.
struct Ended {
    code: Option<i32>,
    /// The line the leaving reader read.
    first_line: String,
    /// Standard error, when its reader stayed.
    stderr: String,
}

/// The binary, with none of Temporal's environment from the caller's shell.
fn binary(args: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .args(args)
        .stdin(Stdio::null())
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("TEMPORAL_API_KEY")
        .env_remove("SCHEDULE_SYNC_REVISION")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE");
    command
}

/// A pipe whose buffer holds [`PIPE_BUFFER`] bytes.
fn small_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    let (reader, writer) = std::io::pipe().unwrap();
    // SAFETY: F_SETPIPE_SZ on a pipe this function owns; no memory is involved.
    let size = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BUFFER as i32) };
    assert_eq!(
        size,
        PIPE_BUFFER as i32,
        "cannot set the pipe's buffer: {}",
        std::io::Error::last_os_error()
    );
    (reader, writer)
}

/// Runs the binary with `args`; the reader of `leaving` reads one line and
/// closes the pipe, the other stream is read to its end.
fn run_until_reader_leaves(args: &[String], leaving: Leaving) -> Ended {
    let (mut reader, writer) = small_pipe();
    let mut command = binary(args);
    match leaving {
        Leaving::Stdout | Leaving::StdoutAtOnce => command.stdout(writer).stderr(Stdio::piped()),
        Leaving::Stderr => command.stderr(writer).stdout(Stdio::piped()),
    };
    let lines = if leaving == Leaving::StdoutAtOnce {
        0
    } else {
        1
    };
    let mut child = command.spawn().expect("the binary runs");
    // The parent's copy of the pipe's writing end goes with the command.
    drop(command);
    let pid = child.id();
    let other = match leaving {
        Leaving::Stdout | Leaving::StdoutAtOnce => {
            Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>
        }
        Leaving::Stderr => Box::new(child.stdout.take().unwrap()),
    };
    let other = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = { other }.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let first_line = std::thread::spawn(move || {
        // Byte by byte: the reader takes the first line and nothing more.
        let mut line = Vec::new();
        let mut byte = [0u8];
        while lines > 0 && reader.read(&mut byte).unwrap_or(0) == 1 {
            line.push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
        drop(reader);
        String::from_utf8_lossy(&line).into_owned()
    });
    let (done, ended) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = match ended.recv_timeout(RUN_LIMIT) {
        Ok(status) => status.expect("waits for the binary"),
        Err(_) => {
            // SAFETY: a signal to our own child, which has not been reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{args:?} did not end within {RUN_LIMIT:?} once its reader left");
        }
    };
    let other = other.join().unwrap();
    Ended {
        code: status.code(),
        first_line: first_line.join().unwrap(),
        stderr: if leaving == Leaving::Stderr {
            String::new()
        } else {
            other
        },
    }
}

/// Asserts that `case`'s output overflows `at_least` bytes, so that a run
/// into [`small_pipe`] must meet the closed pipe. Only for commands that
/// write nothing to Temporal.
fn assert_output_overflows(case: &Case, at_least: usize) {
    let output = binary(&case.args).output().expect("the binary runs");
    let printed = match case.leaving {
        Leaving::Stdout | Leaving::StdoutAtOnce => output.stdout.len(),
        Leaving::Stderr => output.stderr.len(),
    };
    assert!(
        printed > at_least,
        "{:?} prints {printed} bytes, no more than {at_least}: the pipe would not overflow",
        case.args
    );
    assert_eq!(output.status.code(), Some(case.exit_code), "{case:?}");
}

/// Runs `case` its rounds, each into a pipe whose reader leaves after the
/// first line, and asserts that every run ends with the case's exit code,
/// quietly.
fn assert_quiet_when_the_reader_leaves(case: &Case) {
    for round in 0..case.rounds {
        let ended = run_until_reader_leaves(&case.args, case.leaving);
        let what = format!(
            "{:?}, round {round}, first line {:?}, stderr:\n{}",
            case.args, ended.first_line, ended.stderr
        );
        if case.leaving != Leaving::StdoutAtOnce {
            assert!(!ended.first_line.is_empty(), "nothing was printed: {what}");
        }
        assert_ne!(ended.code, Some(101), "it panicked: {what}");
        assert!(!ended.stderr.contains("panicked"), "it panicked: {what}");
        assert!(
            !ended.stderr.contains("Broken pipe") && !ended.stderr.contains("os error 32"),
            "a reader leaving is no error to report: {what}"
        );
        assert_eq!(ended.code, Some(case.exit_code), "{what}");
    }
}

/// A workflow id long enough that a few hundred schedules print more than
/// [`DEFAULT_PIPE_BUFFER`].
fn long_id(i: usize) -> String {
    format!("w{i:04}-{}", "x".repeat(100))
}

/// A project folder named `name` with [`SCHEDULES`] workflows, each
/// scheduled; `extra` goes into each `schedule:` block.
fn big_project(name: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("project.yaml"),
        format!("name: {name}\ntask_queue: q\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    for i in 0..SCHEDULES {
        let id = long_id(i);
        std::fs::write(
            dir.path().join(format!("workflows/{id}.yaml")),
            format!(
                "id: {id}\nschedule:\n  cron: \"{} {} * * *\"\n{extra}",
                i % 60,
                i % 24
            ),
        )
        .unwrap();
    }
    dir
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

#[test]
fn commands_without_temporal_exit_quietly_with_their_own_code_when_the_reader_leaves() {
    // Every workflow misspells a key: hundreds of diagnostics.
    let broken = big_project("pipe", "  timezon: UTC\n");
    let cases = [
        Case::new(&["validate", path(broken.path())], 1),
        Case::new(&["validate", path(broken.path()), "--format", "json"], 1),
        Case::new(&["schema", "workflow"], 0),
        Case::new(&["completions", "bash"], 0),
        Case::new(&["completions", "zsh"], 0),
    ];
    for case in &cases {
        // More than the pipe holds and the reader takes (a short first line).
        assert_output_overflows(case, PIPE_BUFFER + 1024);
    }
    assert_output_overflows(&cases[0], DEFAULT_PIPE_BUFFER);
    // The manual page and clap's help are too short to overflow a pipe:
    // their reader is gone before they print.
    let short = [
        Case::new(&["man"], 0).reader_leaves_at_once(),
        Case::new(&["--help"], 0).reader_leaves_at_once(),
        Case::new(&["validate", "--help"], 0).reader_leaves_at_once(),
    ];
    for case in short.iter().chain(&cases) {
        assert_quiet_when_the_reader_leaves(case);
    }
}

// Multi-threaded: the runs block the test's thread, and the store's
// connection must go on being served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_against_temporal_exit_quietly_and_apply_makes_every_write() {
    let server = support::dev_server().await;
    let address = server.address();
    let store = TemporalStore::new(
        support::client(&server).await,
        server.namespace().to_owned(),
        true,
    );

    // `plan` of a project that Temporal does not hold yet: every schedule
    // is a create, with its next firing times.
    let planned = big_project("pipe-plan", "");
    let plans = [
        Case::new(&["plan", path(planned.path())], 2),
        Case::new(&["plan", path(planned.path()), "--format", "json"], 2),
    ];
    assert_output_overflows(&plans[0].clone().against(&address), DEFAULT_PIPE_BUFFER);
    for case in plans {
        assert_quiet_when_the_reader_leaves(&case.rounds(10).against(&address));
    }

    // `apply` prints after its writes, and logs each write as it makes it:
    // its output's reader leaving mid-way, or its logs' reader, stops the
    // printing and nothing else. A fresh project each round.
    let rounds = [Leaving::Stdout, Leaving::Stdout, Leaving::Stderr];
    for (round, leaving) in rounds.into_iter().enumerate() {
        let name = format!("pipe-apply-{round}");
        let project = big_project(&name, "");
        let mut case = Case::new(&["apply", path(project.path())], 0)
            .rounds(1)
            .against(&address);
        if leaving == Leaving::Stderr {
            case = case.logs_reader_leaves();
        }
        assert_quiet_when_the_reader_leaves(&case);
        let wanted: std::collections::BTreeSet<String> = (0..SCHEDULES)
            .map(|i| format!("{name}.{}", long_id(i)))
            .collect();
        support::eventually(60, "every schedule of the apply is listed", || async {
            let listed = store.list(&name).await.unwrap();
            let listed: std::collections::BTreeSet<String> = listed
                .schedules
                .into_iter()
                .map(|s| s.schedule_id)
                .filter(|id| !support::is_fence(id))
                .collect();
            listed == wanted
        })
        .await;
    }

    // `status` of the project the first apply made: the table, its JSON, and
    // `--watch`, which prints again and again until its reader leaves, then
    // ends with 0 instead of printing into the void forever.
    let watched = big_project("pipe-apply-0", "");
    let statuses = [
        Case::new(&["status", path(watched.path())], 0),
        Case::new(&["status", path(watched.path()), "--format", "json"], 0),
        Case::new(
            &[
                "status",
                path(watched.path()),
                "--watch",
                "--interval",
                "1s",
            ],
            0,
        ),
    ];
    assert_output_overflows(&statuses[1].clone().against(&address), DEFAULT_PIPE_BUFFER);
    for case in statuses {
        assert_quiet_when_the_reader_leaves(&case.rounds(2).against(&address));
    }

    // `import` of the schedules the first apply made, into a new folder
    // each round; it writes nothing to Temporal.
    for _ in 0..3 {
        let into = tempfile::tempdir().unwrap();
        let case = Case::new(
            &["import", path(into.path()), "--project", "pipe-apply-0"],
            0,
        )
        .rounds(1)
        .against(&address);
        assert_quiet_when_the_reader_leaves(&case);
    }
    let into = tempfile::tempdir().unwrap();
    assert_output_overflows(
        &Case::new(
            &["import", path(into.path()), "--project", "pipe-apply-0"],
            0,
        )
        .against(&address),
        DEFAULT_PIPE_BUFFER,
    );
}
