//! The firing times `plan` shows are the times the server will fire: for
//! schedules across DST changes in several zones (and plain ones), each
//! time computed by `next_fire_times` equals the server's own
//! `futureActionTimes`, read back with `temporal schedule describe`.

mod support;

use chrono::{DateTime, Utc};
use schedule_sync::project::fire_times::next_fire_times;
use schedule_sync::store::TemporalStore;

/// (zone, cron, start): each schedule starts at a moment just before a DST
/// change, so the server's next times cross it.
const CASES: &[(&str, &str, &str)] = &[
    ("Europe/Berlin", "30 1 * * *", "2027-10-30T00:00:01Z"),
    ("Europe/Berlin", "30 2 * * *", "2027-10-30T00:00:01Z"),
    ("Europe/Berlin", "0,30 * * * *", "2027-10-30T23:10:01Z"),
    ("Europe/Berlin", "30 2 * * *", "2027-03-27T00:00:01Z"),
    ("America/Los_Angeles", "30 1 * * *", "2027-11-06T00:00:01Z"),
    ("America/Los_Angeles", "30 2 * * *", "2027-03-13T00:00:01Z"),
    ("Australia/Sydney", "30 1 * * *", "2027-04-03T00:00:01Z"),
    ("Australia/Sydney", "30 2 * * *", "2027-10-02T00:00:01Z"),
    ("America/Santiago", "30 23 * * *", "2027-04-02T12:00:01Z"),
    ("America/Santiago", "30 1 * * 0", "2027-08-28T12:00:01Z"),
    ("Europe/London", "30 0 * * *", "2027-10-30T00:00:01Z"),
    (
        "Australia/Lord_Howe",
        "15,45 1 * * *",
        "2027-04-03T00:00:01Z",
    ),
    ("Asia/Tokyo", "0 9 * * 1-5", "2027-01-01T00:00:01Z"),
    ("UTC", "*/20 * * * *", "2027-06-30T23:30:01Z"),
    ("America/New_York", "0 0 1 * *", "2027-01-15T00:00:01Z"),
    ("Europe/Berlin", "15 2 * * 0", "2027-10-24T00:00:01Z"),
];

fn times(value: &serde_json::Value) -> Vec<DateTime<Utc>> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("no futureActionTimes: {value}"))
        .iter()
        .map(|t| {
            DateTime::parse_from_rfc3339(t.as_str().unwrap())
                .unwrap()
                .with_timezone(&Utc)
        })
        .collect()
}

#[tokio::test]
async fn plan_shows_the_times_the_server_will_fire() {
    let server = support::dev_server().await;
    let files: Vec<String> = CASES
        .iter()
        .enumerate()
        .map(|(i, (zone, cron, start))| {
            format!(
                "id: c{i}\nschedule:\n  cron: \"{cron}\"\n  timezone: {zone}\n  start_at: {start}\n"
            )
        })
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let dir = support::project_dir("dst", &files);
    let project = schedule_sync::project::load(dir.path()).unwrap().project;
    let store = TemporalStore::new(
        support::client(&server).await,
        server.namespace().to_owned(),
        true,
    );
    let report = support::apply(&store, dir.path()).await;
    assert!(report.converged(), "{report:#?}");

    let mut differ = Vec::new();
    for (i, (zone, cron, start)) in CASES.iter().enumerate() {
        let id = format!("dst.c{i}");
        let described = support::describe(&server, &id);
        let server_times = times(&described["info"]["futureActionTimes"]);
        assert!(server_times.len() >= 3, "{id}: {described:#}");
        let (_, schedule) = project
            .scheduled()
            .find(|(w, _)| w.id == format!("c{i}"))
            .unwrap();
        let ours = next_fire_times(schedule, Utc::now(), server_times.len());
        if ours != server_times {
            differ.push(format!(
                "{cron} in {zone} from {start}:\n  server {server_times:?}\n  ours   {ours:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    server.stop();
}
