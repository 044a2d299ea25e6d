//! Any text as a workflow file, checked in memory (no file system, so many
//! more runs a second than `workflow_file`): a workflow or diagnostics, never
//! a panic, and a valid outcome has no error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let outcome =
        schedule_sync::project::check_workflow_source("w.yaml".into(), text, "queue");
    let errors = outcome.diagnostics.iter().filter(|d| d.is_error()).count();
    assert_eq!(outcome.workflow.is_some(), errors == 0, "{:?}", outcome.diagnostics);
    for diagnostic in &outcome.diagnostics {
        let _ = diagnostic.to_string();
    }
});
