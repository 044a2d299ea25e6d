//! Schedules made with Temporal's API directly (raw CreateSchedule requests,
//! as an SDK sends them, not schedule-sync's own mapping), whose actions use
//! every option a start-workflow action has: a workflow id of their own,
//! several arguments, three timeouts, a retry policy, a memo, search
//! attributes of every type, a summary and details, a priority. Each comes
//! through `import`, `plan --adopt` (no field to change), `apply --adopt` and
//! a plain `plan` (exit 0), and the `temporal` CLI reads back the action as
//! it was. Headers and payloads that are not JSON are skipped, named.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::process::Output;

use schedule_sync::dev_server::DevServer;
use temporalio_common::protos::temporal::api::common::v1::{
    Header, Memo, Payload, Payloads, Priority, RetryPolicy, SearchAttributes, WorkflowType,
};
use temporalio_common::protos::temporal::api::schedule::v1::{
    Schedule, ScheduleAction, ScheduleSpec, schedule_action,
};
use temporalio_common::protos::temporal::api::sdk::v1::UserMetadata;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;
use temporalio_common::protos::temporal::api::workflowservice::v1::CreateScheduleRequest;

use support::Version;

/// The namespace's search attributes, one of each type.
const ATTRIBUTES: [(&str, &str); 7] = [
    ("CustomerId", "Keyword"),
    ("Tags", "KeywordList"),
    ("Notes", "Text"),
    ("Count", "Int"),
    ("Score", "Double"),
    ("Urgent", "Bool"),
    ("Due", "Datetime"),
];

fn json(value: serde_json::Value) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
        data: serde_json::to_vec(&value).unwrap(),
        ..Default::default()
    }
}

/// A search attribute as the SDKs send one: JSON, with its type named.
fn typed(kind: &str, value: serde_json::Value) -> Payload {
    let mut payload = json(value);
    payload
        .metadata
        .insert("type".to_owned(), kind.as_bytes().to_vec());
    payload
}

fn seconds(seconds: i64) -> Option<prost_wkt_types::Duration> {
    Some(prost_wkt_types::Duration { seconds, nanos: 0 })
}

/// An action with nothing but type and task queue, starting `workflow_id`.
fn plain(workflow_id: &str) -> NewWorkflowExecutionInfo {
    NewWorkflowExecutionInfo {
        workflow_id: workflow_id.to_owned(),
        workflow_type: Some(WorkflowType {
            name: "Report".to_owned(),
        }),
        task_queue: Some(TaskQueue {
            name: "reports".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The actions a file can say, by schedule id.
fn expressible() -> Vec<(&'static str, NewWorkflowExecutionInfo)> {
    use serde_json::json as j;
    let everything = NewWorkflowExecutionInfo {
        input: Some(Payloads {
            payloads: vec![
                json(j!("eu")),
                json(j!({"formats": ["pdf", "csv"], "dry": false})),
                json(j!(3)),
            ],
        }),
        workflow_execution_timeout: seconds(7200),
        workflow_run_timeout: seconds(3600),
        workflow_task_timeout: seconds(20),
        retry_policy: Some(RetryPolicy {
            initial_interval: seconds(2),
            backoff_coefficient: 1.5,
            maximum_interval: seconds(120),
            maximum_attempts: 5,
            non_retryable_error_types: vec!["InvalidInput".into(), "Fatal".into()],
        }),
        memo: Some(Memo {
            fields: HashMap::from([
                ("team".to_owned(), json(j!("billing"))),
                ("limits".to_owned(), json(j!({"rows": 1000, "ratio": 0.25}))),
            ]),
        }),
        search_attributes: Some(SearchAttributes {
            indexed_fields: HashMap::from([
                ("CustomerId".to_owned(), typed("Keyword", j!("acme"))),
                (
                    "Tags".to_owned(),
                    typed("KeywordList", j!(["eu", "nightly"])),
                ),
                ("Notes".to_owned(), typed("Text", j!("the nightly run"))),
                ("Count".to_owned(), typed("Int", j!(42))),
                ("Score".to_owned(), typed("Double", j!(0.75))),
                ("Urgent".to_owned(), typed("Bool", j!(true))),
                (
                    "Due".to_owned(),
                    typed("Datetime", j!("2027-01-01T00:00:00Z")),
                ),
            ]),
        }),
        user_metadata: Some(UserMetadata {
            summary: Some(json(j!("Nightly billing report"))),
            details: Some(json(j!("Builds the report.\nOwner: billing."))),
        }),
        priority: Some(Priority {
            priority_key: 2,
            fairness_key: "tenant-a".to_owned(),
            fairness_weight: 2.5,
        }),
        ..plain("daily-billing-report")
    };
    vec![
        ("sdk.everything", everything),
        (
            "sdk.retry-defaults",
            NewWorkflowExecutionInfo {
                retry_policy: Some(RetryPolicy::default()),
                ..plain("sdk-retry")
            },
        ),
        (
            "sdk.task-timeout-default",
            NewWorkflowExecutionInfo {
                // What the `temporal` CLI and some SDKs send by default.
                workflow_task_timeout: seconds(10),
                workflow_execution_timeout: seconds(86_400),
                ..plain("sdk.task-timeout-default")
            },
        ),
        (
            "sdk.untyped-attribute",
            NewWorkflowExecutionInfo {
                // As the `temporal` CLI sends one: no type. 1.29 adds it;
                // 1.32 keeps it untyped, and import asks the namespace.
                search_attributes: Some(SearchAttributes {
                    indexed_fields: HashMap::from([("CustomerId".to_owned(), json(j!("globex")))]),
                }),
                ..plain("sdk-untyped")
            },
        ),
        (
            "sdk.priority-key",
            NewWorkflowExecutionInfo {
                priority: Some(Priority {
                    priority_key: 1,
                    ..Default::default()
                }),
                user_metadata: Some(UserMetadata {
                    summary: Some(json(j!("urgent"))),
                    details: None,
                }),
                ..plain("sdk-priority")
            },
        ),
    ]
}

/// Actions no file can say, with a word of the reason.
fn inexpressible() -> Vec<(&'static str, NewWorkflowExecutionInfo, &'static str)> {
    let mut encrypted = json(serde_json::json!("secret"));
    encrypted
        .metadata
        .insert("encoding".to_owned(), b"binary/encrypted".to_vec());
    let mut protobuf = json(serde_json::json!("x"));
    protobuf
        .metadata
        .insert("encoding".to_owned(), b"binary/protobuf".to_vec());
    vec![
        (
            "sdk.header",
            NewWorkflowExecutionInfo {
                header: Some(Header {
                    fields: HashMap::from([("tracing".to_owned(), json(serde_json::json!("t")))]),
                }),
                ..plain("sdk-header")
            },
            "headers",
        ),
        (
            "sdk.encrypted",
            NewWorkflowExecutionInfo {
                input: Some(Payloads {
                    payloads: vec![encrypted],
                }),
                ..plain("sdk-encrypted")
            },
            "encrypted",
        ),
        (
            "sdk.protobuf-memo",
            NewWorkflowExecutionInfo {
                memo: Some(Memo {
                    fields: HashMap::from([("blob".to_owned(), protobuf)]),
                }),
                ..plain("sdk-protobuf-memo")
            },
            "binary/protobuf",
        ),
    ]
}

/// Creates a schedule with a raw CreateSchedule request, retried while a
/// freshly registered search attribute is not yet known to the server.
async fn create(server: &DevServer, schedule_id: &str, start: NewWorkflowExecutionInfo) {
    let request = CreateScheduleRequest {
        namespace: server.namespace().to_owned(),
        schedule_id: schedule_id.to_owned(),
        schedule: Some(Schedule {
            spec: Some(ScheduleSpec {
                cron_string: vec!["0 2 * * *".to_owned()],
                ..Default::default()
            }),
            action: Some(ScheduleAction {
                action: Some(schedule_action::Action::StartWorkflow(start)),
            }),
            ..Default::default()
        }),
        identity: "an SDK".to_owned(),
        request_id: format!("sdk-{schedule_id}"),
        ..Default::default()
    };
    let client = support::client(server).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut service = client.connection().workflow_service();
        match service
            .create_schedule(tonic::Request::new(request.clone()))
            .await
        {
            Ok(_) => return,
            Err(status)
                if status
                    .message()
                    .contains("no mapping defined for search attribute")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(status) => panic!("creating {schedule_id}: {status}"),
        }
    }
}

fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The action of each schedule as the `temporal` CLI describes it, in the
/// terms that carry meaning: each JSON payload's data decoded (schedule-sync
/// writes the keys of JSON objects sorted, which is the same value),
/// Temporal's default workflow task timeout as none, and search attributes
/// without the type their payloads may name (the namespace's is the type).
fn actions(server: &DevServer, ids: &[&str]) -> BTreeMap<String, serde_json::Value> {
    fn base64(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut count = 0;
        let mut out = Vec::new();
        for c in text.bytes().filter(|c| *c != b'=') {
            let value = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
            bits = (bits << 6) | value;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
                bits &= (1 << count) - 1;
            }
        }
        out
    }
    fn decoded(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                let json = map
                    .get("metadata")
                    .and_then(|m| m.get("encoding"))
                    .and_then(|e| e.as_str())
                    == Some("anNvbi9wbGFpbg==");
                if let (true, Some(serde_json::Value::String(data))) = (json, map.get("data")) {
                    let bytes = base64(data);
                    let parsed: serde_json::Value =
                        serde_json::from_slice(&bytes).expect("JSON data");
                    map.insert("data".to_owned(), parsed);
                }
                map.values_mut().for_each(decoded);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(decoded),
            _ => {}
        }
    }
    ids.iter()
        .map(|id| {
            let mut action = support::describe(server, id)["schedule"]["action"].clone();
            decoded(&mut action);
            // A workflow task timeout of 10s is Temporal's default: a file
            // that says nothing asks for it too, and adoption sends none.
            if let Some(start) = action["startWorkflow"].as_object_mut()
                && start.get("workflowTaskTimeout") == Some(&serde_json::json!("10s"))
            {
                start.remove("workflowTaskTimeout");
            }
            // A search attribute's type is the namespace's: 1.32 keeps one
            // sent untyped as it is, and adoption sends it typed.
            if let Some(fields) =
                action["startWorkflow"]["searchAttributes"]["indexedFields"].as_object_mut()
            {
                for field in fields.values_mut() {
                    if let Some(metadata) = field["metadata"].as_object_mut() {
                        metadata.remove("type");
                    }
                }
            }
            ((*id).to_owned(), action)
        })
        .collect()
}

async fn sdk_made_actions_round_trip_through_import_and_adoption(version: Version) {
    let mut options = support::options(version);
    options.search_attributes.extend(
        ATTRIBUTES
            .iter()
            .map(|(name, kind)| ((*name).to_owned(), (*kind).to_owned())),
    );
    let server = support::start(options).await;
    let expressible = expressible();
    let inexpressible = inexpressible();
    for (id, start) in &expressible {
        create(&server, id, start.clone()).await;
    }
    for (id, start, _) in &inexpressible {
        create(&server, id, start.clone()).await;
    }
    let ids: Vec<&str> = expressible.iter().map(|(id, _)| *id).collect();
    let total = ids.len() + inexpressible.len();
    support::eventually(20, "every schedule is listed", || async {
        support::listed_schedules(&server).len() == total
    })
    .await;
    let before = actions(&server, &ids);

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("sdk");
    let project_arg = project.to_str().unwrap();
    let output = support::run_binary(
        &server,
        &[
            "import",
            project_arg,
            "--project",
            "sdk",
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let report = json_of(&output);
    let mut imported: Vec<&str> = report["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["schedule_id"].as_str().unwrap())
        .collect();
    imported.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(imported, want, "{report:#}");
    for (id, _, word) in &inexpressible {
        let reason = report["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["schedule_id"] == *id)
            .and_then(|s| s["reason"].as_str())
            .unwrap_or_else(|| panic!("{id} not skipped: {report:#}"));
        assert!(reason.contains(word), "{id}: {reason}");
    }
    let everything = std::fs::read_to_string(project.join("workflows/everything.yaml")).unwrap();
    for key in [
        "workflow_id: daily-billing-report",
        "args: [",
        "execution_timeout: 2h",
        "run_timeout: 1h",
        "task_timeout: 20s",
        "retry_policy:",
        "memo:",
        "Due: {type: Datetime, value: \"2027-01-01T00:00:00Z\"}",
        "summary: \"Nightly billing report\"",
    ] {
        assert!(everything.contains(key), "{key}:\n{everything}");
    }

    let output = support::run_binary(
        &server,
        &["plan", project_arg, "--adopt", "--format", "json"],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let plan = json_of(&output);
    assert_eq!(plan["plan"]["steps"].as_array().unwrap().len(), ids.len());
    assert!(
        plan["changes"]
            .as_object()
            .unwrap()
            .values()
            .all(|c| c.as_array().is_some_and(Vec::is_empty)),
        "imported files differ from the schedules: {plan:#}"
    );

    let output = support::run_binary(&server, &["apply", project_arg, "--adopt"]);
    assert!(output.status.success(), "{output:?}");
    let output = support::run_binary(&server, &["plan", project_arg, "--format", "json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // The temporal CLI reads back every action as it was made.
    let after = actions(&server, &ids);
    for id in &ids {
        assert_eq!(before[*id], after[*id], "{id}: the action changed");
        let described = support::describe(&server, id);
        assert!(
            described["memo"]["fields"]["schedule-sync.project"].is_object(),
            "{id} has no marker: {described:#}"
        );
    }
}

on_each_version!(sdk_made_actions_round_trip_through_import_and_adoption);
