//! Failures the real server will not produce on demand (ResourceExhausted, a
//! stale conflict token refused with FailedPrecondition), injected between
//! the real client and the real dev server through the client's
//! `service_override` hook: every other call goes through to the server.

mod support;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use prost::Message;
use schedule_sync::plan::Step;
use schedule_sync::project;
use schedule_sync::reconcile::{ReconcileOptions, reconcile};
use schedule_sync::store::TemporalStore;
use temporalio_client::callback_based::{CallbackBasedGrpcService, GrpcSuccessResponse};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_common::protos::temporal::api::workflowservice::v1 as api;
use tonic::{Code, Status};

/// Codes to answer, per RPC, before calls go through again.
type Faults = Arc<Mutex<HashMap<String, VecDeque<Code>>>>;

/// Decodes the request, sends it to the real server, encodes the answer.
macro_rules! forward {
    ($upstream:expr, $proto:expr, $method:ident, $request:ty) => {{
        let request = <$request>::decode($proto).map_err(|e| Status::internal(e.to_string()))?;
        let mut service = $upstream.connection().workflow_service();
        let response = service.$method(tonic::Request::new(request)).await?;
        response.into_inner().encode_to_vec()
    }};
}

/// A client whose calls pass through `faults` on their way to `server`.
async fn faulty_client(server: &schedule_sync::dev_server::DevServer, faults: Faults) -> Client {
    let upstream = support::client(server).await;
    let service = CallbackBasedGrpcService {
        callback: Arc::new(move |request| {
            let upstream = upstream.clone();
            let faults = faults.clone();
            Box::pin(async move {
                let injected = faults
                    .lock()
                    .unwrap()
                    .get_mut(&request.rpc)
                    .and_then(VecDeque::pop_front);
                if let Some(code) = injected {
                    return Err(Status::new(code, "injected by the test"));
                }
                let proto = request.proto;
                let answer = match request.rpc.as_str() {
                    "GetSystemInfo" => {
                        forward!(upstream, proto, get_system_info, api::GetSystemInfoRequest)
                    }
                    "ListSchedules" => {
                        forward!(upstream, proto, list_schedules, api::ListSchedulesRequest)
                    }
                    "DescribeSchedule" => forward!(
                        upstream,
                        proto,
                        describe_schedule,
                        api::DescribeScheduleRequest
                    ),
                    "CreateSchedule" => {
                        forward!(upstream, proto, create_schedule, api::CreateScheduleRequest)
                    }
                    "UpdateSchedule" => {
                        forward!(upstream, proto, update_schedule, api::UpdateScheduleRequest)
                    }
                    "PatchSchedule" => {
                        forward!(upstream, proto, patch_schedule, api::PatchScheduleRequest)
                    }
                    "DeleteSchedule" => {
                        forward!(upstream, proto, delete_schedule, api::DeleteScheduleRequest)
                    }
                    other => return Err(Status::unimplemented(format!("not proxied: {other}"))),
                };
                Ok(GrpcSuccessResponse {
                    headers: http::HeaderMap::new(),
                    proto: answer,
                })
            })
        }),
    };
    let url = url::Url::parse(&format!("http://{}", server.address())).unwrap();
    let options = ConnectionOptions::new(url)
        .service_override(service)
        .dns_load_balancing(None)
        .build();
    let connection = Connection::connect(options).await.unwrap();
    Client::new(
        connection,
        ClientOptions::new(server.namespace().to_owned()).build(),
    )
    .unwrap()
}

fn inject(faults: &Faults, rpc: &str, code: Code, times: usize) {
    faults
        .lock()
        .unwrap()
        .entry(rpc.to_owned())
        .or_default()
        .extend(std::iter::repeat_n(code, times));
}

fn calls(store: &TemporalStore, rpc: &str, code: &str) -> u64 {
    store
        .rpc_counts()
        .get(rpc)
        .and_then(|codes| codes.get(code))
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn resource_exhausted_from_the_server_backs_off_and_every_schedule_lands() {
    let server = support::dev_server().await;
    let faults = Faults::default();
    let client = faulty_client(&server, faults.clone()).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    inject(&faults, "ListSchedules", Code::ResourceExhausted, 1);
    inject(&faults, "CreateSchedule", Code::ResourceExhausted, 3);
    let dir = support::copy_example();
    let report = support::apply(&store, dir.path()).await;
    assert!(report.converged(), "{report:#?}");
    assert_eq!(calls(&store, "ListSchedules", "ResourceExhausted"), 1);
    assert_eq!(calls(&store, "CreateSchedule", "ResourceExhausted"), 3);
    // The 4 schedules and the project's writer fence.
    assert_eq!(calls(&store, "CreateSchedule", "Ok"), 5);
    for id in [
        "billing.dunning",
        "billing.invoice-sweep",
        "billing.nightly-report",
        "billing.quarter-close",
    ] {
        let described = support::describe(&server, id);
        assert!(described["memo"]["fields"].is_object(), "{described:#}");
    }
    server.stop();
}

#[tokio::test]
async fn a_refused_stale_token_is_re_read_and_the_update_lands() {
    let server = support::dev_server().await;
    let faults = Faults::default();
    let client = faulty_client(&server, faults.clone()).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    let dir = support::copy_example();
    let load = || project::load(dir.path()).unwrap().project;
    assert!(
        reconcile(&store, &load(), ReconcileOptions::default())
            .await
            .unwrap()
            .converged()
    );
    let file = dir.path().join("workflows/reports/nightly-report.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("jitter: 30s", "jitter: 45s");
    std::fs::write(&file, text).unwrap();
    // The listing must show the creates before the change plans an update.
    for _ in 0..100 {
        if store_lists(&store, 4).await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    inject(&faults, "UpdateSchedule", Code::FailedPrecondition, 1);
    let report = reconcile(&store, &load(), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(report.plan.steps.as_slice(), [Step::Update { .. }]),
        "{report:#?}"
    );
    assert!(report.converged(), "{report:#?}");
    assert_eq!(
        calls(&store, "UpdateSchedule", "FailedPrecondition"),
        1,
        "{:?}",
        store.rpc_counts()
    );
    assert_eq!(calls(&store, "UpdateSchedule", "Ok"), 1);
    let described = support::describe(&server, "billing.nightly-report");
    assert_eq!(
        described["schedule"]["spec"]["jitter"], "45s",
        "{described:#}"
    );
    server.stop();
}

async fn store_lists(store: &TemporalStore, count: usize) -> bool {
    use schedule_sync::store::ScheduleStore;
    let listed = store.list("billing").await.unwrap().schedules;
    listed
        .iter()
        .filter(|s| !support::is_fence(&s.schedule_id))
        .count()
        == count
}

#[tokio::test]
async fn the_clients_own_retries_are_off_so_a_throttled_call_comes_back_at_once() {
    use schedule_sync::store::ScheduleStore;
    let server = support::dev_server().await;
    let faults = Faults::default();
    let client = faulty_client(&server, faults.clone()).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    inject(&faults, "DescribeSchedule", Code::ResourceExhausted, 3);
    let started = tokio::time::Instant::now();
    let error = store.describe("billing.nightly-report").await.unwrap_err();
    // The client would have waited a second or more before sending it again.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_throttled(), "{error}");
    // One call reached the wire: two injected answers are left.
    assert_eq!(faults.lock().unwrap()["DescribeSchedule"].len(), 2);
    // The store's pace took the throttle in.
    assert_eq!(store.pace().status().throttled, 1);
    assert!(store.pace().status().rate.is_some());
    server.stop();
}
