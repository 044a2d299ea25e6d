//! Standard output and standard error, written through one path.
//!
//! A reader that leaves early (`plan | head -1`, `grep -q`, quitting `less`)
//! closes its end of the pipe, and the next write fails with a broken pipe
//! (Rust ignores SIGPIPE, so the process is not killed). That is no failure
//! of the command: nothing more is written to that stream, and the command
//! finishes its work and exits with its own exit code. `apply` carries out
//! every write to Temporal whoever reads its output, and `serve` keeps
//! serving when nobody reads its logs.
//!
//! Everything the binary prints goes through [`write`]: the commands'
//! output (the [`outln!`] and [`errln!`] macros), clap's help and errors,
//! the logs ([`Logs`], the tracing subscriber's writer) and the progress bar
//! ([`ProgressTerm`]). Any other failure to write standard output (a full
//! disk, say) means the output is lost: [`finish`] reports it on standard
//! error and the command exits 1.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// One of the two streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output: the command's result.
    Out,
    /// Standard error: diagnostics, logs and the progress bar.
    Err,
}

/// Whether the reader of standard output, and of standard error, has left.
static LEFT: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];
/// The first failure to write standard output other than a reader leaving.
static LOST: OnceLock<io::Error> = OnceLock::new();

impl Stream {
    fn left(self) -> &'static AtomicBool {
        &LEFT[self as usize]
    }

    /// Whether the reader of this stream has left (a closed pipe): a
    /// command that prints again and again stops then.
    pub(crate) fn reader_left(self) -> bool {
        self.left().load(Ordering::Relaxed)
    }

    /// Whether this stream is a terminal.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn is_terminal(self) -> bool {
        match self {
            Stream::Out => io::stdout().is_terminal(),
            Stream::Err => io::stderr().is_terminal(),
        }
    }

    /// Whether to colour what is written here: only for a person at a
    /// terminal, and never under `NO_COLOR`.
    pub(crate) fn colour(self) -> bool {
        self.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }
}

/// Writes `bytes` to `stream` and flushes it. Once its reader has left,
/// nothing more is written to it; no error ever reaches the caller.
#[allow(clippy::disallowed_methods)]
pub(crate) fn write(stream: Stream, bytes: &[u8]) {
    if bytes.is_empty() || stream.left().load(Ordering::Relaxed) {
        return;
    }
    let written = match stream {
        Stream::Out => {
            let mut out = io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Stream::Err => io::stderr().lock().write_all(bytes),
    };
    if let Err(error) = written {
        stream.left().store(true, Ordering::Relaxed);
        if error.kind() != io::ErrorKind::BrokenPipe && stream == Stream::Out {
            let _ = LOST.set(error);
        }
        // Standard error that fails otherwise has nowhere to report to:
        // it is given up as if its reader had left.
    }
}

/// Formats and writes to `stream` (for the macros).
pub(crate) fn write_fmt(stream: Stream, args: std::fmt::Arguments<'_>) {
    match args.as_str() {
        Some(text) => write(stream, text.as_bytes()),
        None => write(stream, args.to_string().as_bytes()),
    }
}

/// `println!` through [`write`]: a closed pipe ends the printing, not the
/// command.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_fmt(
            $crate::output::Stream::Out,
            format_args!("{}\n", format_args!($($arg)*)),
        )
    };
}

/// `eprintln!` through [`write`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_fmt(
            $crate::output::Stream::Err,
            format_args!("{}\n", format_args!($($arg)*)),
        )
    };
}

pub(crate) use {errln, outln};

/// The exit code of a command that would exit with `code`: `code` itself,
/// also when a reader left early, unless standard output failed otherwise
/// (then its output is lost: 1, with the reason on standard error).
pub(crate) fn finish(code: ExitCode) -> ExitCode {
    match LOST.get() {
        Some(error) => {
            errln!("error: cannot write to standard output: {error}");
            ExitCode::FAILURE
        }
        None => code,
    }
}

/// The tracing subscriber's writer: log lines on standard error, through
/// [`write`]. It never fails, so the subscriber never reports (or panics
/// on) a failed write.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Logs;

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write(Stream::Err, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tracing_subscriber::fmt::MakeWriter<'_> for Logs {
    type Writer = Logs;

    fn make_writer(&self) -> Logs {
        Logs
    }
}

/// The progress bar's terminal: standard error, through [`write`]. A frame
/// is collected and written at once when indicatif flushes it.
#[derive(Debug, Default)]
pub(crate) struct ProgressTerm {
    frame: Mutex<String>,
}

impl ProgressTerm {
    /// A draw target on standard error when it is a terminal that can draw
    /// (not `TERM=dumb`); hidden otherwise, as indicatif does by itself.
    pub(crate) fn draw_target() -> indicatif::ProgressDrawTarget {
        let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
        if Stream::Err.is_terminal() && !dumb {
            indicatif::ProgressDrawTarget::term_like_with_hz(Box::new(ProgressTerm::default()), 20)
        } else {
            indicatif::ProgressDrawTarget::hidden()
        }
    }

    fn push(&self, text: &str) -> io::Result<()> {
        self.frame
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_str(text);
        Ok(())
    }

    fn cursor(&self, n: usize, direction: char) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.push(&format!("\x1b[{n}{direction}"))
    }
}

impl indicatif::TermLike for ProgressTerm {
    fn width(&self) -> u16 {
        console::Term::stderr().size().1
    }

    fn height(&self) -> u16 {
        console::Term::stderr().size().0
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.push(s)?;
        self.push("\n")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.push(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.push("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        let frame = std::mem::take(
            &mut *self
                .frame
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        write(Stream::Err, frame.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use indicatif::TermLike;

    use super::*;

    #[test]
    fn a_progress_frame_is_collected_until_flushed() {
        let term = ProgressTerm::default();
        term.clear_line().unwrap();
        term.move_cursor_up(0).unwrap();
        term.move_cursor_up(2).unwrap();
        term.write_line("3/10").unwrap();
        assert_eq!(
            *term.frame.lock().unwrap(),
            "\r\x1b[2K\x1b[2A3/10\n",
            "nothing is written before the flush"
        );
    }
}
