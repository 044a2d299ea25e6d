//! Finding the workflow files that the project's globs name, and reading a
//! file into a node tree within fixed limits.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSetBuilder};

use super::diagnostic::Diagnostic;
use super::node::{Node, Position, WorkflowRoot};

/// The largest project or workflow file we read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// The most workflow files one project may have.
pub const MAX_WORKFLOW_FILES: usize = 100_000;
/// How deep below the project folder the walk goes.
pub const MAX_DEPTH: usize = 64;

/// The files that the globs matched, and what went wrong on the way.
pub struct Found {
    /// Relative paths, sorted, without duplicates.
    pub files: Vec<PathBuf>,
    /// Globs that matched nothing, unreadable folders, symlink loops.
    pub diagnostics: Vec<Diagnostic>,
}

/// The folder part of a glob that holds no pattern characters, where a walk
/// for it may start.
fn literal_base(glob: &str) -> PathBuf {
    let mut base = PathBuf::new();
    let components: Vec<Component<'_>> = Path::new(glob).components().collect();
    for (i, component) in components.iter().enumerate() {
        let text = component.as_os_str().to_string_lossy();
        if i + 1 == components.len() || text.contains(['*', '?', '[', ']', '{', '}', '\\']) {
            break;
        }
        base.push(component);
    }
    base
}

/// Walks the project folder for the files matching `globs`, each given with
/// its position in `project.yaml`.
pub fn find(dir: &Path, project_file: &Path, globs: &[(String, Position)]) -> Found {
    let mut diagnostics = Vec::new();
    let mut set = GlobSetBuilder::new();
    for (text, _) in globs {
        // Checked when project.yaml was read, so indices match `globs`.
        if let Ok(glob) = Glob::new(text) {
            set.add(glob);
        }
    }
    let Ok(set) = set.build() else {
        return Found {
            files: Vec::new(),
            diagnostics,
        };
    };
    let mut hits = vec![0usize; globs.len()];
    let mut files = BTreeSet::new();
    let bases: BTreeSet<PathBuf> = globs.iter().map(|(g, _)| literal_base(g)).collect();
    let mut too_many = false;
    // Where the project really is, to tell a symbolic link that leads out.
    let real_dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());

    for base in &bases {
        // A base inside another base is walked with it.
        if bases
            .iter()
            .any(|other| other != base && base.starts_with(other))
        {
            continue;
        }
        let root = dir.join(base);
        if let Some(problem) = unreadable_base(dir, base) {
            diagnostics.push(problem);
            continue;
        }
        if std::fs::symlink_metadata(&root).is_err() {
            // Nothing there at all: the glob matches no file (a warning below).
            continue;
        }
        if let Some(outside) = leads_out(&real_dir, &root, base) {
            diagnostics.push(outside);
            continue;
        }
        let mut walker = walkdir::WalkDir::new(&root)
            .follow_links(true)
            .max_depth(MAX_DEPTH)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = walker.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    let path = error.path().map_or_else(|| root.clone(), Path::to_path_buf);
                    let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
                    let editor_lock = relative
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(".#"));
                    if error.loop_ancestor().is_some() {
                        // Its folder is walked already: no file is missed.
                        diagnostics.push(Diagnostic::warning(
                            &relative,
                            Position::default(),
                            "skipped: a symbolic link loops back to a folder above it",
                        ));
                    } else if editor_lock {
                        // Emacs keeps its lock files as dangling links.
                        diagnostics.push(Diagnostic::warning(
                            &relative,
                            Position::default(),
                            "skipped: an editor's lock file",
                        ));
                    } else {
                        diagnostics.push(walk_error(&relative, &path, &error.to_string()));
                    }
                    continue;
                }
            };
            let Ok(relative) = entry.path().strip_prefix(dir) else {
                continue;
            };
            // A link that leads out of the project is refused, and what it
            // points to is never read: it could be any file of the machine.
            if entry.path_is_symlink()
                && (entry.file_type().is_dir() || !set.matches(relative).is_empty())
                && let Some(outside) = leads_out(&real_dir, entry.path(), relative)
            {
                diagnostics.push(outside);
                if entry.file_type().is_dir() {
                    walker.skip_current_dir();
                }
                continue;
            }
            let matched = set.matches(relative);
            if matched.is_empty() || relative == project_file {
                continue;
            }
            for index in &matched {
                hits[*index] += 1;
            }
            if entry.file_type().is_dir() {
                diagnostics.push(Diagnostic::warning(
                    relative,
                    Position::default(),
                    "skipped: a folder matches the workflow glob",
                ));
                continue;
            }
            if !entry.file_type().is_file() {
                // A FIFO or device would block or never end when read.
                diagnostics.push(Diagnostic::warning(
                    relative,
                    Position::default(),
                    "skipped: not a regular file",
                ));
                continue;
            }
            if files.len() >= MAX_WORKFLOW_FILES {
                too_many = true;
                break;
            }
            files.insert(relative.to_path_buf());
        }
    }
    if too_many {
        diagnostics.push(
            Diagnostic::error(
                project_file,
                Position::default(),
                format!("the workflow globs match more than {MAX_WORKFLOW_FILES} files"),
            )
            .expected("globs that name only the project's workflow files"),
        );
    }
    for ((text, at), count) in globs.iter().zip(hits) {
        if count == 0 {
            diagnostics.push(Diagnostic::warning(
                project_file,
                *at,
                format!("the glob {text:?} matches no file"),
            ));
        }
    }
    Found {
        files: files.into_iter().collect(),
        diagnostics,
    }
}

/// An error when `path`, once its symbolic links are resolved, is not inside
/// the project folder `real_dir`.
pub(super) fn leads_out(real_dir: &Path, path: &Path, relative: &Path) -> Option<Diagnostic> {
    let real = path.canonicalize().ok()?;
    (!real.starts_with(real_dir)).then(|| {
        Diagnostic::error(
            relative,
            Position::default(),
            format!(
                "refused: a symbolic link leads out of the project folder, to {}",
                real.display()
            ),
        )
        .expected(
            "files and folders inside the project folder (copy the file in instead of linking it)",
        )
    })
}

/// An error of the project for a path that cannot be walked: a dangling
/// symbolic link, a folder that cannot be read. The schedules under it would
/// otherwise look deleted, so the project does not load.
fn walk_error(relative: &Path, path: &Path, reason: &str) -> Diagnostic {
    let dangling = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::metadata(path).is_err();
    let message = if dangling {
        let target = std::fs::read_link(path)
            .map(|t| format!(" (to {})", t.display()))
            .unwrap_or_default();
        format!("cannot read the project: a symbolic link points to nothing{target}")
    } else {
        format!("cannot read the project: {reason}")
    };
    Diagnostic::error(relative, Position::default(), message)
        .expected("a readable file or folder; nothing is sent to Temporal while part of the project cannot be read")
}

/// Whether the folder a glob starts from, or one above it inside the
/// project, is a dangling link or cannot be read.
fn unreadable_base(dir: &Path, base: &Path) -> Option<Diagnostic> {
    let mut path = dir.to_path_buf();
    for component in base.components() {
        path.push(component);
        match std::fs::metadata(&path) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let is_link = std::fs::symlink_metadata(&path).is_ok();
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                // A link that points nowhere is an error; a folder that is
                // simply not there makes a glob that matches nothing.
                return is_link.then(|| walk_error(relative, &path, &error.to_string()));
            }
            Err(error) => {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                return Some(walk_error(relative, &path, &error.to_string()));
            }
        }
    }
    None
}

/// Reads `dir/relative` as UTF-8 text within [`MAX_FILE_BYTES`].
///
/// # Errors
///
/// A whole-file diagnostic when the file is missing, unreadable, too large or
/// not UTF-8.
pub fn read(dir: &Path, relative: &Path) -> Result<String, Box<Diagnostic>> {
    use std::io::Read;
    let whole_file = |message: String| {
        Box::new(
            Diagnostic::error(relative, Position::default(), message)
                .expected("a readable UTF-8 text file"),
        )
    };
    let path = dir.join(relative);
    let file =
        std::fs::File::open(&path).map_err(|e| whole_file(format!("cannot open the file: {e}")))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell a full-size file from a larger one
    // without trusting the metadata (a FIFO or /dev/zero has none).
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| whole_file(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        let mut diagnostic = whole_file(format!(
            "the file is larger than {} KiB",
            MAX_FILE_BYTES / 1024
        ));
        diagnostic.expected = Some("a file of at most 1 MiB".to_owned());
        return Err(diagnostic);
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = String::from_utf8_lossy(valid);
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let at = Position {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        };
        Box::new(
            Diagnostic::error(relative, at, "the file is not UTF-8 text")
                .expected("a readable UTF-8 text file")
                .with_snippet(&String::from_utf8_lossy(e.as_bytes())),
        )
    })
}

/// The parser options: duplicate keys are errors, booleans are YAML 1.2's,
/// and budgets stop alias bombs and deep nesting early.
fn options() -> serde_saphyr::Options {
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 20_000;
    alias_limits.max_replay_stack_depth = 16;
    alias_limits.max_alias_expansions_per_anchor = 100;
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 64,
            max_nodes: 200_000,
            max_documents: 1,
        },
        alias_limits: alias_limits,
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
        strict_booleans: true,
    }
}

/// How a file's root is read: whole ([`Node`]) or shallow ([`WorkflowRoot`]).
pub trait Root: serde::de::DeserializeOwned {
    /// The tree.
    fn into_node(self) -> Node;
}

impl Root for Node {
    fn into_node(self) -> Node {
        self
    }
}

impl Root for WorkflowRoot {
    fn into_node(self) -> Node {
        self.0
    }
}

/// Parses YAML text into a node tree.
///
/// # Errors
///
/// A diagnostic at the parser's position, with its message.
pub fn parse<T: Root>(relative: &Path, source: &str) -> Result<Node, Box<Diagnostic>> {
    if source.trim().is_empty() {
        return Ok(Node {
            value: super::node::Value::Null,
            at: Position { line: 1, column: 1 },
        });
    }
    let parsed = serde_saphyr::from_str_with_options::<T>(source, options());
    parsed.map(T::into_node).map_err(|error| {
        let at = error
            .location()
            .map(|l| Position {
                line: u32::try_from(l.line()).unwrap_or(0),
                column: u32::try_from(l.column()).unwrap_or(0),
            })
            .unwrap_or_default();
        let message = error.render_with_options(serde_saphyr::render_options! {
            snippets: serde_saphyr::SnippetMode::Off,
        });
        Box::new(
            Diagnostic::error(
                relative,
                at,
                format!("invalid YAML: {}", strip_location(&message)),
            )
            .expected("a well-formed YAML document")
            .with_snippet(source),
        )
    })
}

/// Drops the parser's own ` at line X column Y` suffix (the diagnostic has
/// it) and its advice to programmers.
fn strip_location(message: &str) -> &str {
    let first = message.lines().next().unwrap_or(message);
    let first = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    match first.find(", set DuplicateKeyPolicy") {
        Some(i) => &first[..i],
        None => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_starts_below_the_literal_part_of_a_glob() {
        assert_eq!(
            literal_base("workflows/**/*.yaml"),
            PathBuf::from("workflows")
        );
        assert_eq!(literal_base("a/b/*.yaml"), PathBuf::from("a/b"));
        assert_eq!(literal_base("*.yaml"), PathBuf::new());
        assert_eq!(literal_base("one.yaml"), PathBuf::new());
        assert_eq!(literal_base("x/{a,b}/c.yaml"), PathBuf::from("x"));
    }

    #[test]
    fn a_link_out_of_the_project_is_refused_and_never_read() {
        let outside = tempfile::tempdir().unwrap();
        let token = outside.path().join("token");
        std::fs::write(&token, "id: leak\nschedule:\n  cron: tk-Secret-4f9a2b\n").unwrap();
        let shared = outside.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::write(
            shared.join("x.yaml"),
            "id: x\nschedule:\n  cron: tk-Other-77c1\n",
        )
        .unwrap();

        let project = tempfile::tempdir().unwrap();
        let dir = project.path();
        std::fs::write(dir.join("project.yaml"), "name: p\ntask_queue: q\n").unwrap();
        std::fs::create_dir(dir.join("workflows")).unwrap();
        std::fs::write(
            dir.join("workflows/a.yaml"),
            "id: a\nschedule:\n  cron: \"@daily\"\n",
        )
        .unwrap();
        // A link inside the project is fine.
        std::os::unix::fs::symlink("a.yaml", dir.join("workflows/b.yaml")).unwrap();
        std::os::unix::fs::symlink(&token, dir.join("workflows/leak.yaml")).unwrap();
        std::os::unix::fs::symlink(&shared, dir.join("workflows/shared")).unwrap();

        let invalid = crate::project::load(dir).unwrap_err();
        let refused: Vec<&Diagnostic> = invalid
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && d.message.contains("leads out of the project"))
            .collect();
        let files: Vec<String> = refused
            .iter()
            .map(|d| d.file.display().to_string())
            .collect();
        assert_eq!(
            files,
            ["workflows/leak.yaml", "workflows/shared"],
            "{invalid:?}"
        );
        let everything = format!("{invalid:?}");
        assert!(!everything.contains("tk-Secret-4f9a2b"), "{everything}");
        assert!(!everything.contains("tk-Other-77c1"), "{everything}");
    }

    #[test]
    fn a_project_file_that_links_out_is_never_read() {
        let outside = tempfile::tempdir().unwrap();
        let token = outside.path().join("temporal.toml");
        std::fs::write(&token, "api_key = \"tk-Proj-9d8c7b\"\n").unwrap();
        let project = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&token, project.path().join("project.yaml")).unwrap();
        let invalid = crate::project::load(project.path()).unwrap_err();
        let everything = format!("{invalid:?}");
        assert!(
            everything.contains("leads out of the project"),
            "{everything}"
        );
        assert!(!everything.contains("tk-Proj-9d8c7b"), "{everything}");
    }
}
