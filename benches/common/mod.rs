//! What the benchmarks share: a realistic generated project.

use std::path::Path;

/// Writes a project of `count` workflow files spread over 100 folders, with a
/// mix of every schedule form, as a real project would have.
pub fn write_project(dir: &Path, count: usize) {
    std::fs::write(
        dir.join("project.yaml"),
        "name: bench\ntask_queue: bench-workers\n",
    )
    .unwrap();
    for i in 0..count {
        let folder = dir.join(format!("workflows/team-{:02}", i % 100));
        std::fs::create_dir_all(&folder).unwrap();
        let schedule = match i % 5 {
            0 => format!("  cron: \"{} {} * * *\"\n  timezone: Europe/Berlin\n", i % 60, i % 24),
            1 => "  every: 15m\n  offset: 5m\n".to_owned(),
            2 => format!(
                "  cron:\n    - \"CRON_TZ=America/New_York 0 {} * * mon-fri # weekdays\"\n    - \"@daily\"\n",
                i % 24
            ),
            3 => "  cron: \"*/10 8-18 1-15 jan-jun *\"\n  jitter: 30s\n  overlap_policy: buffer_one\n  catchup_window: 5m\n".to_owned(),
            _ => "  cron: \"@hourly\"\n  enabled: false\n  start_at: 2026-01-01T00:00:00Z\n".to_owned(),
        };
        let text = format!(
            "id: workflow-{i}\ntype: Workflow{}\nschedule:\n{schedule}  input:\n    index: {i}\n    tags: [a, b]\nsteps:\n  - name: first\n    retry: 3\n  - name: second\n",
            i % 7
        );
        std::fs::write(folder.join(format!("workflow-{i}.yaml")), text).unwrap();
    }
}
