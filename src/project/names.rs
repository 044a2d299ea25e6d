//! The characters allowed in project names and workflow ids.
//!
//! Both end up inside Temporal schedule ids and workflow ids, so they are kept
//! to a small safe set: ASCII letters, digits, `-`, `_` and `.` for workflow
//! ids; lowercase letters, digits and `-` for project names (a DNS label, as in
//! Kubernetes). Neither can hold `/`, which separates them in a schedule id.

/// The longest project name.
pub const MAX_PROJECT_NAME: usize = 63;
/// The longest workflow id.
pub const MAX_WORKFLOW_ID: usize = 128;
/// The longest workflow type or task queue name.
pub const MAX_TEMPORAL_NAME: usize = 1000;

/// What a project name must look like, for messages.
pub const PROJECT_NAME_RULE: &str =
    "1-63 lowercase letters, digits and `-`, starting with a letter and not ending with `-`";
/// What a workflow id must look like, for messages.
pub const WORKFLOW_ID_RULE: &str =
    "1-128 ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit";

/// The longest schedule id a workflow file may name.
pub const MAX_SCHEDULE_ID: usize = 200;
/// What a schedule's own id must look like, for messages.
pub const SCHEDULE_ID_RULE: &str =
    "1-200 ASCII letters, digits, `-`, `_`, `.` and `:`, starting with a letter or digit";

/// Whether `id` is a schedule id a workflow file may name (`schedule.id`).
pub fn is_schedule_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_SCHEDULE_ID
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Whether `name` is a valid project name.
pub fn is_project_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_PROJECT_NAME
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Whether `id` is a valid workflow id.
pub fn is_workflow_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_WORKFLOW_ID
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Why a workflow type or task queue name is refused, if it is.
pub fn temporal_name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("it is empty")
    } else if name.trim() != name {
        Some("it starts or ends with white space")
    } else if name.len() > MAX_TEMPORAL_NAME {
        Some("it is longer than 1000 bytes")
    } else if name.chars().any(char::is_control) {
        Some("it holds a control character")
    } else {
        None
    }
}

/// The id of the schedule of `workflow` in `project`.
///
/// ```
/// assert_eq!(schedule_sync::project::names::schedule_id("billing", "nightly-report"), "billing.nightly-report");
/// ```
pub fn schedule_id(project: &str, workflow: &str) -> String {
    format!("{project}.{workflow}")
}

/// Whether `schedule_id` belongs to `project` by its form.
///
/// ```
/// use schedule_sync::project::names::owns_id;
/// assert!(owns_id("foo", "foo.report"));
/// assert!(!owns_id("foo", "foo-bar.report"));
/// ```
pub fn owns_id(project: &str, schedule_id: &str) -> bool {
    schedule_id
        .strip_prefix(project)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|workflow| !workflow.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_dns_labels() {
        for good in ["billing", "a", "team-7", "x1"] {
            assert!(is_project_name(good), "{good}");
        }
        for bad in [
            "",
            "Billing",
            "7team",
            "team-",
            "a_b",
            "a/b",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(!is_project_name(bad), "{bad}");
        }
    }

    #[test]
    fn workflow_ids_allow_dots_and_underscores() {
        for good in ["nightly-report", "Report_2", "a.b", "9lives"] {
            assert!(is_workflow_id(good), "{good}");
        }
        for bad in ["", "-a", ".a", "a/b", "a b", "é", &"a".repeat(129)] {
            assert!(!is_workflow_id(bad), "{bad}");
        }
    }

    #[test]
    fn temporal_names_refuse_blank_and_padded_text() {
        assert_eq!(temporal_name_problem("reports"), None);
        assert!(temporal_name_problem(" ").is_some());
        assert!(temporal_name_problem(" q").is_some());
        assert!(temporal_name_problem("a\u{7}").is_some());
    }
}
