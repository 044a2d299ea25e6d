//! `schedule-sync validate` as a user runs it: exit codes, text and JSON
//! output, and files that must be refused without a crash or a hang.

use std::path::Path;
use std::process::{Command, Output};

fn validate(dir: &Path, json: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command.arg("validate").arg(dir);
    if json {
        command.args(["--format", "json"]);
    }
    command.output().expect("the binary runs")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

fn project(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const PROJECT: (&str, &[u8]) = ("project.yaml", b"name: demo\ntask_queue: q\n");

#[test]
fn the_example_validates_with_exit_code_zero() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let output = validate(&example, false);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(
            "project `billing` is valid (as written and in staging, production): \
             5 workflow(s), 4 schedule(s)"
        ),
        "{text}"
    );
}

#[test]
fn deny_warnings_makes_a_lint_fail_the_check() {
    // 02:30 in Berlin: skipped by the clocks each spring.
    let dir = project(&[
        PROJECT,
        (
            "workflows/a.yaml",
            b"id: a\nschedule:\n  cron: \"30 2 * * *\"\n  timezone: Europe/Berlin\n",
        ),
    ]);
    let lenient = validate(dir.path(), false);
    assert_eq!(lenient.status.code(), Some(0));
    let text = String::from_utf8(lenient.stdout).unwrap();
    assert!(
        text.contains("warning: `30 2 * * *` in Europe/Berlin fires fewer times"),
        "{text}"
    );
    assert!(text.contains("--> workflows/a.yaml:3:9"), "{text}");

    let strict = Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
        .arg("validate")
        .arg(dir.path())
        .args(["--deny-warnings", "--format", "json"])
        .output()
        .expect("the binary runs");
    assert_eq!(strict.status.code(), Some(1));
    let report = json(&strict);
    assert_eq!(report["valid"], false, "{report:#}");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(report["warnings"], 1, "{report:#}");
}

#[test]
fn an_error_in_an_override_points_at_the_override() {
    let dir = project(&[
        (
            "project.yaml",
            b"name: demo\ntask_queue: q\nenvironments:\n  staging:\n    namespace: demo-staging\n    overrides:\n      a:\n        schedule: { jitter: soon }\n",
        ),
        ("workflows/a.yaml", b"id: a\nschedule:\n  cron: \"0 9 * * *\"\n"),
    ]);
    let output = validate(dir.path(), false);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("error: in environment `staging`: `jitter` is not a duration"),
        "{text}"
    );
    assert!(text.contains("--> project.yaml:8:29"), "{text}");
    assert!(
        text.contains("8 |         schedule: { jitter: soon }"),
        "{text}"
    );
}

#[test]
fn every_problem_of_every_file_is_reported_at_once() {
    let dir = project(&[
        PROJECT,
        (
            "workflows/a.yaml",
            b"id: a\nschedule:\n  cronn: \"0 2 * * *\"\n",
        ),
        (
            "workflows/b.yaml",
            b"id: b\nschedule:\n  cron: \"0 2 * * *\"\n  timezone: Mars/Base\n",
        ),
        ("workflows/c.yaml", b"id: a\n"),
    ]);
    let output = validate(dir.path(), true);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["valid"], false);
    let diagnostics = report["diagnostics"].as_array().unwrap();
    let files: Vec<&str> = diagnostics
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"workflows/a.yaml"), "{report:#}");
    assert!(files.contains(&"workflows/b.yaml"), "{report:#}");
    assert!(files.contains(&"workflows/c.yaml"), "{report:#}");

    let misspelt = diagnostics
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("cronn"))
        .unwrap();
    assert_eq!(misspelt["line"], 3);
    assert_eq!(misspelt["column"], 3);
    assert_eq!(misspelt["help"], "did you mean `cron`?");
    assert!(
        misspelt["snippet"]
            .as_str()
            .unwrap()
            .contains("cronn: \"0 2 * * *\"")
    );

    let duplicate = diagnostics
        .iter()
        .find(|d| d["file"] == "workflows/c.yaml")
        .unwrap();
    assert_eq!(duplicate["related"]["file"], "workflows/a.yaml");
}

#[test]
fn text_output_shows_the_file_position_snippet_and_fix() {
    let dir = project(&[
        PROJECT,
        (
            "workflows/a.yaml",
            b"id: a\nschedule:\n  cron: \"@daily\"\n  overlap_policy: skp\n",
        ),
    ]);
    let output = validate(dir.path(), false);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("error: `overlap_policy` \"skp\" is not a policy"),
        "{text}"
    );
    assert!(text.contains("--> workflows/a.yaml:4:19"), "{text}");
    assert!(text.contains("4 |   overlap_policy: skp"), "{text}");
    assert!(
        text.contains("= expected: one of skip, buffer_one"),
        "{text}"
    );
    assert!(text.contains("= help: did you mean `skip`?"), "{text}");
}

#[test]
fn an_oversized_file_is_refused_with_a_clear_error() {
    let mut big = b"id: big\nsteps:\n".to_vec();
    while big.len() <= 2 * 1024 * 1024 {
        big.extend_from_slice(b"  - a step of a very long workflow definition\n");
    }
    let dir = project(&[PROJECT, ("workflows/big.yaml", &big)]);
    let report = json(&validate(dir.path(), true));
    assert_eq!(report["valid"], false);
    assert_eq!(
        report["diagnostics"][0]["message"],
        "the file is larger than 1024 KiB"
    );
}

#[test]
fn an_alias_bomb_is_refused() {
    let mut bomb =
        String::from("id: bomb\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..12 {
        let refs = vec![format!("*l{}", level - 1); 9].join(", ");
        bomb.push_str(&format!("l{level}: &l{level} [{refs}]\n"));
    }
    let dir = project(&[PROJECT, ("workflows/bomb.yaml", bomb.as_bytes())]);
    let report = json(&validate(dir.path(), true));
    assert_eq!(report["valid"], false);
    let message = report["diagnostics"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("invalid YAML: alias"), "{message}");
}

#[cfg(unix)]
#[test]
fn a_fifo_matching_the_glob_is_skipped_not_read() {
    let dir = project(&[PROJECT, ("workflows/a.yaml", b"id: a\n")]);
    let fifo = dir.path().join("workflows/pipe.yaml");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let output = validate(dir.path(), true);
    assert_eq!(output.status.code(), Some(0));
    let report = json(&output);
    assert_eq!(
        report["diagnostics"][0]["message"],
        "skipped: not a regular file"
    );
}

#[test]
fn a_missing_folder_is_an_error_not_a_crash() {
    let output = validate(Path::new("/nonexistent/project"), false);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("no project.yaml in /nonexistent/project"),
        "{text}"
    );
}

#[test]
fn completions_and_the_manual_page_name_every_command() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let commands = [
        "validate",
        "plan",
        "apply",
        "serve",
        "status",
        "schema",
        "completions",
        "man",
    ];
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = run(&["completions", shell]);
        for command in commands {
            assert!(
                script.contains(command),
                "{shell} lacks {command}:\n{script}"
            );
        }
    }
    // Flags complete too, with the commands that take them.
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("--allow-mass-delete") && bash.contains("--max-connections"));
    assert!(bash.contains("--watch") && bash.contains("--schedule-metrics"));
    let page = run(&["man"]);
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
    assert!(page.contains(".TH schedule-sync"), "{page}");
    for command in commands {
        assert!(page.contains(command), "the manual lacks {command}");
    }
    // An unknown shell is refused by clap, not a panic.
    let refused = Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}
