//! Before writing: every search attribute that the started workflows of a
//! schedule to create or update carry must be registered in the namespace,
//! with the type the file gives it. One `ListSearchAttributes` finds them
//! all; a missing or mistyped one is an error of the whole reconcile, before
//! any write, instead of a rejection halfway through.

use std::collections::BTreeMap;

use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;

use super::Apply;
use crate::plan::{Plan, Step};
use crate::project::action::AttributeType;
use crate::spec::DesiredSchedule;
use crate::spec::action::ATTRIBUTE_TYPE_METADATA;
use crate::store::{AttributeTypes, ScheduleStore, StoreError};

impl<S: ScheduleStore> Apply<'_, S> {
    /// Checks the search attributes of the schedules that `plan` writes
    /// against the namespace's, with one listing, and only when one of them
    /// has any (so the no-op costs nothing more).
    pub(super) async fn check_search_attributes(&self, plan: &Plan) -> Result<(), StoreError> {
        let written: Vec<DesiredSchedule> = plan
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Create { schedule_id } | Step::Update { schedule_id, .. } => self
                    .wanted
                    .get(schedule_id.as_str())
                    .map(|want| want.desired()),
                _ => None,
            })
            .filter(|want| !attributes(want).is_empty())
            .collect();
        if written.is_empty() {
            return Ok(());
        }
        let registered = self
            .retrying(|| self.store.search_attribute_types())
            .await?;
        let problems = problems(&written, &registered);
        if problems.is_empty() {
            return Ok(());
        }
        Err(StoreError {
            rpc: "ListSearchAttributes",
            code: tonic::Code::InvalidArgument,
            message: format!("nothing was written: {}", problems.join("; ")),
        })
    }
}

/// The search attributes of the workflows `want` starts, with the types
/// their payloads name.
fn attributes(want: &DesiredSchedule) -> BTreeMap<String, Option<AttributeType>> {
    let Some(Action::StartWorkflow(start)) = want
        .schedule
        .action
        .as_ref()
        .and_then(|a| a.action.as_ref())
    else {
        return BTreeMap::new();
    };
    start
        .search_attributes
        .iter()
        .flat_map(|a| a.indexed_fields.iter())
        .map(|(name, payload)| {
            let kind = payload
                .metadata
                .get(ATTRIBUTE_TYPE_METADATA)
                .and_then(|t| AttributeType::from_name(&String::from_utf8_lossy(t)));
            (name.clone(), kind)
        })
        .collect()
}

/// One sentence per attribute that is not registered, or registered with
/// another type.
fn problems(written: &[DesiredSchedule], registered: &AttributeTypes) -> Vec<String> {
    let mut problems = Vec::new();
    for want in written {
        for (name, kind) in attributes(want) {
            let wanted = kind.map_or("?", AttributeType::name);
            match registered.get(&name) {
                None => problems.push(format!(
                    "workflow `{}` (schedule `{}`) sets the search attribute `{name}`, which the \
                     namespace does not have; register it with `temporal operator search-attribute \
                     create --name {name} --type {wanted}`",
                    want.workflow, want.schedule_id
                )),
                Some(held) if Some(*held) != kind => problems.push(format!(
                    "workflow `{}` (schedule `{}`) sets the search attribute `{name}` as {wanted}, \
                     but the namespace has it as {}",
                    want.workflow,
                    want.schedule_id,
                    held.name()
                )),
                Some(_) => {}
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use crate::project::action::AttributeType;
    use crate::reconcile::{ReconcileOptions, preview, reconcile};
    use crate::store::MemoryStore;

    const FILE: &str = "id: a\nschedule:\n  cron: \"0 2 * * *\"\n  \
                        search_attributes: {CustomerId: {type: Keyword, value: acme}, Due: {type: Datetime, value: 2027-01-01T00:00:00Z}}\n";

    #[tokio::test]
    async fn a_missing_or_mistyped_attribute_stops_plan_and_apply_before_any_write() {
        let project =
            crate::project::test_project("billing", &[FILE, "id: b\nschedule:\n  every: 1h\n"]);
        let store = MemoryStore::new();
        store.register_search_attribute("Due", AttributeType::Text);
        for error in [
            preview(&store, &project, ReconcileOptions::default())
                .await
                .expect_err("plan stops"),
            reconcile(&store, &project, ReconcileOptions::default())
                .await
                .expect_err("apply stops"),
        ] {
            assert!(error.message.contains("nothing was written"), "{error}");
            assert!(
                error
                    .message
                    .contains("`CustomerId`, which the namespace does not have")
                    && error.message.contains("--name CustomerId --type Keyword"),
                "{error}"
            );
            assert!(
                error
                    .message
                    .contains("`Due` as Datetime, but the namespace has it as Text"),
                "{error}"
            );
        }
        assert_eq!(store.writes(), 0);
        assert_eq!(
            store.calls_of(crate::store::Rpc::ListSearchAttributes),
            2,
            "one listing each"
        );
    }

    #[tokio::test]
    async fn registered_attributes_are_listed_once_and_an_unchanged_project_not_at_all() {
        let project = crate::project::test_project("billing", &[FILE]);
        let store = MemoryStore::new();
        store.register_search_attribute("CustomerId", AttributeType::Keyword);
        store.register_search_attribute("Due", AttributeType::Datetime);
        let report = reconcile(&store, &project, ReconcileOptions::default())
            .await
            .expect("applies");
        assert!(report.converged(), "{report:#?}");
        assert_eq!(store.calls_of(crate::store::Rpc::ListSearchAttributes), 1);
        let again = reconcile(&store, &project, ReconcileOptions::default())
            .await
            .expect("applies");
        assert!(again.plan.steps.is_empty(), "{:#?}", again.plan);
        assert_eq!(
            store.calls_of(crate::store::Rpc::ListSearchAttributes),
            1,
            "the no-op lists none"
        );
    }
}
