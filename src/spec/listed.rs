//! A schedule's spec as Temporal's listing shows it: what a reconcile
//! compares a listed schedule's timing against without describing it.

use prost::Message;
use sha2::Digest;
use temporalio_common::protos::temporal::api::schedule::v1::ScheduleSpec;

/// How many entries of each spec list (calendars, intervals, excluded
/// calendars) Temporal 1.29 shows in a ListSchedules entry; a schedule with
/// more is shown cut to its first ten.
pub const LISTED_SPEC_ENTRIES: usize = 10;

/// The spec as a ListSchedules entry shows it: the structured calendars,
/// intervals and excluded calendars cut to their first
/// [`LISTED_SPEC_ENTRIES`], and no time zone data. Comparing a listed spec
/// with anything else must go through this first.
pub fn as_listed(spec: &ScheduleSpec) -> ScheduleSpec {
    let mut listed = spec.clone();
    listed.structured_calendar.truncate(LISTED_SPEC_ENTRIES);
    listed.interval.truncate(LISTED_SPEC_ENTRIES);
    listed
        .exclude_structured_calendar
        .truncate(LISTED_SPEC_ENTRIES);
    listed.timezone_data.clear();
    listed
}

/// A spec as a listing shows it ([`as_listed`]), kept protobuf-encoded: a
/// tenth of the decoded spec's size, which counts in a listing of 100,000
/// schedules. Two are equal when their specs are (a spec has no map field,
/// so its encoding is the same every time).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ListedSpec(Box<[u8]>);

impl ListedSpec {
    /// `spec` as a listing shows it.
    pub fn of(spec: &ScheduleSpec) -> Self {
        ListedSpec(as_listed(spec).encode_to_vec().into_boxed_slice())
    }

    /// The spec, decoded.
    pub fn spec(&self) -> ScheduleSpec {
        // Encoded by `of` from a spec: decoding it back cannot fail.
        ScheduleSpec::decode(&*self.0).unwrap_or_default()
    }

    /// A SHA-256 of the encoded spec: equal digests, equal specs.
    pub(crate) fn digest(&self) -> [u8; 32] {
        sha2::Sha256::digest(&self.0).into()
    }
}

impl std::fmt::Debug for ListedSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.spec().fmt(f)
    }
}
