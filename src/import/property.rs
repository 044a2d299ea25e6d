//! The import's promise, tried on many random actions: any start-workflow
//! action the API can hold either imports to a file that loads back as
//! exactly that schedule (the same in every field `plan` compares, and
//! imported again, the same file), or is skipped with a reason. Never a
//! wrong file.
//!
//! The actions are drawn with a fixed seed from values that matter at the
//! edges: workflow ids with spaces or none, durations of a nanosecond,
//! zero, negative or Temporal's default, retry policies the loader refuses,
//! payloads in other encodings or not JSON at all, search attributes of
//! every type with values that fit it or not, priorities out of range.

use std::collections::HashMap;

use temporalio_common::protos::temporal::api::common::v1::{
    Header, Memo, Payload, Payloads, Priority, RetryPolicy, SearchAttributes,
};
use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
use temporalio_common::protos::temporal::api::sdk::v1::UserMetadata;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;

use super::*;
use crate::store::Observed;

/// How many random actions are tried.
const CASES: usize = 3000;

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn json(rng: &mut fastrand::Rng, depth: u32) -> serde_json::Value {
    use serde_json::{Value, json};
    match rng.u8(..if depth == 0 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => json!(rng.i64(..)),
        3 => json!(*pick(rng, &[0.5, -2.5e10, 1e-7, 0.1, 3.0])),
        4 => json!(*pick(
            rng,
            &[
                "",
                "on",
                "yes",
                "é\n\"x\"",
                "a: b",
                "2026-01-01T00:00:00Z",
                "#"
            ]
        )),
        5 => json!(rng.u64(..)),
        6 => Value::Array((0..rng.usize(..3)).map(|_| json(rng, depth - 1)).collect()),
        _ => Value::Object(
            (0..rng.usize(..3))
                .map(|_| {
                    (
                        (*pick(rng, &["a", "b c", "yes", "1", ""])).to_owned(),
                        json(rng, depth - 1),
                    )
                })
                .collect(),
        ),
    }
}

fn payload(rng: &mut fastrand::Rng) -> Payload {
    let mut payload = crate::spec::json_payload(&json(rng, 2));
    match rng.u8(..10) {
        0 => {
            payload
                .metadata
                .insert("encoding".into(), b"binary/encrypted".to_vec());
        }
        1 => {
            payload
                .metadata
                .insert("encoding".into(), b"binary/plain".to_vec());
            payload.data = vec![0xff, 0x00];
        }
        2 => payload.data = b"{not json".to_vec(),
        3 => {
            payload.metadata.clear();
        }
        _ => {}
    }
    payload
}

fn duration(rng: &mut fastrand::Rng) -> Option<prost_wkt_types::Duration> {
    let (seconds, nanos) = match rng.u8(..8) {
        0 => return None,
        1 => (0, 0),
        2 => (10, 0),
        3 => (0, 1),
        4 => (-5, 0),
        5 => (rng.i64(1..1_000_000), 0),
        6 => (rng.i64(0..100), rng.i32(0..1000) * 1_000_000),
        _ => (3600, 500_000_000),
    };
    Some(prost_wkt_types::Duration { seconds, nanos })
}

fn attribute(rng: &mut fastrand::Rng) -> (String, Payload) {
    let kind = *pick(
        rng,
        &[
            "Keyword",
            "KeywordList",
            "Text",
            "Int",
            "Double",
            "Bool",
            "Datetime",
            "Bogus",
            "",
        ],
    );
    let value = match rng.u8(..9) {
        0 => serde_json::json!(["a", "b"]),
        1 => serde_json::json!("2026-01-01T00:00:00.5+02:00"),
        2 => serde_json::json!(7),
        3 => serde_json::json!(2.5),
        4 => serde_json::json!(true),
        5 => serde_json::json!("x"),
        6 => serde_json::json!(""),
        7 => serde_json::json!([1]),
        _ => json(rng, 1),
    };
    let mut payload = crate::spec::json_payload(&value);
    if !kind.is_empty() {
        payload
            .metadata
            .insert("type".into(), kind.as_bytes().to_vec());
    }
    (
        (*pick(rng, &["CustomerId", "Tags", "yes", "a b", "Due"])).to_owned(),
        payload,
    )
}

fn action(rng: &mut fastrand::Rng, schedule_id: &str) -> NewWorkflowExecutionInfo {
    let mut start = NewWorkflowExecutionInfo {
        workflow_id: (*pick(rng, &[schedule_id, "other", "with space", " padded", "é"])).to_owned(),
        ..Default::default()
    };
    if rng.bool() {
        start.input = Some(Payloads {
            payloads: (0..rng.usize(..4)).map(|_| payload(rng)).collect(),
        });
    }
    start.workflow_execution_timeout = duration(rng);
    start.workflow_run_timeout = duration(rng);
    start.workflow_task_timeout = duration(rng);
    if rng.u8(..3) == 0 {
        start.retry_policy = Some(RetryPolicy {
            initial_interval: duration(rng),
            backoff_coefficient: *pick(rng, &[0.0, 0.5, 1.0, 1.5, 2.0, 1e300]),
            maximum_interval: duration(rng),
            maximum_attempts: *pick(rng, &[0, 1, 5, -1, i32::MAX]),
            non_retryable_error_types: (0..rng.usize(..3))
                .map(|_| (*pick(rng, &["Bad", "a b", "", "yes"])).to_owned())
                .collect(),
        });
    }
    if rng.u8(..3) == 0 {
        start.memo = Some(Memo {
            fields: (0..rng.usize(..3))
                .map(|_| {
                    (
                        (*pick(rng, &["team", "yes", "a b", ""])).to_owned(),
                        payload(rng),
                    )
                })
                .collect(),
        });
    }
    if rng.u8(..3) == 0 {
        start.search_attributes = Some(SearchAttributes {
            indexed_fields: (0..rng.usize(..3)).map(|_| attribute(rng)).collect(),
        });
    }
    if rng.u8(..3) == 0 {
        let text = |rng: &mut fastrand::Rng| match rng.u8(..4) {
            0 => None,
            1 => Some(payload(rng)),
            _ => Some(crate::spec::json_payload(
                &(*pick(rng, &["Nightly", "two\nlines", "", "\"q\""])).into(),
            )),
        };
        start.user_metadata = Some(UserMetadata {
            summary: text(rng),
            details: text(rng),
        });
    }
    if rng.u8(..3) == 0 {
        start.priority = Some(Priority {
            priority_key: *pick(rng, &[0, 1, 3, -1, 100]),
            fairness_key: (*pick(rng, &["", "tenant", "a b", &"k".repeat(70)])).to_owned(),
            fairness_weight: *pick(rng, &[0.0, 2.5, 0.1, -1.0, 5000.0, 0.0005]),
        });
    }
    if rng.u8(..20) == 0 {
        start.header = Some(Header {
            fields: HashMap::from([("h".to_owned(), payload(rng))]),
        });
    }
    start
}

fn held(rng: &mut fastrand::Rng) -> Described {
    let project =
        crate::project::test_project("billing", &["id: a\nschedule:\n  cron: \"0 2 * * *\"\n"]);
    let want = desired(&project).remove(0);
    let mut schedule = want.schedule;
    if let Some(Action::StartWorkflow(start)) =
        schedule.action.as_mut().and_then(|a| a.action.as_mut())
    {
        let drawn = action(rng, &want.schedule_id);
        *start = NewWorkflowExecutionInfo {
            workflow_type: start.workflow_type.take(),
            task_queue: start.task_queue.take(),
            ..drawn
        };
    }
    let state = schedule.state.clone().unwrap_or_default();
    Described {
        observed: Observed {
            schedule_id: want.schedule_id,
            owner: None,
            fingerprint: None,
            paused: state.paused,
            notes: state.notes,
            spec: schedule.spec.as_ref().map(crate::store::ListedSpec::of),
            activity: None,
        },
        schedule,
        conflict_token: Vec::new(),
        search_attributes: HashMap::new(),
        memo: HashMap::new(),
    }
}

fn target() -> Target<'static> {
    static NO_TYPES: crate::store::AttributeTypes = std::collections::BTreeMap::new();
    Target {
        project: "billing",
        task_queue: "q",
        folder: Path::new("workflows"),
        attribute_types: &NO_TYPES,
    }
}

fn load(imported: &Imported) -> Schedule {
    let outcome = check_workflow_source(imported.file.clone(), &imported.text, "q");
    let workflow = outcome.workflow.unwrap_or_else(|| {
        panic!(
            "an imported file does not load:\n{}\n{:#?}",
            imported.text, outcome.diagnostics
        )
    });
    desired(&Project {
        name: "billing".into(),
        task_queue: "q".into(),
        workflows: vec![workflow],
    })
    .remove(0)
    .schedule
}

#[test]
fn any_action_imports_exactly_or_is_skipped_with_a_reason() {
    let mut rng = fastrand::Rng::with_seed(0x05ee_d16a);
    let (mut imported_count, mut skipped_count) = (0, 0);
    for case in 0..CASES {
        let held = held(&mut rng);
        match import(&target(), &held) {
            Ok(imported) => {
                imported_count += 1;
                let again = load(&imported);
                assert_eq!(
                    field_changes(&held.schedule, &again),
                    Vec::new(),
                    "case {case}:\n{}",
                    imported.text
                );
                assert!(
                    same_schedule(&held.schedule, &again),
                    "case {case}:\n{}",
                    imported.text
                );
                // Imported once more, the schedule the file declares gives
                // the same file.
                let mut round = held.clone();
                round.schedule = again;
                let twice = import(&target(), &round).expect("a loaded file imports");
                assert_eq!(twice.text, imported.text, "case {case}");
            }
            Err(skipped) => {
                skipped_count += 1;
                assert!(!skipped.reason.trim().is_empty(), "case {case}");
            }
        }
    }
    // The draw reaches both outcomes, and often.
    assert!(imported_count > CASES / 20, "{imported_count} imported");
    assert!(skipped_count > CASES / 10, "{skipped_count} skipped");
}
