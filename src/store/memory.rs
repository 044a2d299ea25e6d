//! An in-memory [`ScheduleStore`] for embedders' tests and for fault
//! injection: it keeps schedules in a map, counts every call, and can be told
//! to fail the next calls of an RPC with a gRPC code.
//!
//! It behaves as Temporal does (the store contract suite in
//! `tests/store_contract.rs` runs the same tests against it and against real
//! servers, 1.29 and 1.32, so a divergence fails the test command):
//!
//! - a create remembers its request id even after the schedule is deleted,
//!   and a create with that id again answers OK without creating anything;
//! - an update that sends search attributes replaces the whole set;
//! - a listing shows at most ten calendars, intervals and exclusions of each
//!   spec ([`super::as_listed`]);
//! - the listing may lag behind ([`MemoryStore::freeze_listing`]);
//!
//! and, where the schedulers differ, as the [`SchedulerModel`] it was made
//! with says: whether an update sets the memo, and what a stale conflict
//! token does.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::schedule::v1::Schedule;

use super::{
    Code, Created, Described, FINGERPRINT_ATTRIBUTE, ListedSpec, Observation, Observed, PauseState,
    Rpc, ScheduleStore, StoreError, keep_remaining_actions, marker_memo, merged_search_attributes,
    update_memo,
};
use crate::project::action::AttributeType;
use crate::spec::action::ATTRIBUTE_TYPE_METADATA;
use crate::spec::{DesiredSchedule, Fingerprint, MEMO_PROJECT, json_payload, owns_id};
use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;

/// Which Temporal scheduler a [`MemoryStore`] behaves as, where they differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SchedulerModel {
    /// Temporal 1.29's scheduler, a workflow per schedule (the `temporal`
    /// CLI v1.5.1 dev server): an update ignores the memo it carries, and an
    /// update with a stale conflict token is answered OK and dropped.
    #[default]
    Workflow129,
    /// Temporal 1.32's CHASM scheduler (new schedules, where the dynamic
    /// config turns it on): an update replaces the memo with the one it
    /// carries, if any, and a stale conflict token is refused with
    /// `FailedPrecondition` ("mismatched conflict token").
    Chasm132,
    /// A workflow-backed schedule on Temporal 1.32 (made while the CHASM
    /// scheduler was off, as it is by default): as on 1.29, except that an
    /// update carrying a memo is refused with `FailedPrecondition` ("memo
    /// updates are not supported on workflow-backed schedules").
    Workflow132,
}

/// One stored schedule.
#[derive(Clone, Debug)]
struct Entry {
    schedule: Schedule,
    /// The memo: set by the create, and by an update only on the CHASM
    /// scheduler.
    memo: HashMap<String, Payload>,
    search_attributes: HashMap<String, Payload>,
    version: u64,
    /// Request ids of the updates and patches applied, which the server
    /// deduplicates.
    signals: HashSet<String>,
}

#[derive(Default)]
struct Inner {
    schedules: BTreeMap<String, Entry>,
    /// The request id of the create of each schedule id's latest run, kept
    /// after a delete, as the server keeps the finished scheduler run.
    create_request_ids: HashMap<String, String>,
    next_version: u64,
    faults: HashMap<Rpc, VecDeque<Code>>,
    calls: Vec<Rpc>,
    /// While set, listings show this old copy: the visibility store lags.
    stale_listing: Option<BTreeMap<String, Entry>>,
    /// Creates whose answer is lost after they took effect.
    lost_create_answers: usize,
    /// How long each call of an RPC takes, where set.
    latency: HashMap<Rpc, std::time::Duration>,
    /// The namespace's custom search attributes besides the fingerprint's.
    attributes: super::AttributeTypes,
}

/// Schedules in memory.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    model: SchedulerModel,
}

impl MemoryStore {
    /// An empty store that behaves as Temporal 1.29's scheduler.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that behaves as `model`.
    pub fn behaving_as(model: SchedulerModel) -> Self {
        MemoryStore {
            model,
            ..Self::default()
        }
    }

    /// Registers a custom search attribute in the namespace, as
    /// `temporal operator search-attribute create` does.
    #[doc(hidden)]
    pub fn register_search_attribute(&self, name: &str, kind: AttributeType) {
        self.lock().attributes.insert(name.to_owned(), kind);
    }

    /// Makes every call of `rpc` take `latency` (in tokio time) before it
    /// is answered.
    pub fn delay(&self, rpc: Rpc, latency: std::time::Duration) {
        self.lock().latency.insert(rpc, latency);
    }

    async fn wait(&self, rpc: Rpc) {
        let latency = self.lock().latency.get(&rpc).copied();
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
    }

    /// Makes the next `times` calls of `rpc` fail with `code`.
    pub fn fail_next(&self, rpc: Rpc, code: Code, times: usize) {
        let mut inner = self.lock();
        inner
            .faults
            .entry(rpc)
            .or_default()
            .extend(std::iter::repeat_n(code, times));
    }

    /// Makes the next `times` creates take effect and then fail with
    /// `Unavailable`, as when the answer is lost on the way back.
    pub fn lose_next_create_answers(&self, times: usize) {
        self.lock().lost_create_answers += times;
    }

    /// Puts a schedule in place without a marker, as a person would.
    #[doc(hidden)]
    pub fn insert_unowned(&self, schedule_id: &str, schedule: Schedule) {
        self.insert_unowned_with_memo(schedule_id, schedule, &[]);
    }

    /// Puts a schedule in place without our marker but with the memo fields
    /// `memo` (key, text), as another tool would.
    #[doc(hidden)]
    pub fn insert_unowned_with_memo(
        &self,
        schedule_id: &str,
        schedule: Schedule,
        memo: &[(&str, &str)],
    ) {
        let memo = memo
            .iter()
            .map(|(key, text)| ((*key).to_owned(), json_payload(&(*text).into())))
            .collect();
        let mut inner = self.lock();
        // A new run, with a request id of its own.
        inner.create_request_ids.remove(schedule_id);
        let version = inner.bump();
        inner.schedules.insert(
            schedule_id.to_owned(),
            Entry {
                schedule,
                memo,
                search_attributes: HashMap::new(),
                version,
                signals: HashSet::new(),
            },
        );
    }

    /// Sets a search attribute of a schedule, as another tool would.
    pub fn tag(&self, schedule_id: &str, name: &str, value: &str) {
        let mut inner = self.lock();
        let version = inner.bump();
        if let Some(entry) = inner.schedules.get_mut(schedule_id) {
            entry
                .search_attributes
                .insert(name.to_owned(), json_payload(&value.into()));
            entry.version = version;
        }
    }

    /// The search attributes of a schedule, each as its JSON text.
    pub fn search_attributes(&self, schedule_id: &str) -> BTreeMap<String, String> {
        self.lock()
            .schedules
            .get(schedule_id)
            .map(|e| {
                e.search_attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.data).into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The project its memo names, if the schedule exists and has one.
    pub fn owner(&self, schedule_id: &str) -> Option<String> {
        self.lock()
            .schedules
            .get(schedule_id)
            .and_then(Entry::owner)
    }

    /// The memo fields of a schedule, each as its JSON text.
    pub fn memo(&self, schedule_id: &str) -> BTreeMap<String, String> {
        self.lock()
            .schedules
            .get(schedule_id)
            .map(|e| {
                e.memo
                    .iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.data).into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Deletes a schedule, as an operator would with `temporal schedule delete`.
    pub fn operator_delete(&self, schedule_id: &str) {
        self.lock().schedules.remove(schedule_id);
    }

    /// Pauses a schedule with a note, as an operator would.
    pub fn operator_pause(&self, schedule_id: &str, note: &str) {
        let mut inner = self.lock();
        let version = inner.bump();
        if let Some(entry) = inner.schedules.get_mut(schedule_id) {
            let state = entry.schedule.state.get_or_insert_with(Default::default);
            state.paused = true;
            state.notes = note.to_owned();
            entry.version = version;
        }
    }

    /// The schedule fires once, as the server's scheduler would at a
    /// firing time: a limit on actions is counted down (and the conflict
    /// token moves, as Temporal's does); a schedule whose limit is spent
    /// takes no action. Whether it took one.
    pub fn take_action(&self, schedule_id: &str) -> bool {
        let mut inner = self.lock();
        let version = inner.bump();
        let Some(entry) = inner.schedules.get_mut(schedule_id) else {
            return false;
        };
        let state = entry.schedule.state.get_or_insert_with(Default::default);
        if state.paused {
            return false;
        }
        if !state.limited_actions {
            return true;
        }
        if state.remaining_actions <= 0 {
            return false;
        }
        state.remaining_actions -= 1;
        entry.version = version;
        true
    }

    /// Changes a schedule's definition behind the project's back, as a person
    /// in the Temporal UI would; the marker and the fingerprint stay.
    #[doc(hidden)]
    pub fn operator_edit(&self, schedule_id: &str, edit: impl FnOnce(&mut Schedule)) {
        let mut inner = self.lock();
        let version = inner.bump();
        if let Some(entry) = inner.schedules.get_mut(schedule_id) {
            edit(&mut entry.schedule);
            entry.version = version;
        }
    }

    /// From now on listings show the schedules as they are at this moment,
    /// until [`MemoryStore::catch_up_listing`]: Temporal's listing is
    /// eventually consistent, and this is how it lags.
    pub fn freeze_listing(&self) {
        let mut inner = self.lock();
        inner.stale_listing = Some(inner.schedules.clone());
    }

    /// Listings show the current schedules again.
    pub fn catch_up_listing(&self) {
        self.lock().stale_listing = None;
    }

    /// The RPCs called so far, in order.
    pub fn calls(&self) -> Vec<Rpc> {
        self.lock().calls.clone()
    }

    /// How many times `rpc` was called.
    pub fn calls_of(&self, rpc: Rpc) -> usize {
        self.lock().calls.iter().filter(|c| **c == rpc).count()
    }

    /// How many calls changed or tried to change a schedule.
    pub fn writes(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| {
                !matches!(
                    **c,
                    Rpc::ListSchedules | Rpc::DescribeSchedule | Rpc::ListSearchAttributes
                )
            })
            .count()
    }

    /// A stored schedule, as held.
    #[doc(hidden)]
    pub fn get(&self, schedule_id: &str) -> Option<Schedule> {
        self.lock()
            .schedules
            .get(schedule_id)
            .map(|e| e.schedule.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a call and returns the injected fault, if any.
    fn call(&self, rpc: Rpc) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        let mut inner = self.lock();
        inner.calls.push(rpc);
        match inner.faults.get_mut(&rpc).and_then(VecDeque::pop_front) {
            Some(code) => Err(StoreError {
                rpc: rpc.name(),
                code: code.to_grpc(),
                message: "injected fault".into(),
            }),
            None => Ok(inner),
        }
    }
}

impl Entry {
    fn owner(&self) -> Option<String> {
        self.memo
            .get(MEMO_PROJECT)
            .and_then(|p| serde_json::from_slice::<String>(&p.data).ok())
    }
}

impl Inner {
    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    fn attribute_type(&self, name: &str) -> Option<AttributeType> {
        if name == FINGERPRINT_ATTRIBUTE {
            return Some(AttributeType::Keyword);
        }
        self.attributes.get(name).copied()
    }
}

/// A schedule as a listing entry or a describe shows it.
fn observed(schedule_id: &str, entry: &Entry) -> Observed {
    let state = entry.schedule.state.clone().unwrap_or_default();
    let fingerprint = entry
        .search_attributes
        .get(FINGERPRINT_ATTRIBUTE)
        .and_then(|p| serde_json::from_slice::<String>(&p.data).ok())
        .map(Fingerprint);
    let spec = entry.schedule.spec.as_ref();
    Observed {
        schedule_id: schedule_id.to_owned(),
        owner: entry.owner(),
        fingerprint,
        paused: state.paused,
        notes: state.notes,
        spec: spec.map(ListedSpec::of),
        // Nothing fires in memory.
        activity: None,
    }
}

/// The schedule to store for `desired` in `pause` state, as the server
/// stores it: the started workflows' search attributes must be registered
/// in the namespace (else `InvalidArgument`, as the server answers), and
/// each gets its type in the payload's metadata.
fn stored(
    inner: &Inner,
    rpc: Rpc,
    desired: &DesiredSchedule,
    pause: &PauseState,
) -> Result<Schedule, StoreError> {
    let mut schedule = with_pause(desired, pause);
    if let Some(Action::StartWorkflow(start)) =
        schedule.action.as_mut().and_then(|a| a.action.as_mut())
    {
        for (name, payload) in start
            .search_attributes
            .iter_mut()
            .flat_map(|a| a.indexed_fields.iter_mut())
        {
            let Some(kind) = inner.attribute_type(name) else {
                return Err(StoreError {
                    rpc: rpc.name(),
                    code: tonic::Code::InvalidArgument,
                    message: format!(
                        "Namespace default has no mapping defined for search attribute {name}"
                    ),
                });
            };
            payload.metadata.insert(
                ATTRIBUTE_TYPE_METADATA.to_owned(),
                kind.name().as_bytes().to_vec(),
            );
        }
    }
    Ok(schedule)
}

fn with_pause(desired: &DesiredSchedule, pause: &PauseState) -> Schedule {
    let mut schedule = desired.schedule.clone();
    let state = schedule.state.get_or_insert_with(Default::default);
    state.paused = pause.paused;
    state.notes = pause.notes.clone();
    schedule
}

#[doc(hidden)]
impl ScheduleStore for MemoryStore {
    async fn list(&self, project: &str) -> Result<Observation, StoreError> {
        self.wait(Rpc::ListSchedules).await;
        let inner = self.call(Rpc::ListSchedules)?;
        let schedules = inner
            .stale_listing
            .as_ref()
            .unwrap_or(&inner.schedules)
            .iter()
            .filter(|(id, _)| owns_id(project, id))
            .map(|(id, entry)| observed(id, entry))
            .collect();
        Ok(Observation {
            schedules,
            complete: true,
        })
    }

    async fn owned_without_waiting(
        &self,
        schedule_id: &str,
        project: &str,
    ) -> Result<bool, StoreError> {
        self.wait(Rpc::DescribeWorkflowExecution).await;
        let inner = self.call(Rpc::DescribeWorkflowExecution)?;
        // A schedule of the CHASM scheduler has no workflow that shows it.
        Ok(self.model != SchedulerModel::Chasm132
            && inner
                .schedules
                .get(schedule_id)
                .is_some_and(|entry| entry.owner().as_deref() == Some(project)))
    }

    async fn describe(&self, schedule_id: &str) -> Result<Option<Described>, StoreError> {
        self.wait(Rpc::DescribeSchedule).await;
        let inner = self.call(Rpc::DescribeSchedule)?;
        Ok(inner.schedules.get(schedule_id).map(|entry| Described {
            observed: observed(schedule_id, entry),
            schedule: entry.schedule.clone(),
            conflict_token: entry.version.to_le_bytes().to_vec(),
            search_attributes: entry.search_attributes.clone(),
            memo: entry.memo.clone(),
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
        self.wait(Rpc::CreateSchedule).await;
        let mut inner = self.call(Rpc::CreateSchedule)?;
        let id = &desired.schedule_id;
        // The server deduplicates by the request id of the latest run first,
        // whether that run is still going or was deleted.
        if inner.create_request_ids.get(id).map(String::as_str) == Some(request_id) {
            return Ok(Created::Created);
        }
        if inner.schedules.contains_key(id) {
            return Ok(Created::AlreadyExists);
        }
        let schedule = stored(&inner, Rpc::CreateSchedule, desired, pause)?;
        let version = inner.bump();
        inner
            .create_request_ids
            .insert(id.clone(), request_id.to_owned());
        inner.schedules.insert(
            id.clone(),
            Entry {
                schedule,
                memo: marker_memo(project, &desired.fingerprint),
                search_attributes: merged_search_attributes(keep, &desired.fingerprint),
                version,
                signals: HashSet::new(),
            },
        );
        if inner.lost_create_answers > 0 {
            inner.lost_create_answers -= 1;
            return Err(StoreError {
                rpc: Rpc::CreateSchedule.name(),
                code: tonic::Code::Unavailable,
                message: "the answer was lost".into(),
            });
        }
        Ok(Created::Created)
    }

    async fn update(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        current: &Described,
        request_id: &str,
    ) -> Result<(), StoreError> {
        // What the real store sends: the schedule, the held attributes with
        // our fingerprint, and a memo only to adopt.
        let sent = merged_search_attributes(&current.search_attributes, &desired.fingerprint);
        let memo = update_memo(project, desired, current);
        let refused = |message: &str| StoreError {
            rpc: Rpc::UpdateSchedule.name(),
            code: tonic::Code::FailedPrecondition,
            message: message.into(),
        };
        self.wait(Rpc::UpdateSchedule).await;
        let mut inner = self.call(Rpc::UpdateSchedule)?;
        if self.model == SchedulerModel::Workflow132 && memo.is_some() {
            return Err(refused(
                "memo updates are not supported on workflow-backed schedules",
            ));
        }
        let schedule = stored(&inner, Rpc::UpdateSchedule, desired, pause)?;
        let version = inner.bump();
        let Some(entry) = inner.schedules.get_mut(&desired.schedule_id) else {
            return Err(StoreError {
                rpc: Rpc::UpdateSchedule.name(),
                code: tonic::Code::NotFound,
                message: "schedule not found".into(),
            });
        };
        let stale = entry.version.to_le_bytes().as_slice() != current.conflict_token.as_slice();
        match self.model {
            SchedulerModel::Chasm132 if stale => return Err(refused("mismatched conflict token")),
            SchedulerModel::Chasm132 => {}
            // The workflow-backed scheduler takes the update as a signal: a
            // repeated request id is deduplicated, and a stale token is
            // answered OK and the update dropped.
            SchedulerModel::Workflow129 | SchedulerModel::Workflow132 => {
                if !entry.signals.insert(request_id.to_owned()) || stale {
                    return Ok(());
                }
            }
        }
        entry.schedule = schedule;
        keep_remaining_actions(&mut entry.schedule, current);
        entry.search_attributes = sent;
        if let (SchedulerModel::Chasm132, Some(memo)) = (self.model, memo) {
            entry.memo = memo;
        }
        entry.version = version;
        Ok(())
    }

    async fn set_paused(&self, schedule_id: &str, pause: &PauseState) -> Result<(), StoreError> {
        self.wait(Rpc::PatchSchedule).await;
        let mut inner = self.call(Rpc::PatchSchedule)?;
        let version = inner.bump();
        let Some(entry) = inner.schedules.get_mut(schedule_id) else {
            return Err(StoreError {
                rpc: Rpc::PatchSchedule.name(),
                code: tonic::Code::NotFound,
                message: "schedule not found".into(),
            });
        };
        let state = entry.schedule.state.get_or_insert_with(Default::default);
        state.paused = pause.paused;
        state.notes = pause.notes.clone();
        entry.version = version;
        Ok(())
    }

    async fn delete(&self, schedule_id: &str) -> Result<(), StoreError> {
        self.wait(Rpc::DeleteSchedule).await;
        let mut inner = self.call(Rpc::DeleteSchedule)?;
        inner.schedules.remove(schedule_id);
        Ok(())
    }

    async fn search_attribute_types(&self) -> Result<super::AttributeTypes, StoreError> {
        self.wait(Rpc::ListSearchAttributes).await;
        let inner = self.call(Rpc::ListSearchAttributes)?;
        let mut types = inner.attributes.clone();
        types.insert(FINGERPRINT_ATTRIBUTE.to_owned(), AttributeType::Keyword);
        Ok(types)
    }
}
