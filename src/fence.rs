//! Writer fencing: when several writers reconcile one project (replicas,
//! the old and new version during a rolling deploy, a person running
//! `apply`), the newest writer wins and the others leave the project alone.
//!
//! # The rule
//!
//! Every writer has a [`WriterKey`]: its **revision** (set explicitly, for
//! example a build or deploy number) and, when no revision is set, the
//! time its process **started**. Keys order by revision first, then start
//! time; any explicit revision outranks every writer without one.
//!
//! Each project has one *fence*: a paused schedule with no firing times,
//! `<project>.~writer`, whose notes name the newest writer that has written
//! to the project ([`fence_id`], [`notes`]). Notes can be changed on every
//! Temporal version (a memo cannot, on 1.29), and listings show them, so
//! reading the fence costs no RPC beyond the listing.
//!
//! - A writer whose key is **older** than the fence's writes nothing: every
//!   schedule it would change is reported `superseded`, and it stays ready.
//! - A writer that has something to write first records itself in the
//!   fence (its *claim*), reads the fence back, then writes. It claims over
//!   an older writer at once; over a **peer** (another process with an
//!   equal key: a replica of the same revision) only once that peer has
//!   stopped making progress. One-off writers without a rank (an `apply`
//!   without a revision) are not peers of each other but one writer.
//! - A writer that may have taken the project from a writer in the middle
//!   of its writes (it claimed over another process), or that found a peer
//!   in the fence, lets that writer go first: it lists the project every
//!   [`SETTLE`] until two listings in a row show no progress, then plans
//!   from the last one. So writers started together do not race each
//!   other's creates: each schedule is sent once, not once per writer.
//! - While it writes, a writer looks at the fence again every
//!   [`RECHECK`], beside its writes (no write waits for the read); once a
//!   newer writer shows there, it starts no more writes. While the
//!   server's rate limit paces its calls, a read takes a turn a write
//!   could have had: it reads then at most [`RECHECK_SHARE`] of its pace
//!   (every 5 s at 10 requests a second, never more than
//!   [`RECHECK_PACED_MAX`] apart), and every [`RECHECK`] again once the
//!   writes left fit in one such gap. A peer's claim does not stop it: the peer judged it idle from
//!   a listing, and listings lag, so a writer that is writing can look
//!   idle. It writes its plan out (at worst a schedule is sent twice, and
//!   found there), so a writer that has begun writing always finishes, and
//!   peers cannot keep taking the project from each other with nobody
//!   finishing.
//!
//! The fence only ever moves forward, or to a peer that has the project to
//! itself. A claim is an UpdateSchedule that carries the conflict token of
//! the fence as it was read: on Temporal 1.32's CHASM scheduler it is a
//! compare-and-set (a claim over a fence that changed since is refused with
//! `FailedPrecondition`, and the claimer reads the fence again); Temporal
//! 1.29 answers OK and drops a stale update, so there the read-back tells
//! the claimer that another claim came first.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use temporalio_common::protos::temporal::api::common::v1::WorkflowType;
use temporalio_common::protos::temporal::api::schedule::v1::{
    Schedule, ScheduleAction, SchedulePolicies, ScheduleSpec, ScheduleState, schedule_action,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;

use crate::spec::{DesiredSchedule, Fingerprint};

/// How the fence's id ends: `~` is in no workflow id, so no declared
/// workflow can take it.
pub const FENCE_SUFFIX: &str = "~writer";
/// How the fence's notes begin.
pub const NOTES_PREFIX: &str = "schedule-sync writer:";
/// How often a writer that is writing looks at the fence again, while the
/// server's limit does not pace its calls.
pub const RECHECK: Duration = Duration::from_secs(1);
/// While the server's limit paces a writer's calls, the most of the pace
/// that its looks at the fence may take: one read every 5 s at 10 requests
/// a second.
pub const RECHECK_SHARE: f64 = 0.02;
/// The longest a writer that is writing goes without looking at the fence,
/// however slow the pace.
pub const RECHECK_PACED_MAX: Duration = Duration::from_secs(10);
/// How long a writer that lets another one go first waits between two
/// listings while it watches that writer's progress: twice [`RECHECK`], so
/// that a writer whose claim was just taken over has seen it and stopped.
pub const SETTLE: Duration = Duration::from_secs(2);

/// The id of `project`'s fence.
///
/// ```
/// assert_eq!(schedule_sync::fence::fence_id("billing"), "billing.~writer");
/// ```
pub fn fence_id(project: &str) -> String {
    format!("{project}.{FENCE_SUFFIX}")
}

/// The rank of a writer. Keys compare by revision, then by start time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WriterKey {
    /// The explicit revision; 0 when none is set.
    pub revision: u64,
    /// When the writer's process started, in milliseconds since the epoch;
    /// 0 when a revision is set (replicas of one revision are then peers)
    /// and for a one-off `apply` without a revision.
    pub started_ms: u64,
}

impl WriterKey {
    /// The key of a writer with an explicit revision.
    pub fn revision(revision: u64) -> Self {
        WriterKey {
            revision,
            started_ms: 0,
        }
    }

    /// The key of a long-running writer without a revision: ranked by when
    /// it started.
    pub fn started_at(at: SystemTime) -> Self {
        WriterKey {
            revision: 0,
            started_ms: at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// `revision`'s key when it is set, else the key of a writer that
    /// started at `started`.
    pub fn of(revision: Option<u64>, started: SystemTime) -> Self {
        revision.map_or_else(|| WriterKey::started_at(started), WriterKey::revision)
    }
}

impl std::fmt::Display for WriterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.revision, self.started_ms) {
            (0, 0) => write!(f, "no revision"),
            (revision, 0) => write!(f, "revision {revision}"),
            (0, started) => write!(f, "no revision, started {}", started_text(started)),
            (revision, started) => {
                write!(f, "revision {revision}, started {}", started_text(started))
            }
        }
    }
}

fn started_text(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || ms.to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
}

/// A writer as the fence names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Writer {
    /// Its rank.
    #[serde(flatten)]
    pub key: WriterKey,
    /// Who it is: host and process.
    pub name: String,
}

impl std::fmt::Display for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.key)
    }
}

/// This process as a writer's name: `<host>/<pid>` (the pod name on
/// Kubernetes, which sets `HOSTNAME`).
pub fn this_process() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
            .unwrap_or_else(|| "unknown-host".to_owned());
        format!("{host}/{}", std::process::id())
    })
}

/// The fence's notes naming `key`, written by this process.
pub fn notes(key: WriterKey) -> String {
    notes_by(key, this_process())
}

/// The fence's notes naming `key`, written by the writer called `name` (a
/// name without whitespace, as [`this_process`] gives).
///
/// ```
/// use schedule_sync::fence::{WriterKey, notes_by, parse};
/// let writer = parse(&notes_by(WriterKey::revision(3), "pod-b/1")).unwrap();
/// assert_eq!(writer.name, "pod-b/1");
/// ```
pub fn notes_by(key: WriterKey, name: &str) -> String {
    format!(
        "{NOTES_PREFIX} revision={} started={} by={name}",
        key.revision, key.started_ms,
    )
}

/// How the fence's notes list the schedules with ids of their own
/// (`schedule.id`) that the project holds: no listing by the project's id
/// prefix shows them, so the fence records them to keep them found once
/// the file that named them is gone.
pub const RECORD_FIELD: &str = "schedules";

/// The fence's notes naming `key` and recording the schedule ids `own`.
///
/// ```
/// use std::collections::BTreeSet;
/// use schedule_sync::fence::{WriterKey, notes_recording, parse, recorded};
/// let own = BTreeSet::from(["daily-billing-report".to_owned()]);
/// let notes = notes_recording(WriterKey::revision(3), &own);
/// assert_eq!(parse(&notes).unwrap().key, WriterKey::revision(3));
/// assert_eq!(recorded(&notes), own);
/// ```
pub fn notes_recording(key: WriterKey, own: &BTreeSet<String>) -> String {
    notes_recording_by(key, this_process(), own)
}

/// [`notes_recording`], written by the writer called `name`.
pub fn notes_recording_by(key: WriterKey, name: &str, own: &BTreeSet<String>) -> String {
    let mut notes = notes_by(key, name);
    if !own.is_empty() {
        let ids: Vec<&str> = own.iter().map(String::as_str).collect();
        notes.push_str(&format!(" {RECORD_FIELD}={}", ids.join(",")));
    }
    notes
}

/// The schedule ids that fence notes record (none when they are not fence
/// notes, or were written by a version that recorded none).
pub fn recorded(notes: &str) -> BTreeSet<String> {
    let Some(fields) = notes.strip_prefix(NOTES_PREFIX) else {
        return BTreeSet::new();
    };
    fields
        .split_whitespace()
        .filter_map(|field| field.split_once('='))
        .filter(|(name, _)| *name == RECORD_FIELD)
        .flat_map(|(_, ids)| ids.split(','))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The writer that fence notes name, if they are fence notes.
///
/// ```
/// use schedule_sync::fence::{WriterKey, notes, parse};
/// let key = WriterKey::revision(42);
/// assert_eq!(parse(&notes(key)).unwrap().key, key);
/// assert!(parse("paused by an operator").is_none());
/// ```
pub fn parse(notes: &str) -> Option<Writer> {
    let fields = notes.strip_prefix(NOTES_PREFIX)?;
    let (mut revision, mut started, mut name) = (None, None, None);
    for field in fields.split_whitespace() {
        match field.split_once('=') {
            Some(("revision", value)) => revision = value.parse().ok(),
            Some(("started", value)) => started = value.parse().ok(),
            Some(("by", value)) => name = Some(value.to_owned()),
            _ => {}
        }
    }
    Some(Writer {
        key: WriterKey {
            revision: revision?,
            started_ms: started?,
        },
        name: name.unwrap_or_default(),
    })
}

/// The fence schedule of `project`, as it is created: paused, with no
/// firing times (nothing would run even if someone resumed it), and a start
/// action that names no real workflow.
pub fn fence_schedule(project: &str) -> DesiredSchedule {
    let schedule_id = fence_id(project);
    let schedule = Schedule {
        spec: Some(ScheduleSpec::default()),
        action: Some(ScheduleAction {
            action: Some(schedule_action::Action::StartWorkflow(
                NewWorkflowExecutionInfo {
                    workflow_id: schedule_id.clone(),
                    workflow_type: Some(WorkflowType {
                        name: "schedule-sync-writer-fence".to_owned(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: "schedule-sync-writer-fence".to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
        }),
        policies: Some(SchedulePolicies::default()),
        state: Some(ScheduleState {
            paused: true,
            ..Default::default()
        }),
    };
    DesiredSchedule {
        workflow: FENCE_SUFFIX.to_owned(),
        schedule_id,
        schedule,
        // Fixed: the fence's definition never changes, only its notes.
        fingerprint: Fingerprint("schedule-sync-writer-fence-1".to_owned()),
        enabled: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_revision_outranks_start_times_and_replicas_of_one_are_peers() {
        let early = WriterKey::started_at(UNIX_EPOCH + Duration::from_secs(1_000));
        let late = WriterKey::started_at(UNIX_EPOCH + Duration::from_secs(2_000));
        let laptop = WriterKey::default();
        assert!(laptop < early && early < late);
        assert!(late < WriterKey::revision(1));
        assert!(WriterKey::revision(1) < WriterKey::revision(2));
        assert_eq!(
            WriterKey::of(Some(7), SystemTime::now()),
            WriterKey::of(Some(7), UNIX_EPOCH)
        );
    }

    #[test]
    fn notes_round_trip_and_other_notes_are_no_fence() {
        for key in [
            WriterKey::default(),
            WriterKey::revision(u64::MAX),
            WriterKey::started_at(SystemTime::now()),
        ] {
            let writer = parse(&notes(key)).unwrap();
            assert_eq!(writer.key, key);
            assert_eq!(writer.name, this_process());
        }
        assert!(parse("").is_none());
        assert!(parse("schedule-sync writer: revision=x started=1").is_none());
        assert!(parse("schedule-sync writer: started=1").is_none());
    }

    #[test]
    fn the_fence_cannot_be_a_declared_workflow() {
        let id = fence_id("billing");
        let workflow = id.strip_prefix("billing.").unwrap();
        assert!(!crate::project::names::is_workflow_id(workflow));
        assert!(crate::spec::owns_id("billing", &id));
    }
}
