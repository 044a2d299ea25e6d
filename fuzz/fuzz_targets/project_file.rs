//! Any bytes as project.yaml: the project loads or reports diagnostics, and
//! never panics or hangs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("project.yaml"), data).unwrap();
    std::fs::create_dir(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("workflows/w.yaml"), "id: w\nschedule:\n  cron: \"@daily\"\n").unwrap();
    if let Err(invalid) = schedule_sync::project::load(dir.path()) {
        for diagnostic in &invalid.diagnostics {
            let _ = diagnostic.to_string();
        }
    }
});
