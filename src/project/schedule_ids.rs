//! The schedule ids of a project's workflows, checked across files: a
//! schedule's own id (`schedule.id`) must not have the project's form, and
//! no two workflows may land on one schedule.

use std::collections::HashMap;
use std::path::Path;

use super::diagnostic::{Diagnostic, Related};
use super::names::{owns_id, schedule_id};
use super::node::{Node, Position};
use super::{Checked, FileIds};

/// The position of the value of `schedule.id` in a workflow file's root.
pub(super) fn declared_schedule_id(root: &Node) -> Option<(String, Position)> {
    let schedule = find(root.as_map()?, "schedule")?;
    let id = find(schedule.as_map()?, "id")?;
    Some((id.as_str()?.to_owned(), id.at))
}

fn find<'n>(entries: &'n [(Node, Node)], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// One error per own id of `project`'s form, and per schedule id that two
/// workflows would share (naming the first). Outcomes come sorted by file.
pub(super) fn collisions<T>(dir: &Path, project: &str, outcomes: &[Checked<T>]) -> Vec<Diagnostic> {
    let source =
        |outcome: &FileIds| std::fs::read_to_string(dir.join(&outcome.file)).unwrap_or_default();
    let mut out = Vec::new();
    let mut first: HashMap<String, (&Path, Position)> = HashMap::new();
    for Checked {
        outcome, schedule, ..
    } in outcomes
    {
        let Some(schedule) = schedule else {
            continue;
        };
        let (id, at) = match (&schedule.own, &outcome.declared_schedule_id) {
            (Some(own), Some((_, at))) => {
                if owns_id(project, own) {
                    out.push(
                        Diagnostic::error(
                            &outcome.file,
                            *at,
                            format!(
                                "`id` `{own}` has the form of the ids project `{project}` derives from workflow ids"
                            ),
                        )
                        .expected(format!(
                            "an id without the `{project}.` prefix; for `{own}` rename the workflow instead and drop `id`"
                        ))
                        .with_snippet(&source(outcome)),
                    );
                    continue;
                }
                (own.clone(), *at)
            }
            _ => (
                schedule_id(project, &schedule.workflow),
                outcome
                    .declared_id
                    .as_ref()
                    .map_or_else(Position::default, |(_, at)| *at),
            ),
        };
        match first.get(&id) {
            None => {
                first.insert(id, (&outcome.file, at));
            }
            Some((file, first_at)) => out.push(
                Diagnostic::error(
                    &outcome.file,
                    at,
                    format!(
                        "the schedule id `{id}` is also the schedule of {}",
                        file.display()
                    ),
                )
                .expected("one workflow per schedule id")
                .related(Related {
                    file: file.to_path_buf(),
                    line: first_at.line,
                    column: first_at.column,
                    note: "first declared".to_owned(),
                })
                .with_snippet(&source(outcome)),
            ),
        }
    }
    out
}
