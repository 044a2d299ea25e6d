//! The desired schedules in the compact form a reconciler keeps: per
//! schedule its ids, the fingerprint as bytes, `enabled`, its end, a digest
//! of its spec as a listing shows it (to notice out-of-band edits), and the
//! Temporal schedule itself protobuf-encoded, decoded only when a step
//! writes it. A `serve` of 100,000 workflows holds this instead of the
//! typed project and its Temporal schedules.

use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use temporalio_common::protos::temporal::api::schedule::v1::Schedule;

use super::listed::ListedSpec;
use super::{DesiredSchedule, Fingerprint};
use crate::project::{
    InvalidProject, LoadOptions, Project, Schedule as DeclaredSchedule, Workflow,
};
use std::path::Path;

/// The schedules a project wants, in the compact form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredProject {
    /// The project's name: the owner marker of its schedules.
    pub name: String,
    /// One per scheduled workflow, in the order of [`super::desired`].
    pub schedules: Vec<CompactSchedule>,
}

impl DesiredProject {
    /// The compact desired schedules of `project`.
    ///
    /// ```
    /// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    /// let project = schedule_sync::project::load(&dir).unwrap().project;
    /// let desired = schedule_sync::spec::DesiredProject::of(&project);
    /// assert_eq!(desired.schedules.len(), schedule_sync::spec::desired(&project).len());
    /// ```
    pub fn of(project: &Project) -> Self {
        DesiredProject {
            name: project.name.clone(),
            schedules: project
                .scheduled()
                .map(|(workflow, declared)| CompactSchedule::of(&project.name, workflow, declared))
                .collect(),
        }
    }
}

impl DesiredProject {
    /// Moves every schedule's own allocations (its ids and its encoded
    /// schedule) into fresh ones made by the calling thread, one after
    /// another, freeing the old ones. A loading thread makes them between
    /// the many short-lived allocations of parsing and checking each file;
    /// once those are freed, the kept pieces would hold most pages of its
    /// heap partly filled, which the allocator can give back to the system
    /// only when wholly free. Moved, they fill pages of their own, and the
    /// loading thread's pages become wholly free. Call it on a thread that
    /// did not load, before the schedules' ids are shared.
    pub(crate) fn repack(&mut self) {
        for schedule in &mut self.schedules {
            let moved = CompactSchedule {
                schedule_id: Arc::from(&*schedule.schedule_id),
                workflow: Arc::from(&*schedule.workflow),
                ..schedule.clone()
            };
            *schedule = moved;
        }
    }
}

/// One schedule as the project wants it, kept small: what a plan compares
/// with a listing, and the encoded schedule for the steps that write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactSchedule {
    /// `<project>.<workflow id>`, or the schedule's own id: one text that a
    /// reconciler's statuses share.
    pub schedule_id: Arc<str>,
    /// The workflow id in the project, shared as the schedule id is.
    pub workflow: Arc<str>,
    /// Whether the project wants it running.
    pub enabled: bool,
    /// The end of the schedule (`end_at`), in seconds since the epoch.
    pub end_seconds: Option<i64>,
    /// What its health depends on besides its listing.
    pub health: super::health_policy::Policy,
    fingerprint: [u8; 32],
    listed_spec: [u8; 32],
    encoded: Box<[u8]>,
}

impl CompactSchedule {
    /// The compact form of the schedule `declared` of `workflow` in `project`.
    pub fn of(project: &str, workflow: &Workflow, declared: &DeclaredSchedule) -> Self {
        let schedule_id = super::id_of(project, workflow, declared);
        let fingerprint = super::fingerprint_bytes(&schedule_id, workflow, declared);
        let schedule = super::schedule(&schedule_id, workflow, declared);
        CompactSchedule::new(
            schedule_id,
            workflow.id.clone(),
            fingerprint,
            declared.enabled,
            &schedule,
        )
    }

    fn new(
        schedule_id: String,
        workflow: String,
        fingerprint: [u8; 32],
        enabled: bool,
        schedule: &Schedule,
    ) -> Self {
        let spec = schedule.spec.clone().unwrap_or_default();
        CompactSchedule {
            schedule_id: schedule_id.into(),
            workflow: workflow.into(),
            enabled,
            end_seconds: spec.end_time.as_ref().map(|t| t.seconds),
            health: super::health_policy::Policy::of_temporal(schedule),
            fingerprint,
            listed_spec: ListedSpec::of(&spec).digest(),
            encoded: schedule.encode_to_vec().into_boxed_slice(),
        }
    }

    /// The fingerprint of the managed fields.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(hex(&self.fingerprint))
    }

    /// Whether `fingerprint` (as read from Temporal) is this schedule's.
    pub fn has_fingerprint(&self, fingerprint: &Fingerprint) -> bool {
        let text = fingerprint.0.as_bytes();
        text.len() == 64
            && self
                .fingerprint
                .iter()
                .zip(text.chunks(2))
                .all(|(byte, pair)| pair == hex_pair(*byte))
    }

    /// Whether a listing that shows `listed` shows this schedule's spec.
    pub fn lists_as(&self, listed: &ListedSpec) -> bool {
        listed.digest() == self.listed_spec
    }

    /// The whole desired schedule, for a step that writes it.
    pub fn desired(&self) -> DesiredSchedule {
        DesiredSchedule {
            schedule_id: self.schedule_id.to_string(),
            workflow: self.workflow.to_string(),
            // Encoded by this type from a valid schedule: decoding it back
            // cannot fail.
            schedule: Schedule::decode(&*self.encoded).unwrap_or_default(),
            fingerprint: self.fingerprint(),
            enabled: self.enabled,
        }
    }
}

impl From<&DesiredSchedule> for CompactSchedule {
    fn from(want: &DesiredSchedule) -> Self {
        let fingerprint = unhex(&want.fingerprint.0);
        CompactSchedule::new(
            want.schedule_id.clone(),
            want.workflow.clone(),
            fingerprint,
            want.enabled,
            &want.schedule,
        )
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_pair(byte: u8) -> &'static [u8] {
    let i = usize::from(byte);
    &HEX_PAIRS[2 * i..2 * i + 2]
}

/// Every byte's two lowercase hex digits, in order.
static HEX_PAIRS: [u8; 512] = {
    let mut pairs = [0; 512];
    let mut i = 0;
    while i < 256 {
        pairs[2 * i] = HEX[i >> 4];
        pairs[2 * i + 1] = HEX[i & 0xf];
        i += 1;
    }
    pairs
};

/// `bytes` as lowercase hex, as fingerprints are written.
pub(super) fn hex(bytes: &[u8; 32]) -> String {
    bytes
        .iter()
        .flat_map(|b| hex_pair(*b).iter().map(|c| char::from(*c)))
        .collect()
}

/// The bytes of a lowercase hex fingerprint; a fingerprint of another form
/// (the writer fence's) keeps its digest instead, which no listed
/// fingerprint can equal.
fn unhex(text: &str) -> [u8; 32] {
    let digit = |c: u8| HEX.iter().position(|h| *h == c);
    let bytes = text.as_bytes();
    let mut out = [0u8; 32];
    let parsed = bytes.len() == 64
        && out.iter_mut().zip(bytes.chunks(2)).all(|(byte, pair)| {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => {
                    *byte = u8::try_from(high * 16 + low).unwrap_or(0);
                    true
                }
                _ => false,
            }
        });
    if parsed {
        out
    } else {
        Sha256::digest(bytes).into()
    }
}

/// Loads and validates the project in `dir` as [`crate::project::load_with`] does, into
/// the compact desired schedules that a reconciler keeps (each workflow is
/// mapped as soon as its file is checked, so the typed project never exists
/// at once), with the number of workflow files. The lints of `validate`
/// are not run.
///
/// # Errors
///
/// [`InvalidProject`], as [`crate::project::load_with`].
pub fn load_desired(
    dir: &Path,
    options: &LoadOptions,
) -> Result<(DesiredProject, usize), InvalidProject> {
    let loaded = crate::project::load_as(dir, options, |project, workflow| {
        let compact = workflow
            .schedule
            .as_ref()
            .map(|schedule| CompactSchedule::of(project, &workflow, schedule));
        (workflow.id, compact)
    })?;
    let workflows = loaded.kept.len();
    let mut kept = loaded.kept;
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    let desired = DesiredProject {
        name: loaded.name,
        schedules: kept
            .into_iter()
            .filter_map(|(_, compact)| compact)
            .collect(),
    };
    Ok((desired, workflows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::desired;

    fn both(files: &[&str]) -> Vec<(DesiredSchedule, CompactSchedule)> {
        let project = crate::project::test_project("billing", files);
        let compact = DesiredProject::of(&project);
        assert_eq!(compact.name, "billing");
        desired(&project)
            .into_iter()
            .zip(compact.schedules)
            .collect()
    }

    #[test]
    fn the_compact_form_gives_back_the_whole_desired_schedule() {
        let files = [
            "id: a\nschedule:\n  cron: \"0 2 * * * # nightly\"\n  timezone: Europe/Berlin\n  input: {region: eu, n: [1, 2]}\n",
            "id: b\nschedule:\n  every: 15m\n  offset: 5m\n  enabled: false\n  end_at: 2030-01-01T00:00:00Z\n",
            "id: c\nschedule:\n  id: own-id\n  calendar: {hour: 9}\n  remaining_actions: 3\n  memo: {team: x}\n  retry_policy: {maximum_attempts: 2}\n",
        ];
        for (want, compact) in both(&files) {
            assert_eq!(compact.desired(), want);
            assert_eq!(compact.fingerprint(), want.fingerprint);
            assert!(compact.has_fingerprint(&want.fingerprint));
            assert_eq!(compact.enabled, want.enabled);
            assert_eq!(CompactSchedule::from(&want), compact);
            let end = want
                .schedule
                .spec
                .as_ref()
                .unwrap()
                .end_time
                .map(|t| t.seconds);
            assert_eq!(compact.end_seconds, end);
        }
    }

    #[test]
    fn a_repacked_project_is_the_same_in_fresh_allocations() {
        let project = crate::project::test_project(
            "billing",
            &[
                "id: a\nschedule:\n  cron: \"0 2 * * *\"\n  input: {region: eu}\n",
                "id: b\nschedule:\n  every: 15m\n  enabled: false\n",
            ],
        );
        let loaded = DesiredProject::of(&project);
        let mut repacked = loaded.clone();
        repacked.repack();
        assert_eq!(repacked, loaded);
        for (moved, kept) in repacked.schedules.iter().zip(&loaded.schedules) {
            assert!(!Arc::ptr_eq(&moved.schedule_id, &kept.schedule_id));
            assert!(!Arc::ptr_eq(&moved.workflow, &kept.workflow));
            assert_eq!(moved.desired(), kept.desired());
        }
    }

    #[test]
    fn another_fingerprint_is_not_ours() {
        let (want, compact) = both(&["id: a\nschedule:\n  cron: \"0 2 * * *\"\n"]).remove(0);
        let mut other = want.fingerprint.0.clone();
        other.replace_range(63.., if other.ends_with('0') { "1" } else { "0" });
        assert!(!compact.has_fingerprint(&Fingerprint(other)));
        assert!(!compact.has_fingerprint(&Fingerprint(want.fingerprint.0.to_uppercase())));
        assert!(!compact.has_fingerprint(&Fingerprint("old".into())));
        assert!(!compact.has_fingerprint(&Fingerprint(String::new())));
    }

    #[test]
    fn a_listed_spec_matches_only_the_spec_it_shows() {
        let pairs = both(&[
            "id: a\nschedule:\n  cron: \"0 2 * * *\"\n",
            "id: b\nschedule:\n  cron: \"0 3 * * *\"\n",
        ]);
        let spec = |i: usize| pairs[i].0.schedule.spec.clone().unwrap();
        assert!(pairs[0].1.lists_as(&ListedSpec::of(&spec(0))));
        assert!(!pairs[0].1.lists_as(&ListedSpec::of(&spec(1))));
        // A listing shows no time zone data.
        let mut listed = spec(1);
        listed.timezone_data = vec![1, 2, 3];
        assert!(pairs[1].1.lists_as(&ListedSpec::of(&listed)));
        listed.timezone_name = "Asia/Tokyo".into();
        assert!(!pairs[1].1.lists_as(&ListedSpec::of(&listed)));
    }
}
