//! A plan as Markdown, made to be posted as a pull-request comment: what
//! changes first (creates, updates with their field differences, pauses,
//! resumes, deletes, held deletions), each with its next firing times, then
//! what is left alone, with the unchanged schedules folded away.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{Plan, Step, Untouched};
use crate::compare::changes::FieldChange;

/// What the comment is about: the project, and where its plan applies.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Heading {
    /// The project's name.
    pub project: String,
    /// The environment, when one was selected.
    pub environment: Option<String>,
    /// The namespace the plan was made against.
    pub namespace: String,
    /// The server, as `host:port`.
    pub address: String,
}

impl Heading {
    /// A heading for `project` in `namespace` at `address`, in
    /// `environment` when one was selected.
    pub fn new(project: &str, environment: Option<&str>, namespace: &str, address: &str) -> Self {
        Heading {
            project: project.to_owned(),
            environment: environment.map(str::to_owned),
            namespace: namespace.to_owned(),
            address: address.to_owned(),
        }
    }
}

/// Renders `plan` as Markdown. `changes` holds the field differences of
/// each update, `next` the next firing times of each created or updated
/// schedule.
pub fn render(
    heading: &Heading,
    plan: &Plan,
    changes: &BTreeMap<String, Vec<FieldChange>>,
    next: &BTreeMap<String, Vec<DateTime<Utc>>>,
) -> String {
    let mut out = String::new();
    let place = heading
        .environment
        .as_deref()
        .map_or_else(String::new, |e| format!(" in `{}`", code(e)));
    let _ = writeln!(
        out,
        "### schedule-sync plan: `{}`{place}\n",
        code(&heading.project)
    );
    let _ = writeln!(
        out,
        "Namespace `{}` at `{}`: {}.\n",
        code(&heading.namespace),
        code(&heading.address),
        summary(plan)
    );
    if let Some(by) = plan.superseded_by() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> A newer writer holds this project ({}): apply would write nothing it \
             supersedes.\n",
            text(&by.to_string())
        );
    }
    for step in &plan.steps {
        step_section(&mut out, step, changes, next);
    }
    let held: Vec<&Untouched> = plan
        .untouched
        .iter()
        .filter(|u| matches!(u, Untouched::HeldDeletion { .. }))
        .collect();
    if !held.is_empty() {
        let _ = writeln!(out, "#### Deletions held back\n");
        for untouched in held {
            if let Untouched::HeldDeletion { schedule_id, why } = untouched {
                let why = match why {
                    super::HoldReason::IncompleteListing => {
                        "the listing of schedules was incomplete"
                    }
                    super::HoldReason::MassDelete => {
                        "it would delete more than half of the project's schedules; apply with \
                         `--allow-mass-delete` to go ahead"
                    }
                    super::HoldReason::Superseded => "a newer writer holds the project",
                };
                let _ = writeln!(out, "- `{}`: {why}", code(schedule_id));
            }
        }
        out.push('\n');
    }
    let alone: Vec<String> = plan
        .untouched
        .iter()
        .filter_map(|u| match u {
            Untouched::PausedByOperator { schedule_id } => Some(format!(
                "- `{}`: paused by an operator; the pause is kept",
                code(schedule_id)
            )),
            Untouched::Conflict { schedule_id, owner } => Some(format!(
                "- `{}`: conflict, {}; left alone",
                code(schedule_id),
                owner.as_deref().map_or_else(
                    || "it has no marker of this project".to_owned(),
                    |o| format!("it belongs to project `{}`", code(o))
                )
            )),
            Untouched::Ended { schedule_id } => Some(format!(
                "- `{}`: its `end_at` has passed; not created again",
                code(schedule_id)
            )),
            Untouched::Superseded {
                schedule_id,
                operation,
            } => Some(format!(
                "- `{}`: {operation} superseded by a newer writer",
                code(schedule_id)
            )),
            _ => None,
        })
        .collect();
    if !alone.is_empty() {
        let _ = writeln!(out, "#### Left alone\n\n{}\n", alone.join("\n"));
    }
    let unchanged: Vec<&str> = plan
        .untouched
        .iter()
        .filter_map(|u| match u {
            Untouched::Unchanged { schedule_id } => Some(schedule_id.as_str()),
            _ => None,
        })
        .collect();
    if !unchanged.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} unchanged</summary>\n",
            unchanged.len()
        );
        for id in unchanged {
            let _ = writeln!(out, "- `{}`", code(id));
        }
        let _ = writeln!(out, "\n</details>\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn summary(plan: &Plan) -> String {
    let mut counts: BTreeMap<usize, (&str, usize)> = BTreeMap::new();
    let mut count = |order: usize, label: &'static str| {
        counts.entry(order).or_insert((label, 0)).1 += 1;
    };
    for step in &plan.steps {
        match step {
            Step::Create { .. } => count(0, "to create"),
            Step::Update { .. } => count(1, "to update"),
            Step::Pause { .. } => count(2, "to pause"),
            Step::Unpause { .. } => count(3, "to resume"),
            Step::Delete { .. } => count(4, "to delete"),
        }
    }
    for untouched in &plan.untouched {
        match untouched {
            Untouched::HeldDeletion { .. } => count(5, "deletion(s) held"),
            Untouched::PausedByOperator { .. } => count(6, "paused by an operator"),
            Untouched::Conflict { .. } => count(7, "conflict(s)"),
            Untouched::Superseded { .. } => count(8, "superseded"),
            Untouched::Ended { .. } => count(9, "ended"),
            Untouched::Unchanged { .. } => count(10, "unchanged"),
        }
    }
    if counts.is_empty() {
        return "no schedules".to_owned();
    }
    let parts: Vec<String> = counts
        .values()
        .map(|(label, n)| format!("{n} {label}"))
        .collect();
    let pending = if plan.steps.is_empty() {
        "nothing to do"
    } else {
        "changes pending"
    };
    format!("{pending}; {}", parts.join(", "))
}

fn step_section(
    out: &mut String,
    step: &Step,
    changes: &BTreeMap<String, Vec<FieldChange>>,
    next: &BTreeMap<String, Vec<DateTime<Utc>>>,
) {
    let id = step.schedule_id();
    let title = match step {
        Step::Create { .. } => "Create".to_owned(),
        Step::Update { reason, adopt, .. } => match (reason, adopt) {
            (_, true) | (super::UpdateReason::Adopted, _) => "Adopt and update".to_owned(),
            (super::UpdateReason::EditedOutOfBand, _) => {
                "Update (edited outside the project, put back)".to_owned()
            }
            (super::UpdateReason::Changed, _) => "Update".to_owned(),
        },
        Step::Pause { .. } => "Pause".to_owned(),
        Step::Unpause { .. } => "Resume".to_owned(),
        Step::Delete { .. } => "Delete".to_owned(),
    };
    let _ = writeln!(out, "#### {title} `{}`\n", code(id));
    if let Step::Update {
        keep_operator_pause: true,
        ..
    } = step
    {
        let _ = writeln!(out, "An operator paused it; it stays paused.\n");
    }
    if let Some(fields) = changes.get(id).filter(|f| !f.is_empty()) {
        let _ = writeln!(out, "| field | now | after |\n|---|---|---|");
        for change in fields {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                change.field,
                cell(&change.current),
                cell(&change.desired)
            );
        }
        out.push('\n');
    }
    if let Some(times) = next.get(id).filter(|t| !t.is_empty()) {
        let times: Vec<String> = times
            .iter()
            .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
            .collect();
        let _ = writeln!(out, "Next: {}\n", times.join(", "));
    }
}

/// A value in a table cell: code, with what would break the table escaped.
fn cell(value: &str) -> String {
    if value.is_empty() {
        return "(none)".to_owned();
    }
    format!("<code>{}</code>", text(value))
}

/// Text with Markdown's and HTML's special characters made harmless.
fn text(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "&#124;")
        .replace('\n', " ")
}

/// Text for inside a code span (a backtick would end it).
fn code(value: &str) -> String {
    value.replace('`', "'").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{HoldReason, UpdateReason};
    use crate::project::fire_times::at;

    /// A plan with one of everything, rendered as `tests/golden/plan.md`
    /// holds it (`UPDATE_GOLDEN=1` rewrites the file).
    #[test]
    fn a_plan_renders_as_the_golden_markdown() {
        let id = |w: &str| format!("billing.{w}");
        let plan = Plan {
            steps: vec![
                Step::Create {
                    schedule_id: id("nightly-report"),
                },
                Step::Update {
                    schedule_id: id("invoice-sweep"),
                    keep_operator_pause: false,
                    adopt: false,
                    reason: UpdateReason::Changed,
                },
                Step::Update {
                    schedule_id: id("quarter-close"),
                    keep_operator_pause: true,
                    adopt: false,
                    reason: UpdateReason::EditedOutOfBand,
                },
                Step::Pause {
                    schedule_id: id("dunning"),
                },
                Step::Delete {
                    schedule_id: id("old-export"),
                },
            ],
            untouched: vec![
                Untouched::Unchanged {
                    schedule_id: id("refund"),
                },
                Untouched::Unchanged {
                    schedule_id: id("statements"),
                },
                Untouched::PausedByOperator {
                    schedule_id: id("ledger"),
                },
                Untouched::Conflict {
                    schedule_id: id("payouts"),
                    owner: None,
                },
                Untouched::Ended {
                    schedule_id: id("launch-promo"),
                },
                Untouched::HeldDeletion {
                    schedule_id: id("archive"),
                    why: HoldReason::MassDelete,
                },
            ],
            fence: crate::plan::FenceStep::None,
            record: std::collections::BTreeSet::new(),
        };
        let mut changes = BTreeMap::new();
        changes.insert(
            id("invoice-sweep"),
            vec![
                FieldChange {
                    field: "every",
                    current: "420s".to_owned(),
                    desired: "900s offset 300s".to_owned(),
                },
                FieldChange {
                    field: "input",
                    current: r#"{"mode":"a|b"}"#.to_owned(),
                    desired: String::new(),
                },
            ],
        );
        changes.insert(
            id("quarter-close"),
            vec![FieldChange {
                field: "jitter",
                current: "0s".to_owned(),
                desired: "1m".to_owned(),
            }],
        );
        let mut next = BTreeMap::new();
        for (w, first) in [
            ("nightly-report", "2026-12-02T01:00:00Z"),
            ("invoice-sweep", "2026-12-01T12:05:00Z"),
        ] {
            let first = at(first);
            next.insert(
                id(w),
                (0..3)
                    .map(|i| first + chrono::Duration::hours(i * 24))
                    .collect(),
            );
        }
        let heading = Heading::new(
            "billing",
            Some("staging"),
            "billing-staging",
            "127.0.0.1:7233",
        );
        let rendered = render(&heading, &plan, &changes, &next);
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/plan.md");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(rendered, expected, "rendered:\n{rendered}");
    }

    #[test]
    fn a_plan_with_nothing_to_do_says_so() {
        let plan = Plan {
            untouched: vec![Untouched::Unchanged {
                schedule_id: "p.a".to_owned(),
            }],
            ..Plan::default()
        };
        let heading = Heading::new("p", None, "default", "localhost:7233");
        let rendered = render(&heading, &plan, &BTreeMap::new(), &BTreeMap::new());
        assert!(
            rendered
                .contains("Namespace `default` at `localhost:7233`: nothing to do; 1 unchanged."),
            "{rendered}"
        );
    }
}
