//! A `schedule-sync serve` process for the tests, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::time::Instant;

/// A running `serve`.
pub struct Serve {
    /// The process.
    pub child: Child,
    /// Where it listens, `127.0.0.1:<port>`.
    pub address: String,
    /// Kept open: the server's standard output stays a live pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Serve {
    /// Starts `command` (a `serve` listening on `address`) and waits until
    /// it has bound its listener (it prints the URLs then).
    pub fn spawn(mut command: Command, address: &str) -> Serve {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(first.contains(address), "serve printed {first:?}");
        Serve {
            child,
            address: address.to_owned(),
            _stdout: stdout,
        }
    }

    /// `GET path`: the code and the body as text.
    pub fn get_text(&self, path: &str) -> (u16, String) {
        super::http_get(&self.address, path)
    }

    /// `GET path`: the code and the body as JSON (a string when it is not).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (code, body) = self.get_text(path);
        (
            code,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        )
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        self.get_text("/metrics").1
    }

    /// Sends the signal `name` (`TERM`, `HUP`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end, at most `limit`.
    pub async fn wait(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < limit,
                "serve did not exit within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `path` until `test` holds, at most `limit`.
    pub async fn wait_for(
        &self,
        path: &str,
        limit: Duration,
        test: impl Fn(u16, &serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let (code, body) = self.get(path);
            if test(code, &body) {
                return body;
            }
            assert!(
                started.elapsed() < limit,
                "{path} never matched: {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
