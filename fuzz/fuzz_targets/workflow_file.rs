//! Any bytes as a workflow file: the project loads or reports diagnostics,
//! and never panics or hangs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("project.yaml"), "name: fuzz\ntask_queue: q\n").unwrap();
    std::fs::create_dir(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("workflows/w.yaml"), data).unwrap();
    if let Err(invalid) = schedule_sync::project::load(dir.path()) {
        assert!(invalid.error_count() > 0);
        for diagnostic in &invalid.diagnostics {
            let _ = diagnostic.to_string();
        }
    }
});
