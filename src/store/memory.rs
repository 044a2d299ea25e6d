//! An in-memory [`ScheduleStore`] for embedders' tests and for fault
//! injection: it keeps schedules in a map, counts every call, and can be told
//! to fail the next calls of an RPC with a gRPC code.
//!
//! It differs from Temporal 1.29 in one documented way: an update with a stale
//! conflict token fails with `FailedPrecondition` (as Temporal's newer
//! scheduler does) instead of being dropped silently.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use temporalio_common::protos::temporal::api::schedule::v1::Schedule;

use super::{Created, Described, PauseState, ScheduleStore, StoreError};
use crate::desired::{DesiredSchedule, Fingerprint, owns_id};
use crate::plan::{Observation, Observed};

/// One stored schedule.
#[derive(Clone, Debug)]
struct Entry {
    schedule: Schedule,
    owner: Option<String>,
    fingerprint: Option<Fingerprint>,
    version: u64,
}

#[derive(Default)]
struct Inner {
    schedules: BTreeMap<String, Entry>,
    next_version: u64,
    faults: HashMap<&'static str, VecDeque<tonic::Code>>,
    calls: Vec<&'static str>,
    /// While set, listings show this old copy: the visibility store lags.
    stale_listing: Option<BTreeMap<String, Entry>>,
}

/// Schedules in memory.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `times` calls of `rpc` (such as `"UpdateSchedule"`) fail
    /// with `code`.
    pub fn fail_next(&self, rpc: &'static str, code: tonic::Code, times: usize) {
        let mut inner = self.lock();
        inner
            .faults
            .entry(rpc)
            .or_default()
            .extend(std::iter::repeat_n(code, times));
    }

    /// Puts a schedule in place without a marker, as a person would.
    pub fn insert_unowned(&self, schedule_id: &str, schedule: Schedule) {
        let mut inner = self.lock();
        let version = inner.bump();
        inner.schedules.insert(
            schedule_id.to_owned(),
            Entry {
                schedule,
                owner: None,
                fingerprint: None,
                version,
            },
        );
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

    /// Changes a schedule's definition behind the project's back, as a person
    /// in the Temporal UI would; the marker and the fingerprint stay.
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
    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().calls.clone()
    }

    /// How many times `rpc` was called.
    pub fn calls_of(&self, rpc: &str) -> usize {
        self.lock().calls.iter().filter(|c| **c == rpc).count()
    }

    /// How many calls changed or tried to change a schedule.
    pub fn writes(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| !matches!(**c, "ListSchedules" | "DescribeSchedule"))
            .count()
    }

    /// A stored schedule, as held.
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
    fn call(&self, rpc: &'static str) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        let mut inner = self.lock();
        inner.calls.push(rpc);
        match inner.faults.get_mut(rpc).and_then(VecDeque::pop_front) {
            Some(code) => Err(StoreError {
                rpc,
                code,
                message: "injected fault".into(),
            }),
            None => Ok(inner),
        }
    }
}

impl Inner {
    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }
}

fn observed(schedule_id: &str, entry: &Entry) -> Observed {
    let state = entry.schedule.state.clone().unwrap_or_default();
    Observed {
        schedule_id: schedule_id.to_owned(),
        owner: entry.owner.clone(),
        fingerprint: entry.fingerprint.clone(),
        paused: state.paused,
        notes: state.notes,
        spec: entry.schedule.spec.clone(),
    }
}

impl ScheduleStore for MemoryStore {
    async fn list(&self, project: &str) -> Result<Observation, StoreError> {
        let inner = self.call("ListSchedules")?;
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

    async fn describe(&self, schedule_id: &str) -> Result<Option<Described>, StoreError> {
        let inner = self.call("DescribeSchedule")?;
        Ok(inner.schedules.get(schedule_id).map(|entry| Described {
            observed: observed(schedule_id, entry),
            schedule: entry.schedule.clone(),
            conflict_token: entry.version.to_le_bytes().to_vec(),
        }))
    }

    async fn create(
        &self,
        project: &str,
        desired: &DesiredSchedule,
    ) -> Result<Created, StoreError> {
        let mut inner = self.call("CreateSchedule")?;
        if inner.schedules.contains_key(&desired.schedule_id) {
            return Ok(Created::AlreadyExists);
        }
        let version = inner.bump();
        inner.schedules.insert(
            desired.schedule_id.clone(),
            Entry {
                schedule: desired.schedule.clone(),
                owner: Some(project.to_owned()),
                fingerprint: Some(desired.fingerprint.clone()),
                version,
            },
        );
        Ok(Created::Created)
    }

    async fn update(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        conflict_token: &[u8],
    ) -> Result<(), StoreError> {
        let mut inner = self.call("UpdateSchedule")?;
        let version = inner.bump();
        let Some(entry) = inner.schedules.get_mut(&desired.schedule_id) else {
            return Err(StoreError {
                rpc: "UpdateSchedule",
                code: tonic::Code::NotFound,
                message: "no such schedule".into(),
            });
        };
        if entry.version.to_le_bytes().as_slice() != conflict_token {
            return Err(StoreError {
                rpc: "UpdateSchedule",
                code: tonic::Code::FailedPrecondition,
                message: "conflict token mismatch".into(),
            });
        }
        let mut schedule = desired.schedule.clone();
        let state = schedule.state.get_or_insert_with(Default::default);
        state.paused = pause.paused;
        state.notes = pause.notes.clone();
        *entry = Entry {
            schedule,
            owner: Some(project.to_owned()),
            fingerprint: Some(desired.fingerprint.clone()),
            version,
        };
        Ok(())
    }

    async fn set_paused(&self, schedule_id: &str, pause: &PauseState) -> Result<(), StoreError> {
        let mut inner = self.call("PatchSchedule")?;
        let version = inner.bump();
        let Some(entry) = inner.schedules.get_mut(schedule_id) else {
            return Err(StoreError {
                rpc: "PatchSchedule",
                code: tonic::Code::NotFound,
                message: "no such schedule".into(),
            });
        };
        let state = entry.schedule.state.get_or_insert_with(Default::default);
        state.paused = pause.paused;
        state.notes = pause.notes.clone();
        entry.version = version;
        Ok(())
    }

    async fn delete(&self, schedule_id: &str) -> Result<(), StoreError> {
        let mut inner = self.call("DeleteSchedule")?;
        inner.schedules.remove(schedule_id);
        Ok(())
    }
}
