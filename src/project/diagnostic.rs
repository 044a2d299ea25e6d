//! Problems found in a project, each tied to a file, a line and a column, and
//! rendered with a snippet of the source.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::node::Position;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The project is invalid; nothing is sent to Temporal.
    Error,
    /// Worth a look, but the project stays valid.
    Warning,
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, relative to the project folder.
    pub file: PathBuf,
    /// Line, from 1; 0 when the problem concerns the whole file.
    pub line: u32,
    /// Column, from 1; 0 when the problem concerns the whole file.
    pub column: u32,
    /// What is wrong, naming what was found.
    pub message: String,
    /// What would have been right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// A likely fix, such as the key that a misspelt key was meant to be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The source line at fault with a caret under the column, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    /// Another place that takes part in the problem (the first of two duplicates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<Related>,
}

/// A second place named by a diagnostic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Related {
    /// The file, relative to the project folder.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// What stands there.
    pub note: String,
}

impl Diagnostic {
    /// An error at a position of a file.
    #[doc(hidden)]
    pub fn error(file: &Path, at: Position, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_owned(),
            line: at.line,
            column: at.column,
            message: message.into(),
            expected: None,
            help: None,
            snippet: None,
            related: None,
        }
    }

    /// A warning at a position of a file.
    #[doc(hidden)]
    pub fn warning(file: &Path, at: Position, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, at, message)
        }
    }

    /// Adds what was expected.
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Adds a likely fix.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a second place that takes part in the problem.
    pub fn related(mut self, related: Related) -> Self {
        self.related = Some(related);
        self
    }

    /// Attaches the source line under the diagnostic's position, with a caret.
    pub fn with_snippet(mut self, source: &str) -> Self {
        self.snippet = snippet(source, self.line, self.column);
        self
    }

    /// Whether this is an error rather than a warning.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Renders line `line` of `source` with a gutter and a caret under `column`.
fn snippet(source: &str, line: u32, column: u32) -> Option<String> {
    const MAX_WIDTH: usize = 160;
    let index = usize::try_from(line.checked_sub(1)?).ok()?;
    let text = source.lines().nth(index)?;
    let text: String = text.chars().take(MAX_WIDTH).collect();
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    let caret_at = usize::try_from(column.saturating_sub(1))
        .unwrap_or(0)
        .min(text.chars().count());
    // Keep tabs in the caret line so that the caret lines up under them.
    let lead: String = text
        .chars()
        .take(caret_at)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{number} | {text}");
    let _ = write!(out, "{pad} | {lead}^");
    Some(out)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{label}: {}", self.message)?;
        if self.line == 0 {
            write!(f, "  --> {}", self.file.display())?;
        } else {
            write!(
                f,
                "  --> {}:{}:{}",
                self.file.display(),
                self.line,
                self.column
            )?;
        }
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        if let Some(expected) = &self.expected {
            write!(f, "\n  = expected: {expected}")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        if let Some(related) = &self.related {
            write!(
                f,
                "\n  = note: {} at {}:{}:{}",
                related.note,
                related.file.display(),
                related.line,
                related.column
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_renders_file_line_snippet_and_hints() {
        let source = "id: a\nschedule:\n  cronn: \"0 2 * * *\"\n";
        let diagnostic = Diagnostic::error(
            Path::new("workflows/a.yaml"),
            Position { line: 3, column: 3 },
            "unknown key `cronn` in `schedule`",
        )
        .expected("one of cron, every")
        .help("did you mean `cron`?")
        .with_snippet(source);
        assert_eq!(
            diagnostic.to_string(),
            "error: unknown key `cronn` in `schedule`\n  --> workflows/a.yaml:3:3\n  |\n3 |   cronn: \"0 2 * * *\"\n  |   ^\n  = expected: one of cron, every\n  = help: did you mean `cron`?"
        );
    }

    #[test]
    fn a_whole_file_problem_has_no_line() {
        let diagnostic = Diagnostic::error(Path::new("big.yaml"), Position::default(), "too big")
            .with_snippet("x: 1\n");
        assert_eq!(diagnostic.to_string(), "error: too big\n  --> big.yaml");
    }
}
