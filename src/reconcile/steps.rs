//! What each kind of step does. Every step re-reads its schedule before it
//! writes (the listing may be stale), never writes a schedule that is not
//! ours, and reads back what Temporal may have answered OK to without doing.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};

use super::calls::RequestIds;
use super::failure::Failure;
use super::{Apply, Effect, MAX_WRITES_PER_STEP, RACE_ATTEMPTS, VERIFY_POLL, VERIFY_TIMEOUT};
use crate::compare::{holds, same_schedule};
use crate::spec::DesiredSchedule;
use crate::store::{
    Created, Described, PauseState, ScheduleStore, StoreError, keep_remaining_actions,
};

/// A step's future behind a pointer, as the create and update paths call
/// each other.
type Boxed<'b> = Pin<Box<dyn Future<Output = Result<Effect, Failure>> + Send + 'b>>;

impl<S: ScheduleStore> Apply<'_, S> {
    /// [`Apply::create`] behind a pointer, as the create and update paths
    /// call each other.
    fn create_boxed<'b>(&'b self, want: &'b DesiredSchedule, ids: &'b mut RequestIds) -> Boxed<'b> {
        if ids.made() >= MAX_WRITES_PER_STEP {
            return Box::pin(std::future::ready(Err(Failure::Churning(
                want.schedule_id.clone(),
            ))));
        }
        Box::pin(self.create(want, ids))
    }

    /// [`Apply::update`] behind a pointer.
    fn update_boxed<'b>(
        &'b self,
        want: &'b DesiredSchedule,
        adopt: bool,
        ids: &'b mut RequestIds,
    ) -> Boxed<'b> {
        if ids.made() >= MAX_WRITES_PER_STEP {
            return Box::pin(std::future::ready(Err(Failure::Churning(
                want.schedule_id.clone(),
            ))));
        }
        Box::pin(self.update(want, adopt, ids))
    }

    /// Creates `want`. A create that was sent more than once (a retry after
    /// a failed or lost answer; not after a throttled one, which the server
    /// refused before carrying it out) is read back: the server answers a request
    /// id it has seen with OK, whether or not the schedule still exists (it
    /// remembers request ids after a delete). A create that left no schedule
    /// is made again with a fresh request id, once. A create answered OK on
    /// its first sending carried a request id never sent before, so its OK
    /// is a real create and costs no read-back.
    pub(super) async fn create(
        &self,
        want: &DesiredSchedule,
        ids: &mut RequestIds,
    ) -> Result<Effect, Failure> {
        let pause = pause_for(want, None);
        let none = HashMap::new();
        for _ in 0..2 {
            let request_id = ids.next("create");
            // A throttled answer is a clear refusal: only the other sendings
            // may have been carried out.
            let sent = AtomicU32::new(0);
            let refused = AtomicU32::new(0);
            let created = self
                .write("create", &want.schedule_id, &request_id, || {
                    sent.fetch_add(1, Ordering::Relaxed);
                    let call = self
                        .store
                        .create(self.project, want, &pause, &none, &request_id);
                    let refused = &refused;
                    async move {
                        let result = call.await;
                        if result.as_ref().is_err_and(StoreError::is_throttled) {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        result
                    }
                })
                .await?;
            if created == Created::AlreadyExists {
                // Taken since the listing (or the listing lagged): update it,
                // if it is ours, or adopt it if asked to.
                return self.update_boxed(want, self.adopt, ids).await;
            }
            if sent.load(Ordering::Relaxed) - refused.load(Ordering::Relaxed) == 1 {
                return Ok(Effect::Applied);
            }
            match self.owner_of_created(&want.schedule_id).await? {
                Some(owner) if owner.as_deref() == Some(self.project) => {
                    return Ok(Effect::Applied);
                }
                Some(_) => return Ok(Effect::Conflict),
                None => tracing::warn!(
                    schedule_id = want.schedule_id,
                    "Temporal answered the create with OK but holds no such schedule; creating it again"
                ),
            }
        }
        Err(Failure::CreateNotHeld(want.schedule_id.clone()))
    }

    /// Reads the schedule for its conflict token and pause, updates it, and
    /// reads it back. A lost race (a stale token refused, as Temporal 1.32's
    /// CHASM scheduler does, or an update the server dropped because another
    /// landed first, as 1.29 does) is re-read and tried again, up to
    /// [`RACE_ATTEMPTS`] times; it is never blindly overwritten. An adoption
    /// lands with the update where the server stores a memo sent with it
    /// (1.32's CHASM scheduler); where it does not (1.29 ignores it, and 1.32
    /// refuses it for a workflow-backed schedule), the schedule is re-created
    /// with the marker.
    pub(super) async fn update(
        &self,
        want: &DesiredSchedule,
        adopt: bool,
        ids: &mut RequestIds,
    ) -> Result<Effect, Failure> {
        let mut last = None;
        for _ in 0..RACE_ATTEMPTS {
            let Some(current) = self.describe(&want.schedule_id).await? else {
                // Deleted since the listing: create it again.
                return self.create_boxed(want, ids).await;
            };
            let ours = current.observed.owner.as_deref() == Some(self.project);
            let adoptable = adopt && current.observed.owner.is_none();
            if !(ours || adoptable) {
                return Ok(Effect::Conflict);
            }
            let operator_pause = want.enabled && current.observed.paused_by_operator();
            let pause = pause_for(
                want,
                operator_pause.then(|| PauseState {
                    paused: true,
                    notes: current.observed.notes.clone(),
                }),
            );
            if ours && holds(&current, want, &pause) {
                return Ok(Effect::AlreadyDone);
            }
            let request_id = ids.next("update");
            let written = self
                .write("update", &want.schedule_id, &request_id, || {
                    self.store
                        .update(self.project, want, &pause, &current, &request_id)
                })
                .await;
            let kept_pause = if operator_pause {
                Effect::PausedByOperator
            } else {
                Effect::Applied
            };
            // An adoption re-creates the schedule, when the server did not
            // take the marker with the update.
            let recreated = |effect| {
                if effect == Effect::Applied {
                    kept_pause
                } else {
                    effect
                }
            };
            match written {
                Err(error) if error.is_conflict() && adoptable => {
                    // Refused while the token is still current: no lost race,
                    // but a server that takes no memo on update (1.32, for a
                    // workflow-backed schedule).
                    match self.describe(&want.schedule_id).await? {
                        Some(now) if now.conflict_token == current.conflict_token => {
                            return self.recreate(want, &pause, &now, ids).await.map(recreated);
                        }
                        _ => {
                            last = Some(Failure::LostRace {
                                schedule_id: want.schedule_id.clone(),
                                last: Some(error),
                            });
                        }
                    }
                }
                // A lost race, or deleted since the describe: read again.
                Err(error) if error.is_conflict() || error.code == tonic::Code::NotFound => {
                    last = Some(Failure::LostRace {
                        schedule_id: want.schedule_id.clone(),
                        last: Some(error),
                    });
                }
                Err(error) => return Err(error.into()),
                Ok(()) => match self.read_back(want, &current.conflict_token).await? {
                    ReadBack::Lost => {
                        last = Some(Failure::LostRace {
                            schedule_id: want.schedule_id.clone(),
                            last: None,
                        });
                    }
                    ReadBack::Applied(held)
                        if held.observed.owner.as_deref() == Some(self.project) =>
                    {
                        return Ok(kept_pause);
                    }
                    ReadBack::Applied(held) if adopt => {
                        return self.recreate(want, &pause, &held, ids).await.map(recreated);
                    }
                    // Someone else's schedule took its place meanwhile.
                    ReadBack::Applied(_) => return Ok(Effect::Conflict),
                },
            }
        }
        Err(last.unwrap_or_else(|| Failure::LostRace {
            schedule_id: want.schedule_id.clone(),
            last: None,
        }))
    }

    /// Adopts a schedule by deleting it and creating it again with our
    /// marker, in `pause` state, keeping the search attributes and the count
    /// of a limit on actions that it `held`: the only way to set a memo on
    /// Temporal 1.29, and on 1.32 for a workflow-backed schedule.
    async fn recreate(
        &self,
        want: &DesiredSchedule,
        pause: &PauseState,
        held: &Described,
        ids: &mut RequestIds,
    ) -> Result<Effect, Failure> {
        let mut kept = want.clone();
        keep_remaining_actions(&mut kept.schedule, held);
        let want = &kept;
        let held = &held.search_attributes;
        tracing::info!(
            schedule_id = want.schedule_id,
            "the server takes no memo with an update; re-creating the schedule to adopt it"
        );
        let request_id = ids.next("delete");
        self.write("delete", &want.schedule_id, &request_id, || {
            self.store.delete(&want.schedule_id)
        })
        .await?;
        let request_id = ids.next("create");
        let created = self
            .write("create", &want.schedule_id, &request_id, || {
                self.store
                    .create(self.project, want, pause, held, &request_id)
            })
            .await
            .map_err(|error| Failure::AdoptionInterrupted {
                schedule_id: want.schedule_id.clone(),
                reason: error.to_string(),
                retryable: error.is_retryable(),
            })?;
        match (created, self.owner_of_created(&want.schedule_id).await?) {
            (Created::Created, Some(owner)) if owner.as_deref() == Some(self.project) => {
                Ok(Effect::Applied)
            }
            (Created::AlreadyExists, _) | (_, Some(_)) => Ok(Effect::Conflict),
            (Created::Created, None) => Err(Failure::AdoptionInterrupted {
                schedule_id: want.schedule_id.clone(),
                reason: "its re-creation did not show".to_owned(),
                retryable: true,
            }),
        }
    }

    /// Pauses or resumes `want` as the project's `enabled` says, after
    /// checking that it is still ours and that no operator paused it since.
    pub(super) async fn set_paused(
        &self,
        want: &DesiredSchedule,
        ids: &mut RequestIds,
    ) -> Result<Effect, Failure> {
        let Some(current) = self.describe(&want.schedule_id).await? else {
            return self.create(want, ids).await;
        };
        if current.observed.owner.as_deref() != Some(self.project) {
            return Ok(Effect::Conflict);
        }
        if want.enabled && current.observed.paused_by_operator() {
            return Ok(Effect::PausedByOperator);
        }
        if current.observed.paused != want.enabled {
            return Ok(Effect::AlreadyDone);
        }
        let pause = if want.enabled {
            PauseState {
                paused: false,
                notes: "schedule-sync: enabled in the project".to_owned(),
            }
        } else {
            pause_for(want, None)
        };
        let operation = if want.enabled { "unpause" } else { "pause" };
        let request_id = ids.next(operation);
        self.write(operation, &want.schedule_id, &request_id, || {
            self.store.set_paused(&want.schedule_id, &pause)
        })
        .await?;
        Ok(Effect::Applied)
    }

    /// Deletes a schedule after checking that it still exists and is ours.
    pub(super) async fn delete(&self, schedule_id: &str) -> Result<Effect, Failure> {
        match self.describe(schedule_id).await? {
            Some(current) if current.observed.owner.as_deref() == Some(self.project) => {}
            // Gone already (the listing lagged), or no longer ours.
            _ => return Ok(Effect::AlreadyDone),
        }
        self.write("delete", schedule_id, "", || self.store.delete(schedule_id))
            .await?;
        Ok(Effect::Applied)
    }

    /// Waits until the schedule's version moves past `token`, then tells
    /// whether it holds our update.
    async fn read_back(&self, want: &DesiredSchedule, token: &[u8]) -> Result<ReadBack, Failure> {
        let deadline = tokio::time::Instant::now() + VERIFY_TIMEOUT;
        loop {
            let Some(now) = self.describe(&want.schedule_id).await? else {
                return Ok(ReadBack::Lost);
            };
            if now.conflict_token != token {
                // The schedule itself, not the fingerprint attribute: Temporal
                // shows a new attribute value a moment after the new definition.
                return Ok(if same_schedule(&now.schedule, &want.schedule) {
                    ReadBack::Applied(Box::new(now))
                } else {
                    ReadBack::Lost
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Failure::UpdateNotShown {
                    schedule_id: want.schedule_id.clone(),
                    waited: VERIFY_TIMEOUT,
                });
            }
            tokio::time::sleep(VERIFY_POLL).await;
        }
    }
}

/// What the read-back of an update found.
enum ReadBack {
    /// The schedule holds our update.
    Applied(Box<Described>),
    /// Another write landed instead, or the schedule is gone.
    Lost,
}

/// The pause state to write for `want`, keeping an operator's pause.
fn pause_for(want: &DesiredSchedule, keep_operator_pause: Option<PauseState>) -> PauseState {
    match keep_operator_pause {
        Some(operator) => operator,
        None => {
            let state = want.schedule.state.clone().unwrap_or_default();
            PauseState {
                paused: state.paused,
                notes: state.notes,
            }
        }
    }
}
