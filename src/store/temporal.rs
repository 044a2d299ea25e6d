//! The real [`ScheduleStore`]: Temporal's `WorkflowService` schedule RPCs,
//! called raw, because the client's high-level schedule API cannot send a
//! memo, search attributes, a catch-up window or a conflict token.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use temporalio_client::request_extensions::RetryConfigForCall;
use temporalio_client::{Client, RetryOptions};
use temporalio_common::protos::temporal::api::common::v1::{
    Memo, Payload, SearchAttributes, WorkflowExecution,
};
use temporalio_common::protos::temporal::api::enums::v1::WorkflowExecutionStatus;
use temporalio_common::protos::temporal::api::operatorservice::v1::ListSearchAttributesRequest;
use temporalio_common::protos::temporal::api::schedule::v1::{
    ScheduleActionResult, ScheduleInfo, SchedulePatch, ScheduleSpec,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    CreateScheduleRequest, DeleteScheduleRequest, DescribeScheduleRequest,
    DescribeWorkflowExecutionRequest, ListSchedulesRequest, PatchScheduleRequest,
    UpdateScheduleRequest,
};

use super::pace::{Answer, Pace, PaceStatus};
use super::{Action, Activity, Counters};
use super::{
    Created, Described, FINGERPRINT_ATTRIBUTE, ListedSpec, Observation, Observed, PauseState,
    ScheduleStore, StoreError, keep_remaining_actions, marker_memo, merged_search_attributes,
    update_memo,
};
use crate::connection::sanitise;
use crate::project::action::AttributeType;
use crate::spec::{DesiredSchedule, Fingerprint, MEMO_PROJECT, owns_id};

/// Schedules per ListSchedules page.
pub const PAGE_SIZE: i32 = 1000;
/// The longest one schedule RPC may take before it counts as failed with
/// `DeadlineExceeded`: a server that accepts connections and never answers
/// must not hold a reconcile for longer.
pub const RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Awaits an RPC for at most [`RPC_TIMEOUT`].
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<tonic::Response<T>, tonic::Status> {
    tokio::time::timeout(RPC_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(tonic::Status::deadline_exceeded(format!(
                "no answer within {RPC_TIMEOUT:?}"
            )))
        })
}

/// A request that the client sends once. The client's own retry layer is
/// off for every call of ours: it would retry ResourceExhausted with
/// backoffs of many seconds, past [`RPC_TIMEOUT`], so that throttling would
/// look like a server that never answers. The one retry policy is the
/// reconcile's (`reconcile::calls`), and one call takes at most [`RPC_TIMEOUT`].
fn once<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .extensions_mut()
        .insert(RetryConfigForCall(RetryOptions::no_retries()));
    request
}

/// The error of a call that was not sent: the pace stopped (shutdown).
fn stopped(rpc: &'static str) -> StoreError {
    StoreError::not_started(rpc)
}

/// RPCs made, by RPC name and gRPC code name.
pub type RpcCounts = BTreeMap<&'static str, BTreeMap<String, u64>>;

/// Temporal's schedules in one namespace.
#[derive(Clone)]
pub struct TemporalStore {
    client: Client,
    namespace: String,
    identity: String,
    fingerprint_attribute: bool,
    counts: Arc<Mutex<RpcCounts>>,
    /// Set once the server has refused a listing filtered by schedule id.
    unfiltered: Arc<AtomicBool>,
    /// Every RPC waits for its turn here.
    pace: Pace,
}

impl TemporalStore {
    /// A store over `client` in `namespace`. `fingerprint_attribute` says
    /// whether the namespace has the `ScheduleSyncFingerprint` keyword search
    /// attribute (see [`TemporalStore::has_fingerprint_attribute`]).
    pub fn new(client: Client, namespace: String, fingerprint_attribute: bool) -> Self {
        TemporalStore {
            client,
            namespace,
            identity: format!("schedule-sync/{}", env!("CARGO_PKG_VERSION")),
            fingerprint_attribute,
            counts: Arc::default(),
            unfiltered: Arc::default(),
            pace: Pace::default(),
        }
    }

    /// The store, pacing its RPCs with `pace` (shared with whoever else
    /// holds it: the reconciler's other stores). Without it a store has a
    /// pace of its own, with no ceiling.
    #[must_use]
    pub fn with_pace(mut self, pace: Pace) -> Self {
        self.pace = pace;
        self
    }

    /// The pace of this store's RPCs.
    pub fn pace(&self) -> &Pace {
        &self.pace
    }

    /// Sends one RPC when its turn comes, bounded by [`RPC_TIMEOUT`],
    /// counts it, and tells the pace how it was answered.
    async fn call<T>(
        &self,
        rpc: &'static str,
        send: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, StoreError> {
        let turn = self.pace.turn().await.ok_or_else(|| stopped(rpc))?;
        let result = self.counted(rpc, bounded(send).await);
        self.pace.answered(turn, Answer::of(&result));
        result
    }

    /// One page of ListSchedules for `query`, from `token`.
    async fn page(
        &self,
        query: &str,
        token: Vec<u8>,
    ) -> Result<
        temporalio_common::protos::temporal::api::workflowservice::v1::ListSchedulesResponse,
        StoreError,
    > {
        let request = ListSchedulesRequest {
            namespace: self.namespace.clone(),
            maximum_page_size: PAGE_SIZE,
            next_page_token: token,
            query: query.to_owned(),
        };
        let mut service = self.client.connection().workflow_service();
        self.call("ListSchedules", service.list_schedules(once(request)))
            .await
    }

    /// Reads every page of ListSchedules for `query`, keeping `project`'s ids.
    /// A failure on the first page is an error; on a later page the
    /// observation is returned marked incomplete, so nothing is deleted.
    async fn list_pages(&self, project: &str, query: &str) -> Result<Observation, StoreError> {
        let mut observation = Observation {
            schedules: Vec::new(),
            complete: true,
        };
        let mut token = Vec::new();
        let mut first = true;
        loop {
            let page = match self.page(query, token).await {
                Ok(page) => page,
                Err(error) if first => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "a later page of ListSchedules failed; deletions are held");
                    observation.complete = false;
                    return Ok(observation);
                }
            };
            first = false;
            for entry in page.schedules {
                if !owns_id(project, &entry.schedule_id) {
                    continue;
                }
                let info = entry.info.unwrap_or_default();
                observation.schedules.push(observed(
                    entry.schedule_id,
                    entry.memo.as_ref(),
                    entry
                        .search_attributes
                        .as_ref()
                        .filter(|_| self.fingerprint_attribute),
                    info.paused,
                    info.notes,
                    info.spec,
                    Some(activity(&info.recent_actions, &info.future_action_times)),
                ));
            }
            if page.next_page_token.is_empty() {
                return Ok(observation);
            }
            token = page.next_page_token;
        }
    }

    /// The ids of every schedule that ListSchedules shows for the visibility
    /// `query` (empty: the whole namespace), all pages. The listing lags
    /// behind writes by a second or so, and is not filtered by owner.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when any page fails: a partial list of what to
    /// import would be mistaken for the whole.
    pub async fn list_ids(&self, query: &str) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        let mut token = Vec::new();
        loop {
            let page = self.page(query, token).await?;
            ids.extend(page.schedules.into_iter().map(|entry| entry.schedule_id));
            if page.next_page_token.is_empty() {
                return Ok(ids);
            }
            token = page.next_page_token;
        }
    }

    /// The RPCs this store (and its clones) made so far, by name and code.
    pub fn rpc_counts(&self) -> RpcCounts {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Counts an RPC by its outcome and turns a failure into a [`StoreError`].
    fn counted<T>(
        &self,
        rpc: &'static str,
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, StoreError> {
        if let Ok(mut counts) = self.counts.lock() {
            let code = result
                .as_ref()
                .map_or_else(|s| s.code(), |_| tonic::Code::Ok);
            *counts
                .entry(rpc)
                .or_default()
                .entry(format!("{code:?}"))
                .or_default() += 1;
        }
        counted(rpc, result)
    }

    /// Whether the namespace has the fingerprint search attribute.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the attributes cannot be listed.
    pub async fn has_fingerprint_attribute(
        client: &Client,
        namespace: &str,
    ) -> Result<bool, StoreError> {
        let mut operator = client.connection().operator_service();
        let request = ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        };
        let response = counted(
            "ListSearchAttributes",
            bounded(operator.list_search_attributes(once(request))).await,
        )?;
        Ok(response
            .custom_attributes
            .contains_key(FINGERPRINT_ATTRIBUTE))
    }

    /// [`TemporalStore::has_fingerprint_attribute`] for this store's
    /// namespace, at its pace.
    pub(crate) async fn probe_fingerprint_attribute(&self) -> Result<bool, StoreError> {
        let mut operator = self.client.connection().operator_service();
        let request = ListSearchAttributesRequest {
            namespace: self.namespace.clone(),
        };
        // Paced, but not among the schedule RPCs that `rpc_counts` shows.
        let turn = self
            .pace
            .turn()
            .await
            .ok_or_else(|| stopped("ListSearchAttributes"))?;
        let result = counted(
            "ListSearchAttributes",
            bounded(operator.list_search_attributes(once(request))).await,
        );
        self.pace.answered(turn, Answer::of(&result));
        Ok(result?
            .custom_attributes
            .contains_key(FINGERPRINT_ATTRIBUTE))
    }

    /// The store, using the fingerprint attribute or not as `available` says.
    pub(crate) fn using_fingerprint_attribute(mut self, available: bool) -> Self {
        self.fingerprint_attribute = available;
        self
    }

    /// The search attributes to send: those `held` with our fingerprint,
    /// when the namespace has the attribute (without it, nothing is sent,
    /// which leaves the held ones as they are).
    fn attributes(
        &self,
        desired: &DesiredSchedule,
        held: &HashMap<String, Payload>,
    ) -> Option<SearchAttributes> {
        self.fingerprint_attribute.then(|| SearchAttributes {
            indexed_fields: merged_search_attributes(held, &desired.fingerprint),
        })
    }
}

/// Counts an RPC by its outcome and turns a failure into a [`StoreError`].
fn counted<T>(
    rpc: &'static str,
    result: Result<tonic::Response<T>, tonic::Status>,
) -> Result<T, StoreError> {
    let code = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    crate::telemetry::rpc(rpc, code);
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| StoreError {
            rpc,
            code: status.code(),
            message: sanitise(status.message()),
        })
}

fn payload_text(payload: Option<&Payload>) -> Option<String> {
    payload.and_then(|p| serde_json::from_slice::<String>(&p.data).ok())
}

fn observed(
    schedule_id: String,
    memo: Option<&Memo>,
    attributes: Option<&SearchAttributes>,
    paused: bool,
    notes: String,
    spec: Option<ScheduleSpec>,
    activity: Option<Activity>,
) -> Observed {
    let memo_field = |key: &str| payload_text(memo.and_then(|m| m.fields.get(key)));
    let fingerprint =
        payload_text(attributes.and_then(|a| a.indexed_fields.get(FINGERPRINT_ATTRIBUTE)));
    Observed {
        schedule_id,
        owner: memo_field(MEMO_PROJECT),
        fingerprint: fingerprint.map(Fingerprint),
        paused,
        notes,
        spec: spec.as_ref().map(ListedSpec::of),
        activity,
    }
}

/// A protobuf timestamp as a time.
fn time(stamp: &prost_wkt_types::Timestamp) -> Option<SystemTime> {
    let seconds = u64::try_from(stamp.seconds).ok()?;
    let nanos = u32::try_from(stamp.nanos).ok()?;
    Some(UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// What a schedule's last actions and next action times (a listing entry's
/// or a describe's) show of its firing.
fn activity(recent: &[ScheduleActionResult], future: &[prost_wkt_types::Timestamp]) -> Activity {
    let running = |action: &ScheduleActionResult| {
        action.start_workflow_status == WorkflowExecutionStatus::Running as i32
    };
    let last = recent
        .iter()
        .max_by_key(|a| a.schedule_time.as_ref().map(|t| (t.seconds, t.nanos)));
    Activity {
        last_action: last.and_then(|action| {
            let scheduled = time(action.schedule_time.as_ref()?)?;
            let taken = action.actual_time.as_ref().and_then(time);
            Some(Action {
                scheduled,
                taken: taken.unwrap_or(scheduled),
            })
        }),
        next_action: future.iter().filter_map(time).min(),
        running: u32::try_from(recent.iter().filter(|a| running(a)).count()).unwrap_or(u32::MAX),
        last_running: last.is_some_and(running),
        counters: None,
    }
}

/// The figures of a describe's info.
fn counters(info: &ScheduleInfo) -> Counters {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Counters {
        missed_catchup_window: count(info.missed_catchup_window),
        overlap_skipped: count(info.overlap_skipped),
        buffer_dropped: count(info.buffer_dropped),
        running_workflows: u32::try_from(info.running_workflows.len()).unwrap_or(u32::MAX),
    }
}

/// The id of the workflow that runs schedule `schedule_id` on a
/// workflow-backed scheduler (Temporal 1.29's, and 1.32's unless CHASM).
fn scheduler_workflow_id(schedule_id: &str) -> String {
    format!("temporal-sys-scheduler:{schedule_id}")
}

impl ScheduleStore for TemporalStore {
    async fn list(&self, project: &str) -> Result<Observation, StoreError> {
        // Ask the server for the project's ids only; a server that cannot
        // filter schedules by id gets the whole namespace, filtered here.
        let query = format!("ScheduleId STARTS_WITH '{project}.'");
        let filtered = !self.unfiltered.load(Ordering::Relaxed);
        match self
            .list_pages(project, if filtered { &query } else { "" })
            .await
        {
            Err(error) if filtered && error.code == tonic::Code::InvalidArgument => {
                tracing::info!(%error, "this server cannot filter schedules by id; listing the namespace");
                self.unfiltered.store(true, Ordering::Relaxed);
                self.list_pages(project, "").await
            }
            other => other,
        }
    }

    async fn owned_without_waiting(
        &self,
        schedule_id: &str,
        project: &str,
    ) -> Result<bool, StoreError> {
        let mut service = self.client.connection().workflow_service();
        let request = DescribeWorkflowExecutionRequest {
            namespace: self.namespace.clone(),
            execution: Some(WorkflowExecution {
                workflow_id: scheduler_workflow_id(schedule_id),
                run_id: String::new(),
            }),
        };
        let response = match self
            .call(
                "DescribeWorkflowExecution",
                service.describe_workflow_execution(once(request)),
            )
            .await
        {
            Ok(response) => response,
            Err(error) if error.code == tonic::Code::NotFound => return Ok(false),
            Err(error) => return Err(error),
        };
        let Some(info) = response.workflow_execution_info else {
            return Ok(false);
        };
        let owner = payload_text(info.memo.as_ref().and_then(|m| m.fields.get(MEMO_PROJECT)));
        Ok(info.status == WorkflowExecutionStatus::Running as i32
            && owner.as_deref() == Some(project))
    }

    async fn describe(&self, schedule_id: &str) -> Result<Option<Described>, StoreError> {
        let mut service = self.client.connection().workflow_service();
        let request = DescribeScheduleRequest {
            namespace: self.namespace.clone(),
            schedule_id: schedule_id.to_owned(),
        };
        let response = match self
            .call("DescribeSchedule", service.describe_schedule(once(request)))
            .await
        {
            Ok(response) => response,
            Err(error) if error.code == tonic::Code::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let schedule = response.schedule.unwrap_or_default();
        let state = schedule.state.clone().unwrap_or_default();
        let search_attributes = response
            .search_attributes
            .as_ref()
            .map(|a| a.indexed_fields.clone())
            .unwrap_or_default();
        Ok(Some(Described {
            search_attributes,
            memo: response
                .memo
                .as_ref()
                .map(|m| m.fields.clone())
                .unwrap_or_default(),
            observed: observed(
                schedule_id.to_owned(),
                response.memo.as_ref(),
                // A fingerprint we do not write (the attribute cannot be
                // used) may be stale: not shown, so schedules are compared.
                response
                    .search_attributes
                    .as_ref()
                    .filter(|_| self.fingerprint_attribute),
                state.paused,
                state.notes,
                schedule.spec.clone(),
                response.info.as_ref().map(|info| Activity {
                    counters: Some(counters(info)),
                    ..activity(&info.recent_actions, &info.future_action_times)
                }),
            ),
            schedule,
            conflict_token: response.conflict_token,
        }))
    }

    async fn create(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        keep: &HashMap<String, Payload>,
        request_id: &str,
    ) -> Result<Created, StoreError> {
        let mut service = self.client.connection().workflow_service();
        let memo = Memo {
            fields: marker_memo(project, &desired.fingerprint),
        };
        let search_attributes = self.attributes(desired, keep);
        let mut schedule = desired.schedule.clone();
        let state = schedule.state.get_or_insert_with(Default::default);
        state.paused = pause.paused;
        state.notes = pause.notes.clone();
        let request = CreateScheduleRequest {
            namespace: self.namespace.clone(),
            schedule_id: desired.schedule_id.clone(),
            schedule: Some(schedule),
            identity: self.identity.clone(),
            request_id: request_id.to_owned(),
            memo: Some(memo),
            search_attributes,
            ..Default::default()
        };
        match self
            .call("CreateSchedule", service.create_schedule(once(request)))
            .await
        {
            Ok(_) => Ok(Created::Created),
            Err(error) if error.code == tonic::Code::AlreadyExists => Ok(Created::AlreadyExists),
            Err(error) => Err(error),
        }
    }

    async fn update(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        current: &Described,
        request_id: &str,
    ) -> Result<(), StoreError> {
        let mut service = self.client.connection().workflow_service();
        let memo = update_memo(project, desired, current).map(|fields| Memo { fields });
        let search_attributes = self.attributes(desired, &current.search_attributes);
        let mut schedule = desired.schedule.clone();
        let state = schedule.state.get_or_insert_with(Default::default);
        state.paused = pause.paused;
        state.notes = pause.notes.clone();
        keep_remaining_actions(&mut schedule, current);
        let request = UpdateScheduleRequest {
            namespace: self.namespace.clone(),
            schedule_id: desired.schedule_id.clone(),
            schedule: Some(schedule),
            conflict_token: current.conflict_token.clone(),
            identity: self.identity.clone(),
            request_id: request_id.to_owned(),
            search_attributes,
            memo,
        };
        self.call("UpdateSchedule", service.update_schedule(once(request)))
            .await
            .map(drop)
    }

    async fn set_paused(&self, schedule_id: &str, pause: &PauseState) -> Result<(), StoreError> {
        let mut service = self.client.connection().workflow_service();
        let patch = if pause.paused {
            SchedulePatch {
                pause: pause.notes.clone(),
                ..Default::default()
            }
        } else {
            SchedulePatch {
                unpause: pause.notes.clone(),
                ..Default::default()
            }
        };
        let request = PatchScheduleRequest {
            namespace: self.namespace.clone(),
            schedule_id: schedule_id.to_owned(),
            patch: Some(patch),
            identity: self.identity.clone(),
            request_id: String::new(),
        };
        self.call("PatchSchedule", service.patch_schedule(once(request)))
            .await
            .map(drop)
    }

    async fn search_attribute_types(&self) -> Result<super::AttributeTypes, StoreError> {
        use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
        let mut operator = self.client.connection().operator_service();
        let request = ListSearchAttributesRequest {
            namespace: self.namespace.clone(),
        };
        let response = self.counted(
            "ListSearchAttributes",
            bounded(operator.list_search_attributes(tonic::Request::new(request))).await,
        )?;
        Ok(response
            .custom_attributes
            .into_iter()
            .filter_map(|(name, kind)| {
                let kind = match IndexedValueType::try_from(kind).ok()? {
                    IndexedValueType::Keyword => AttributeType::Keyword,
                    IndexedValueType::KeywordList => AttributeType::KeywordList,
                    IndexedValueType::Text => AttributeType::Text,
                    IndexedValueType::Int => AttributeType::Int,
                    IndexedValueType::Double => AttributeType::Double,
                    IndexedValueType::Bool => AttributeType::Bool,
                    IndexedValueType::Datetime => AttributeType::Datetime,
                    IndexedValueType::Unspecified => return None,
                };
                Some((name, kind))
            })
            .collect())
    }

    fn pace_status(&self) -> Option<PaceStatus> {
        Some(self.pace.status())
    }

    async fn delete(&self, schedule_id: &str) -> Result<(), StoreError> {
        let mut service = self.client.connection().workflow_service();
        let request = DeleteScheduleRequest {
            namespace: self.namespace.clone(),
            schedule_id: schedule_id.to_owned(),
            identity: self.identity.clone(),
        };
        match self
            .call("DeleteSchedule", service.delete_schedule(once(request)))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.code == tonic::Code::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }
}
