//! The text report of `plan` and `apply`: each step with the fields it
//! changes and its next firing times, then what was left alone and what failed.

use schedule_sync::reconcile::Effect;

/// For each update, the fields that differ.
pub(crate) type Changes =
    std::collections::BTreeMap<String, Vec<schedule_sync::compare::changes::FieldChange>>;

/// The next 3 firing times of each schedule that the plan creates or updates.
pub(crate) fn next_fires(
    project: &schedule_sync::project::Project,
    report: &schedule_sync::reconcile::Report,
) -> std::collections::BTreeMap<String, Vec<chrono::DateTime<chrono::Utc>>> {
    use schedule_sync::plan::Step;
    let now = chrono::Utc::now();
    report
        .plan
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Create { schedule_id } | Step::Update { schedule_id, .. } => Some(schedule_id),
            _ => None,
        })
        .filter_map(|id| {
            let (_, schedule) = project
                .scheduled()
                .find(|(w, _)| schedule_sync::spec::schedule_id(project.name(), &w.id) == *id)?;
            Some((
                id.clone(),
                schedule_sync::project::fire_times::next_fire_times(schedule, now, 3),
            ))
        })
        .collect()
}

pub(crate) fn render_report(
    report: &schedule_sync::reconcile::Report,
    changes: &Changes,
    fires: &std::collections::BTreeMap<String, Vec<chrono::DateTime<chrono::Utc>>>,
    write: bool,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for step in &report.plan.steps {
        let line = serde_json::to_value(step).unwrap_or_default();
        let action = line["action"].as_str().unwrap_or_default();
        let id = line["schedule_id"].as_str().unwrap_or_default();
        match line["reason"].as_str() {
            Some(reason) if reason != "changed" => {
                let _ = writeln!(out, "{action:>8} {id} ({reason})");
            }
            _ => {
                let _ = writeln!(out, "{action:>8} {id}");
            }
        }
        for change in changes.get(id).into_iter().flatten() {
            let _ = writeln!(
                out,
                "{:>10}{}: {} -> {}",
                "",
                change.field,
                shown(&change.current),
                shown(&change.desired)
            );
        }
        if let Some(times) = fires.get(id).filter(|t| !t.is_empty()) {
            let times: Vec<String> = times
                .iter()
                .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
                .collect();
            let _ = writeln!(out, "{:>10}next: {}", "", times.join(", "));
        }
    }
    for untouched in &report.plan.untouched {
        let line = serde_json::to_value(untouched).unwrap_or_default();
        let reason = line["reason"].as_str().unwrap_or_default();
        let id = line["schedule_id"].as_str().unwrap_or_default();
        let _ = writeln!(out, "{:>8} {id} ({reason})", "-");
    }
    for outcome in report.outcomes.iter().filter(|o| !o.succeeded()) {
        let id = outcome.step.schedule_id();
        let action = outcome.step.operation();
        let _ = match (&outcome.effect, &outcome.error) {
            (Effect::Conflict, _) => writeln!(
                out,
                "conflict {id}: when it came to the {action}, it had no marker of this project; left alone"
            ),
            (_, Some(error)) => writeln!(out, "   error {action} {id}: {error}"),
            (_, None) => writeln!(out, "   error {action} {id}"),
        };
    }
    let failed = report.outcomes.iter().filter(|o| !o.succeeded()).count();
    if write {
        let _ = write!(
            out,
            "{} step(s), {failed} failed, {} left alone",
            report.outcomes.len(),
            report.plan.untouched.len()
        );
    } else {
        let _ = write!(
            out,
            "{} change(s) pending, {} left alone",
            report.plan.steps.len(),
            report.plan.untouched.len()
        );
    }
    out
}

/// A value in a change line; an empty one reads as `(none)`.
fn shown(value: &str) -> &str {
    if value.is_empty() { "(none)" } else { value }
}
