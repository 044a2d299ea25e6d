//! A known secret, put in each place a user keeps one, never shows: not in
//! any command's stdout or stderr (text and JSON output, text and JSON logs,
//! debug level), nor in any endpoint of `serve`. Logs written to a pipe
//! carry no colour codes.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use schedule_sync::dev_server::free_port;

/// One way of handing the binary a secret.
struct Case {
    name: &'static str,
    /// The strings that must never show.
    secrets: Vec<String>,
    env: Vec<(String, String)>,
    address: String,
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing")
}

fn command(case: &Case, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .args(args)
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("TEMPORAL_API_KEY")
        .env_remove("TEMPORAL_PROFILE")
        .env_remove("NO_COLOR")
        .env("TEMPORAL_CONFIG_FILE", "/nonexistent/temporal.toml")
        .env("RUST_LOG", "schedule_sync=debug,info")
        .envs(case.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

fn assert_clean(case: &Case, what: &str, text: &str) {
    for secret in &case.secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{}: {what} shows the secret {secret:?}:\n{text}",
            case.name
        );
    }
    assert!(
        !text.contains('\u{1b}'),
        "{}: {what} has colour codes, though it is not a terminal:\n{text}",
        case.name
    );
}

/// Stands for a fresh folder in the argument lists of `import`.
const IMPORT_DIR: &str = "<fresh folder>";

fn run_commands(case: &Case) {
    let dir = example();
    let dir = dir.to_str().unwrap();
    for log in ["text", "json"] {
        for args in [
            vec!["validate", dir],
            vec!["plan", dir, "--address", &case.address],
            vec!["plan", dir, "--format", "json", "--address", &case.address],
            vec!["apply", dir, "--address", &case.address],
            vec!["apply", dir, "--format", "json", "--address", &case.address],
            vec![
                "import",
                IMPORT_DIR,
                "--project",
                "billing",
                "--address",
                &case.address,
            ],
            vec![
                "import",
                IMPORT_DIR,
                "--project",
                "billing",
                "--format",
                "json",
                "--address",
                &case.address,
            ],
        ] {
            // Each import gets a folder of its own.
            let target = tempfile::tempdir().unwrap();
            let target = target.path().join("imported");
            let args: Vec<&str> = args
                .iter()
                .map(|a| {
                    if *a == IMPORT_DIR {
                        target.to_str().unwrap()
                    } else {
                        a
                    }
                })
                .collect();
            let mut args = args.clone();
            args.extend(["--log-format", log]);
            let Output { stdout, stderr, .. } = command(case, &args).output().unwrap();
            let shown = format!("{args:?}");
            assert_clean(
                case,
                &format!("stdout of {shown}"),
                &String::from_utf8_lossy(&stdout),
            );
            assert_clean(
                case,
                &format!("stderr of {shown}"),
                &String::from_utf8_lossy(&stderr),
            );
        }
    }
}

async fn run_serve(case: &Case, log: &str) {
    let listen = format!("127.0.0.1:{}", free_port().unwrap());
    let dir = example();
    let child = command(
        case,
        &[
            "serve",
            dir.to_str().unwrap(),
            "--listen",
            &listen,
            "--address",
            &case.address,
            "--log-format",
            log,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait for the first attempt to end, one way or another.
    let started = Instant::now();
    loop {
        if let Ok(stream) = std::net::TcpStream::connect(&listen) {
            drop(stream);
            let (_, health) = support::http_get(&listen, "/healthz");
            let health: serde_json::Value = serde_json::from_str(&health).unwrap();
            if health["state"] != "pending" {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}: serve never left pending",
            case.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in ["/livez", "/readyz", "/healthz", "/schedules", "/metrics"] {
        let (_, body) = support::http_get(&listen, path);
        assert_clean(case, &format!("{path} of serve"), &body);
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert_clean(
        case,
        "serve's stdout",
        &String::from_utf8_lossy(&output.stdout),
    );
    assert_clean(
        case,
        "serve's stderr",
        &String::from_utf8_lossy(&output.stderr),
    );
}

async fn check(case: &Case) {
    run_commands(case);
    run_serve(case, "text").await;
    run_serve(case, "json").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_never_shows_wherever_it_is_kept() {
    let server = support::dev_server().await;
    let closed = format!("127.0.0.1:{}", free_port().unwrap());
    let files = tempfile::tempdir().unwrap();

    // In the environment, against a port nobody listens on.
    check(&Case {
        name: "TEMPORAL_API_KEY",
        secrets: vec!["envkey-Q1w2E3r4T5y6".into()],
        env: vec![("TEMPORAL_API_KEY".into(), "envkey-Q1w2E3r4T5y6".into())],
        address: closed.clone(),
    })
    .await;

    // In a config-file profile, against the real server (TLS off), so the
    // key travels with every call and the success path is covered too.
    let good = files.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[profile.default]\naddress = \"{}\"\napi_key = \"profkey-A9s8D7f6G5h4\"\n\n\
             [profile.default.tls]\ndisabled = true\n",
            server.address()
        ),
    )
    .unwrap();
    check(&Case {
        name: "temporal.toml profile",
        secrets: vec!["profkey-A9s8D7f6G5h4".into()],
        env: vec![("TEMPORAL_CONFIG_FILE".into(), good.display().to_string())],
        address: server.address(),
    })
    .await;

    // On a broken line of the config file.
    let broken = files.path().join("broken.toml");
    std::fs::write(
        &broken,
        "[profile.default]\naddress = \"127.0.0.1:1\"\napi_key = brokenkey-Z1x2C3v4B5n6\"\n",
    )
    .unwrap();
    check(&Case {
        name: "broken temporal.toml",
        secrets: vec!["brokenkey-Z1x2C3v4B5n6".into(), "Z1x2C3v4".into()],
        env: vec![("TEMPORAL_CONFIG_FILE".into(), broken.display().to_string())],
        address: closed.clone(),
    })
    .await;

    // A TLS client key, by path: its content never shows.
    let key = files.path().join("client.key");
    let cert = files.path().join("client.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nkeybody-M1n2B3v4C5x6\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\ncertbody-L0k9J8h7\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    check(&Case {
        name: "TLS key file",
        secrets: vec!["keybody-M1n2B3v4C5x6".into()],
        env: vec![
            (
                "TEMPORAL_TLS_CLIENT_KEY_PATH".into(),
                key.display().to_string(),
            ),
            (
                "TEMPORAL_TLS_CLIENT_CERT_PATH".into(),
                cert.display().to_string(),
            ),
        ],
        address: closed.clone(),
    })
    .await;

    // A TLS client key given as data.
    check(&Case {
        name: "TEMPORAL_TLS_CLIENT_KEY_DATA",
        secrets: vec!["keydata-W3e4R5t6Y7u8".into()],
        env: vec![
            (
                "TEMPORAL_TLS_CLIENT_KEY_DATA".into(),
                "-----BEGIN PRIVATE KEY-----\nkeydata-W3e4R5t6Y7u8\n-----END PRIVATE KEY-----\n"
                    .into(),
            ),
            (
                "TEMPORAL_TLS_CLIENT_CERT_PATH".into(),
                cert.display().to_string(),
            ),
        ],
        address: closed.clone(),
    })
    .await;

    // Credentials in the address.
    check(&Case {
        name: "URL credentials",
        secrets: vec!["urlpass-K7j6H5g4".into()],
        env: vec![],
        address: format!("http://urluser:urlpass-K7j6H5g4@{closed}"),
    })
    .await;
    server.stop();
}
