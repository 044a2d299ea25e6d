//! The writer fence during a reconcile (see [`crate::fence`]): taking a
//! turn before the first write (claiming the fence, and letting a writer
//! that may be writing go first), and looking at the fence again while
//! writing.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use super::calls::RequestIds;
use super::{Apply, ReconcileOptions, VERIFY_POLL, VERIFY_TIMEOUT};
use crate::fence::{
    RECHECK, RECHECK_PACED_MAX, RECHECK_SHARE, SETTLE, Writer, WriterKey, fence_id, fence_schedule,
    notes_recording_by, parse, recorded,
};
use crate::plan::Plan;
use crate::store::{Created, Described, MIN_RATE, PauseState, ScheduleStore, StoreError};

/// How often a claim is made again when the fence keeps naming an older
/// writer, and how many peers in a row a writer lets go first before it
/// goes on without the fence (a peer's claim never stops a writer's
/// steps, so it then writes its plan out).
const CLAIM_ATTEMPTS: u32 = 3;

/// What the writing steps know of the fence.
#[derive(Default)]
pub(super) struct FenceWatch {
    /// When the fence was last read.
    checked: Mutex<Option<Instant>>,
    /// The writer found there that the steps give way to, once one is.
    newer: OnceLock<Writer>,
    /// Steps not started yet.
    left: AtomicUsize,
}

impl FenceWatch {
    /// When the fence was last read, if it was.
    fn checked(&self) -> Option<Instant> {
        *self
            .checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Who the fence names, from the point of view of one writer.
enum Holder {
    /// This writer.
    Us,
    /// A writer that outranks this one.
    Newer(Writer),
    /// Another process of this writer's rank.
    Peer(Writer),
    /// An older writer, or no writer (a fence without notes of ours).
    Older(Option<Writer>),
}

/// What a claim found.
enum Claim {
    /// The fence names us (or we may write without it): write. `displaced`
    /// is the other process our claim took the fence from, which may be
    /// writing at this moment.
    Held { displaced: Option<Writer> },
    /// A newer writer holds it: write nothing.
    Superseded(Writer),
    /// A peer holds it, and may be writing what we would.
    Peer(Writer),
}

impl<S: ScheduleStore> Apply<'_, S> {
    /// Takes this writer's turn before the first write of `plan`: claims the
    /// fence, and first lets go a writer that may be writing the same
    /// schedules (one whose claim ours took over, or a peer holding the
    /// fence), by watching the listing until it shows no more progress and
    /// planning again from it. Returns the plan to carry out: the one given,
    /// a newer one, or one that gave way to a newer writer.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when a listing fails while watching (nothing is
    /// written then). A failed claim is no error: the steps' own RPCs meet
    /// the same trouble and report it, and the fence is read again while
    /// they run.
    pub(super) async fn take_turn(
        &self,
        mut plan: Plan,
        options: ReconcileOptions,
    ) -> Result<Plan, StoreError> {
        let mut idle_peer = None;
        for _ in 0..CLAIM_ATTEMPTS {
            match self.claim(idle_peer.as_ref(), &plan.record).await {
                Ok(Claim::Held { displaced: None }) => return Ok(plan),
                Ok(Claim::Held {
                    displaced: Some(other),
                }) => {
                    if idle_peer.as_ref() == Some(&other) {
                        return Ok(plan);
                    }
                    tracing::info!(
                        other = %other,
                        "took this project's writer fence over from another writer; \
                         letting its writes in progress finish first"
                    );
                    return self.settle(plan, options).await;
                }
                Ok(Claim::Superseded(newer)) => {
                    plan.give_way(newer);
                    return Ok(plan);
                }
                Ok(Claim::Peer(peer)) => {
                    tracing::info!(
                        peer = %peer,
                        "a peer holds this project's writer fence; letting it write first"
                    );
                    plan = self.settle(plan, options).await?;
                    if plan.steps.is_empty() || plan.superseded_by().is_some() {
                        return Ok(plan);
                    }
                    idle_peer = Some(peer);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot claim the writer fence; writing without it");
                    return Ok(plan);
                }
            }
        }
        Ok(plan)
    }

    /// Lists and plans again every [`SETTLE`] while another writer makes
    /// progress (each listing leaves fewer steps than the one before), and
    /// returns the plan of the first listing that shows none.
    async fn settle(&self, mut plan: Plan, options: ReconcileOptions) -> Result<Plan, StoreError> {
        loop {
            tokio::time::sleep(SETTLE).await;
            let next = self.observe_and_plan(options).await?;
            let progressed = next.steps.len() < plan.steps.len();
            plan = next;
            if !progressed || plan.steps.is_empty() {
                return Ok(plan);
            }
        }
    }

    /// Who `held` (the writer a fence names) is to us. One-off writers
    /// without a rank (an `apply` without a revision) are all one writer:
    /// they neither wait for nor claim over each other, as before peers
    /// took turns.
    fn holder(&self, held: Option<Writer>) -> Holder {
        let unranked = self.writer == WriterKey::default();
        match held {
            Some(w) if w.key > self.writer => Holder::Newer(w),
            Some(w) if w.key == self.writer && (w.name == self.name || unranked) => Holder::Us,
            Some(w) if w.key == self.writer => Holder::Peer(w),
            older => Holder::Older(older),
        }
    }

    /// Reads the project's fence afresh and, unless it names us (recording
    /// every id of `record` already), a newer writer or a peer (other than
    /// `idle_peer`, one found idle), records us there, with the ids of
    /// `record`: creates it, or updates it by a compare-and-set on its
    /// conflict token and reads the update back. The claim's reads of the
    /// fence that get no answer in time end it ([`Apply::reading_once_if_late`]).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the fence cannot be read or written, or keeps
    /// naming an older writer after [`CLAIM_ATTEMPTS`] claims.
    async fn claim(
        &self,
        idle_peer: Option<&Writer>,
        record: &BTreeSet<String>,
    ) -> Result<Claim, StoreError> {
        let id = fence_id(self.project);
        let fence = fence_schedule(self.project);
        let pause = PauseState {
            paused: true,
            notes: notes_recording_by(self.writer, self.name, record),
        };
        let mut ids = RequestIds::new();
        for _ in 0..CLAIM_ATTEMPTS {
            let (before, displaced) = match self
                .reading_once_if_late(|| self.store.describe(&id))
                .await?
            {
                None => {
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
                    // Made with our notes: the fence names us. It is not
                    // read back, since a peer may claim it the next moment
                    // either way, and the fence just created answers a
                    // describe only once the server's scheduler worker has
                    // run it, many seconds later when a burst of creates
                    // keeps that worker busy.
                    return Ok(Claim::Held { displaced: None });
                }
                Some(current) => {
                    if current.observed.owner.as_deref() != Some(self.project) {
                        tracing::warn!(
                            schedule_id = %id,
                            "the writer fence's id is taken by a schedule without this project's marker; writing without a fence"
                        );
                        return Ok(Claim::Held { displaced: None });
                    }
                    let held = parse(&current.observed.notes);
                    let recorded_all = record.is_subset(&recorded(&current.observed.notes));
                    let displaced = match self.holder(held) {
                        Holder::Us if recorded_all => return Ok(Claim::Held { displaced: None }),
                        // Ours, but it must record more ids.
                        Holder::Us => None,
                        // Forced: the fence is left to the newer writer.
                        Holder::Newer(_) if self.force => {
                            return Ok(Claim::Held { displaced: None });
                        }
                        Holder::Newer(newer) => return Ok(self.superseded(newer)),
                        Holder::Peer(peer) if idle_peer != Some(&peer) => {
                            return Ok(Claim::Peer(peer));
                        }
                        Holder::Peer(peer) => Some(peer),
                        Holder::Older(older) => older,
                    };
                    let request_id = ids.next("claim");
                    let claimed = self
                        .write("claim", &id, &request_id, || {
                            self.store
                                .update(self.project, &fence, &pause, &current, &request_id)
                        })
                        .await;
                    match claimed {
                        // Another claim came first (a refused stale token):
                        // look at whom it names.
                        Err(error) if error.is_conflict() => continue,
                        Err(error) => return Err(error),
                        Ok(()) => {}
                    }
                    (current, displaced)
                }
            };
            match self.holder(self.read_back_claim(&id, &before.observed.notes).await?) {
                Holder::Us => return Ok(Claim::Held { displaced }),
                Holder::Newer(_) if self.force => return Ok(Claim::Held { displaced: None }),
                Holder::Newer(newer) => return Ok(self.superseded(newer)),
                Holder::Peer(peer) => return Ok(Claim::Peer(peer)),
                Holder::Older(_) => tracing::info!(
                    "the writer fence names an older writer after our claim; claiming again"
                ),
            }
        }
        Err(StoreError {
            rpc: "UpdateSchedule",
            code: tonic::Code::Aborted,
            message: format!(
                "the writer fence {id} kept naming an older writer after {CLAIM_ATTEMPTS} claims"
            ),
        })
    }

    /// The fence's writer once its notes differ from `before` (what the
    /// claim was made over), or whatever it names when [`VERIFY_TIMEOUT`]
    /// has passed: the server applies an update asynchronously, and
    /// Temporal 1.29 drops one with a stale token without a word.
    async fn read_back_claim(&self, id: &str, before: &str) -> Result<Option<Writer>, StoreError> {
        let deadline = Instant::now() + VERIFY_TIMEOUT;
        loop {
            let held: Option<Described> = self
                .reading_once_if_late(|| self.store.describe(id))
                .await?;
            let notes = held.map(|d| d.observed.notes);
            let changed = notes.as_deref().is_some_and(|n| n != before);
            if changed || Instant::now() >= deadline {
                return Ok(notes.as_deref().and_then(parse));
            }
            tokio::time::sleep(VERIFY_POLL).await;
        }
    }

    /// [`Claim::Superseded`] by `newer`, remembered for the steps and
    /// logged once.
    fn superseded(&self, newer: Writer) -> Claim {
        self.give_way_to(newer.clone());
        Claim::Superseded(newer)
    }

    /// Remembers `other` as the writer the steps leave the project to, and
    /// logs it once.
    fn give_way_to(&self, other: Writer) {
        if self.watch.newer.set(other.clone()).is_ok() {
            tracing::warn!(
                other = %other,
                ours = %self.writer,
                "another writer holds this project's fence; its schedules are left to it (superseded)"
            );
        }
    }

    /// The newer writer found in the fence that the steps leave the project
    /// to (never a peer: see [`Apply::watch_fence`]), if any. Counts the
    /// step that asks as started.
    pub(super) fn newer_writer(&self) -> Option<Writer> {
        let _ = self
            .watch
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if self.force {
            return None;
        }
        self.watch.newer.get().cloned()
    }

    /// Reads the fence while the steps run, beside them (no step waits for
    /// it), every [`Apply::recheck_interval`], until a newer writer shows
    /// there; never ends by itself. A failed read changes nothing: the
    /// steps' own RPCs meet the same failure. The reads are sent once each
    /// and kept out of the outage breaker: on a namespace at its rate limit,
    /// Temporal 1.29's scheduler workflows answer a describe's query late,
    /// which is no sign of an outage.
    pub(super) async fn watch_fence(&self) -> Infallible {
        let id = fence_id(self.project);
        loop {
            if self.force || self.watch.newer.get().is_some() {
                return std::future::pending().await;
            }
            let now = Instant::now();
            let due = self.watch.checked().map(|at| at + self.recheck_interval());
            if let Some(due) = due.filter(|due| *due > now) {
                // Looked at again at least every RECHECK: the interval
                // shortens when the pace does, or the plan nears its end.
                tokio::time::sleep_until(due.min(now + RECHECK)).await;
                continue;
            }
            self.fence_read();
            if let Ok(Some(current)) = self.store.describe(&id).await {
                // Only a newer writer stops the steps. A peer's claim does
                // not: the peer judged us idle from a listing, and listings
                // lag (a writer whose creates are not listed yet looks
                // idle). Were we to stop, each peer could in turn claim over
                // the one writing and stop it, planning again from a
                // listing that lags as much, and no writer would finish. We
                // go on to the end of our plan (a create the peer sent
                // first is found there, AlreadyExists): at worst a schedule
                // is sent twice, never left unwritten.
                if let Holder::Newer(other) = self.holder(parse(&current.observed.notes)) {
                    self.give_way_to(other);
                }
            }
        }
    }

    /// How long the fence goes unread while steps run: [`RECHECK`], unless
    /// the server's limit paces the calls. Then each read takes a turn that
    /// a write could have had, so the reads are spaced to cost at most
    /// [`RECHECK_SHARE`] of the pace (every 5 s at 10 requests a second),
    /// never more than [`RECHECK_PACED_MAX`] apart; and every [`RECHECK`]
    /// again once the steps left fit in one such gap. The last writes
    /// matter most: a newer writer that took the fence over lets our writes
    /// finish before it plans, by watching the listing for progress, and
    /// the last ones are those that may land after it looked.
    pub(super) fn recheck_interval(&self) -> Duration {
        let Some(rate) = self.store.pace_status().and_then(|pace| pace.rate) else {
            return RECHECK;
        };
        let spaced = Duration::from_secs_f64(1.0 / (RECHECK_SHARE * rate.max(MIN_RATE)))
            .clamp(RECHECK, RECHECK_PACED_MAX);
        let left = self.watch.left.load(Ordering::SeqCst) as f64;
        if left <= rate * spaced.as_secs_f64() {
            RECHECK
        } else {
            spaced
        }
    }

    /// Tells the fence watch that `steps` steps are about to run.
    pub(super) fn expect_steps(&self, steps: usize) {
        self.watch.left.store(steps, Ordering::SeqCst);
    }

    /// The writer found in the fence during this reconcile that the steps
    /// left the project to, if any.
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
