//! The real Temporal dev server: it starts, takes a schedule created through
//! `temporalio-client`, and the `temporal` CLI reads the schedule back.

mod support;

use std::collections::HashMap;

use schedule_sync::store::FINGERPRINT_ATTRIBUTE;
use temporalio_common::protos::temporal::api::common::v1::{
    Memo, Payload, SearchAttributes, WorkflowType,
};
use temporalio_common::protos::temporal::api::schedule::v1::{
    Schedule, ScheduleAction, SchedulePolicies, ScheduleSpec, ScheduleState, schedule_action,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;
use temporalio_common::protos::temporal::api::workflowservice::v1::CreateScheduleRequest;

fn json_payload(value: &serde_json::Value) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
        data: serde_json::to_vec(value).unwrap(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_schedule_created_by_the_client_reads_back_through_the_cli() {
    let server = support::dev_server().await;
    let client = support::client(&server).await;

    let request = CreateScheduleRequest {
        namespace: server.namespace().to_owned(),
        schedule_id: "demo/nightly-report".to_owned(),
        request_id: "create-1".to_owned(),
        schedule: Some(Schedule {
            spec: Some(ScheduleSpec {
                cron_string: vec!["0 2 * * *".to_owned()],
                timezone_name: "Europe/Berlin".to_owned(),
                ..Default::default()
            }),
            action: Some(ScheduleAction {
                action: Some(schedule_action::Action::StartWorkflow(
                    NewWorkflowExecutionInfo {
                        workflow_id: "demo/nightly-report".to_owned(),
                        workflow_type: Some(WorkflowType {
                            name: "NightlyReport".to_owned(),
                        }),
                        task_queue: Some(TaskQueue {
                            name: "reports".to_owned(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )),
            }),
            policies: Some(SchedulePolicies {
                pause_on_failure: true,
                ..Default::default()
            }),
            state: Some(ScheduleState {
                paused: true,
                notes: "declared disabled".to_owned(),
                ..Default::default()
            }),
        }),
        memo: Some(Memo {
            fields: HashMap::from([(
                "schedule-sync.project".to_owned(),
                json_payload(&serde_json::json!("demo")),
            )]),
        }),
        search_attributes: Some(SearchAttributes {
            indexed_fields: HashMap::from([(
                FINGERPRINT_ATTRIBUTE.to_owned(),
                json_payload(&serde_json::json!("abc123")),
            )]),
        }),
        ..Default::default()
    };
    let mut service = client.connection().workflow_service();
    service
        .create_schedule(tonic::Request::new(request))
        .await
        .expect("the server takes the schedule");

    let described = support::describe(&server, "demo/nightly-report");
    let schedule = &described["schedule"];
    assert_eq!(schedule["spec"]["timezoneName"], "Europe/Berlin");
    // The server keeps cron strings in structured form, not as written.
    let calendar = &schedule["spec"]["structuredCalendar"][0];
    assert_eq!(calendar["hour"][0]["start"], 2, "{described:#}");
    let start = &schedule["action"]["startWorkflow"];
    assert_eq!(start["workflowType"]["name"], "NightlyReport");
    assert_eq!(start["taskQueue"]["name"], "reports");
    assert_eq!(schedule["policies"]["pauseOnFailure"], true);
    assert_eq!(schedule["state"]["paused"], true);
    assert_eq!(schedule["state"]["notes"], "declared disabled");
    let memo = described["memo"]["fields"]["schedule-sync.project"]["data"]
        .as_str()
        .expect("the memo is there");
    assert!(!memo.is_empty());
    server.stop();
}
