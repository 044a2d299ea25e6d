//! The writer fence during a reconcile (see [`crate::fence`]): claiming it
//! before the first write, and looking at it again while writing.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use tokio::time::Instant;

use super::calls::RequestIds;
use super::{Apply, VERIFY_POLL, VERIFY_TIMEOUT};
use crate::fence::{RECHECK, Writer, fence_id, fence_schedule, notes_recording, parse, recorded};
use crate::plan::outranked;
use crate::store::{Created, PauseState, ScheduleStore, StoreError};

/// How often a claim is made again when the fence keeps naming an older
/// writer (another claim overwrote ours, on a server without
/// compare-and-set).
const CLAIM_ATTEMPTS: u32 = 3;

/// What the writing steps know of the fence.
#[derive(Default)]
pub(super) struct FenceWatch {
    /// When the fence was last read.
    checked: Mutex<Option<Instant>>,
    /// The newer writer found there, once one is.
    newer: OnceLock<Writer>,
}

impl<S: ScheduleStore> Apply<'_, S> {
    /// Reads the project's fence afresh and, when we outrank the writer it
    /// names, records us there and reads it back. `None` when the steps may
    /// go ahead (the fence names us or a peer); the newer writer when it
    /// names one (then nothing is written).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the fence cannot be read or written, or keeps
    /// naming an older writer after [`CLAIM_ATTEMPTS`] claims. The caller
    /// then writes without a claim: its steps meet the same trouble, and the
    /// recheck while they run still stops them for a newer writer.
    pub(super) async fn claim(
        &self,
        record: &BTreeSet<String>,
    ) -> Result<Option<Writer>, StoreError> {
        let id = fence_id(self.project);
        let pause = PauseState {
            paused: true,
            notes: notes_recording(self.writer, record),
        };
        let mut ids = RequestIds::new();
        for _ in 0..CLAIM_ATTEMPTS {
            match self.retrying(|| self.store.describe(&id)).await? {
                None => {
                    let fence = fence_schedule(self.project);
                    let keep = HashMap::new();
                    let request_id = ids.next("claim");
                    let created = self
                        .write("claim", &id, &request_id, || {
                            self.store
                                .create(self.project, &fence, &pause, &keep, &request_id)
                        })
                        .await?;
                    if created == Created::AlreadyExists {
                        // Another writer made it first: look at whom it names.
                        continue;
                    }
                }
                Some(current) => {
                    if current.observed.owner.as_deref() != Some(self.project) {
                        tracing::warn!(
                            schedule_id = %id,
                            "the writer fence's id is taken by a schedule without this project's marker; writing without a fence"
                        );
                        return Ok(None);
                    }
                    let held = parse(&current.observed.notes);
                    if let Some(found) = self.gives_way(held.as_ref()) {
                        return Ok(Some(found));
                    }
                    let recorded_all = record.is_subset(&recorded(&current.observed.notes));
                    if held.is_some_and(|w| {
                        w.key > self.writer || (w.key == self.writer && recorded_all)
                    }) {
                        // A peer that records what we would (or, forced, a
                        // newer writer) holds it.
                        return Ok(None);
                    }
                    let request_id = ids.next("claim");
                    self.write("claim", &id, &request_id, || {
                        self.store.set_paused(&id, &pause)
                    })
                    .await?;
                }
            }
            match self.read_back_claim(&id).await? {
                Some(held) if held.key == self.writer => return Ok(None),
                Some(held) if held.key > self.writer => {
                    if let Some(found) = self.gives_way(Some(&held)) {
                        return Ok(Some(found));
                    }
                    return Ok(None);
                }
                _ => tracing::info!(
                    "the writer fence names an older writer after our claim; claiming again"
                ),
            }
        }
        Err(StoreError {
            rpc: "PatchSchedule",
            code: tonic::Code::Aborted,
            message: format!(
                "the writer fence {id} kept naming an older writer after {CLAIM_ATTEMPTS} claims"
            ),
        })
    }

    /// The fence's writer once it names us or a newer writer, or whatever
    /// it names when [`VERIFY_TIMEOUT`] has passed.
    async fn read_back_claim(&self, id: &str) -> Result<Option<Writer>, StoreError> {
        let deadline = Instant::now() + VERIFY_TIMEOUT;
        loop {
            let held = self
                .retrying(|| self.store.describe(id))
                .await?
                .and_then(|d| parse(&d.observed.notes));
            if held.as_ref().is_some_and(|w| w.key >= self.writer) || Instant::now() >= deadline {
                return Ok(held);
            }
            tokio::time::sleep(VERIFY_POLL).await;
        }
    }

    /// The newer writer that `held` names, when we must give way to it (not
    /// when forced), logged once.
    fn gives_way(&self, held: Option<&Writer>) -> Option<Writer> {
        if self.force || !outranked(held, self.writer) {
            return None;
        }
        let newer = held.cloned()?;
        if self.watch.newer.set(newer.clone()).is_ok() {
            tracing::warn!(
                newer = %newer,
                ours = %self.writer,
                "a newer writer holds this project's fence; its schedules are left to it (superseded)"
            );
        }
        Some(newer)
    }

    /// The newer writer that now holds the fence, read again at most every
    /// [`RECHECK`] while steps run. A failed read changes nothing: the
    /// steps' own RPCs meet the same failure.
    pub(super) async fn newer_writer(&self) -> Option<Writer> {
        if self.force {
            return None;
        }
        if let Some(newer) = self.watch.newer.get() {
            return Some(newer.clone());
        }
        let due = {
            let mut checked = self
                .watch
                .checked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let due = checked.is_none_or(|at| now.duration_since(at) >= RECHECK);
            if due {
                *checked = Some(now);
            }
            due
        };
        if due {
            let id = fence_id(self.project);
            if let Ok(Some(current)) = self.retrying(|| self.store.describe(&id)).await {
                return self.gives_way(parse(&current.observed.notes).as_ref());
            }
        }
        self.watch.newer.get().cloned()
    }

    /// The newer writer found in the fence during this reconcile, if any.
    pub(super) fn newer_writer_seen(&self) -> Option<Writer> {
        self.watch.newer.get().cloned()
    }

    /// Marks the fence as just read (by the claim), so that the first steps
    /// do not read it again at once.
    pub(super) fn fence_read(&self) {
        *self
            .watch
            .checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }
}
