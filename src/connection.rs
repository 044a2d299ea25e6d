//! The Temporal connection: settings from Temporal's own conventions
//! (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
//! `TEMPORAL_TLS_*`, `TEMPORAL_PROFILE` and the `temporal.toml` config file)
//! with command-line overrides on top, and a connect that never waits longer
//! than its timeout.

use std::fmt;
use std::time::Duration;

use temporalio_client::envconfig::{ClientConfigProfile, LoadClientConfigProfileOptions};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_common::envconfig::load_client_config_profile;

/// The namespace when nothing names one.
pub const DEFAULT_NAMESPACE: &str = "default";
/// How long a connect may take by default, handshake and first call included.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Values given on the command line, which win over the environment and the
/// config file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--address`: `host:port` or a URL.
    pub address: Option<String>,
    /// `--namespace`.
    pub namespace: Option<String>,
}

/// Everything needed to connect. Its `Debug` form hides the API key and TLS
/// material.
#[derive(Clone)]
pub struct Settings {
    options: ConnectionOptions,
    /// The namespace that schedules live in.
    pub namespace: String,
    /// Values that must never show in a message: the API key, TLS key
    /// material and header values, wherever they came from.
    secrets: Vec<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("address", &self.address())
            .field("namespace", &self.namespace)
            .field(
                "api_key",
                &self.options.api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("tls", &self.options.tls_options.is_some())
            .finish()
    }
}

impl Settings {
    /// Settings for a plain-text connection to `address` (`host:port` or a
    /// URL), as for a local dev server.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Config`] when the address is not usable.
    pub fn plain(address: &str, namespace: &str) -> Result<Self, ConnectionError> {
        let mut profile = ClientConfigProfile::default();
        profile.address = Some(address.to_owned());
        profile.namespace = Some(namespace.to_owned());
        Self::from_profile(profile)
    }

    /// Loads settings the way Temporal's CLI and SDKs do, then applies `overrides`.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Config`] when the config file or variables are invalid.
    pub fn load(overrides: &Overrides) -> Result<Self, ConnectionError> {
        Self::load_profile(None, overrides)
    }

    /// The settings of a project's environment: its `temporal.toml`
    /// profile (or Temporal's usual one) with Temporal's variables, then
    /// the environment's own address and namespace, then `overrides` (the
    /// command line) on top.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Config`] when the config file, the profile or the
    /// variables are invalid.
    pub fn for_environment(
        environment: &crate::project::Environment,
        overrides: &Overrides,
    ) -> Result<Self, ConnectionError> {
        let merged = Overrides {
            address: overrides
                .address
                .clone()
                .or_else(|| environment.address.clone()),
            namespace: overrides
                .namespace
                .clone()
                .or_else(|| Some(environment.namespace.clone())),
        };
        Self::load_profile(environment.profile.as_deref(), &merged)
    }

    fn load_profile(name: Option<&str>, overrides: &Overrides) -> Result<Self, ConnectionError> {
        let mut options = LoadClientConfigProfileOptions::default();
        options.config_file_profile = name.map(str::to_owned);
        let mut profile = load_client_config_profile(options, None)
            .map_err(|e| ConnectionError::Config(config_file_error(&e)))?;
        if let Some(address) = &overrides.address {
            profile.address = Some(address.clone());
        }
        if let Some(namespace) = &overrides.namespace {
            profile.namespace = Some(namespace.clone());
        }
        Self::from_profile(profile)
    }

    fn from_profile(profile: ClientConfigProfile) -> Result<Self, ConnectionError> {
        let namespace = profile
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let secrets = secrets_of(&profile);
        let scrub = |message: &str| scrub(message, &secrets);
        if let Some(codec) = &profile.codec {
            // Inputs would be stored unencoded on a namespace whose other
            // clients expect encoded payloads: refuse rather than do that.
            let endpoint = codec.endpoint.as_deref().unwrap_or("(no endpoint)");
            return Err(ConnectionError::Config(scrub(&format!(
                "the profile sets a payload codec ({endpoint}), which schedule-sync cannot \
                 apply: workflow inputs would be stored unencoded; remove the codec from the \
                 profile schedule-sync uses, or use a profile without one"
            ))));
        }
        let options = ConnectionOptions::try_from(profile)
            .map_err(|e| ConnectionError::Config(scrub(&e.to_string())))?;
        Ok(Settings {
            options,
            namespace,
            secrets,
        })
    }

    /// The server as `host:port`, for messages.
    pub fn host_port(&self) -> String {
        let url = &self.options.target;
        match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => self.address(),
        }
    }

    /// `message` with every secret these settings carry, and those of the
    /// environment and of URLs, removed.
    pub fn scrub(&self, message: &str) -> String {
        scrub(message, &self.secrets)
    }

    /// The server address, without any credentials a URL may carry.
    pub fn address(&self) -> String {
        let mut url = self.options.target.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.to_string()
    }

    /// Connects, giving up after `timeout`. The timeout covers the TCP and TLS
    /// handshakes and the first call the client makes, so a peer that accepts
    /// the connection and never answers costs at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::Timeout`] or [`ConnectionError::Connect`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the attempt and its half-open connection.
    #[doc(hidden)]
    pub async fn connect(&self, timeout: Duration) -> Result<Client, ConnectionError> {
        let mut options = self.options.clone();
        options.connect_timeout = Some(timeout);
        let attempt = async {
            let connection = Connection::connect(options)
                .await
                .map_err(|e| self.connect_error(&e))?;
            Client::new(
                connection,
                ClientOptions::new(self.namespace.clone()).build(),
            )
            .map_err(|e| self.connect_error(&e))
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| ConnectionError::Timeout {
                address: self.host_port(),
                after: timeout,
            })?
    }

    /// A connect error as a person reads it: one line, what failed and what
    /// to check. The client's own error, whole, goes to the debug log.
    fn connect_error(&self, error: &(dyn std::error::Error + 'static)) -> ConnectionError {
        tracing::debug!(raw = %self.scrub(&format!("{error:?}")), "connect failed");
        ConnectionError::Connect {
            address: self.host_port(),
            message: self.scrub(&explain(error)),
        }
    }
}

/// What went wrong in a connect, from the innermost cause of `error`.
fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut causes = vec![error];
    while let Some(next) = causes.last().and_then(|e| e.source()) {
        causes.push(next);
    }
    for cause in &causes {
        if let Some(status) = cause.downcast_ref::<tonic::Status>() {
            return answered(status);
        }
    }
    if let Some(io) = causes
        .iter()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
    {
        use std::io::ErrorKind;
        let hint = match io.kind() {
            ErrorKind::ConnectionRefused => {
                Some("connection refused (is the server running? check TEMPORAL_ADDRESS)")
            }
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Some(
                "the connection was closed by the server (is it a Temporal frontend, and does \
                 it expect TLS? check TEMPORAL_ADDRESS and TEMPORAL_TLS)",
            ),
            ErrorKind::TimedOut => Some("the connection timed out (is the address reachable?)"),
            ErrorKind::NotFound => Some("the host name does not resolve (check TEMPORAL_ADDRESS)"),
            _ => None,
        };
        if let Some(hint) = hint {
            return hint.to_owned();
        }
    }
    let innermost = causes.last().map(ToString::to_string).unwrap_or_default();
    let lower = innermost.to_lowercase();
    let hint =
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            " (a TLS problem: check the CA (TEMPORAL_TLS_SERVER_CA_CERT_PATH), the server name \
         (TEMPORAL_TLS_SERVER_NAME) and the client certificate)"
        } else if lower.contains("lookup") || lower.contains("resolve") || lower.contains("dns") {
            " (check the host name in TEMPORAL_ADDRESS)"
        } else {
            ""
        };
    format!("{}{hint}", one_line(&innermost))
}

/// The server answered the client's first call with an error.
fn answered(status: &tonic::Status) -> String {
    use tonic::Code;
    let hint = match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => {
            " (check the API key, TEMPORAL_API_KEY, or the client certificate)"
        }
        Code::Unavailable => " (is the server up, and does it expect TLS?)",
        Code::NotFound => " (check TEMPORAL_NAMESPACE)",
        _ => "",
    };
    format!(
        "the server answered {:?}: {}{hint}",
        status.code(),
        one_line(status.message())
    )
}

/// The first line of `text`, trimmed.
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// The secrets a profile carries, wherever they came from.
fn secrets_of(profile: &ClientConfigProfile) -> Vec<String> {
    use temporalio_common::envconfig::DataSource;
    let mut secrets: Vec<String> = profile.api_key.iter().cloned().collect();
    let key = match profile.tls.as_ref().and_then(|t| t.client_key.as_ref()) {
        Some(DataSource::Data(key)) => Some(key.clone()),
        // The client reads the file when it connects; read it here too, to
        // know what never to show.
        Some(DataSource::Path(path)) => std::fs::read(path).ok(),
        _ => None,
    };
    if let Some(key) = key {
        let key = String::from_utf8_lossy(&key);
        // A PEM key: each line of its body is a secret on its own.
        secrets.extend(key.lines().map(str::trim).map(str::to_owned));
    }
    if let Some(codec) = &profile.codec {
        secrets.extend(codec.auth.iter().cloned());
    }
    secrets.extend(profile.grpc_meta.values().cloned());
    if let Some(url) = profile
        .address
        .as_deref()
        .and_then(|a| url::Url::parse(a).ok())
    {
        secrets.extend(url.password().map(str::to_owned));
    }
    secrets.retain(|s| s.len() >= 4 && !s.starts_with("-----"));
    secrets
}

/// A config-file error without the file's text: a TOML error shows the
/// offending line, which may be the one holding the API key. Only the
/// position and the kind of mistake are kept, and quoted values are hidden.
fn config_file_error(error: &temporalio_common::envconfig::ConfigError) -> String {
    let text = error.to_string();
    let kept: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.contains('|'))
        .map(hide_quoted)
        .collect();
    let file = std::env::var("TEMPORAL_CONFIG_FILE")
        .map(|path| format!(" ({path})"))
        .unwrap_or_default();
    sanitise(&format!(
        "the Temporal config file{file} cannot be used: {}",
        kept.join("; ")
    ))
}

/// `text` with what stands between double quotes or backticks replaced,
/// unless it is a short name such as a key.
fn hide_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(quote) else {
            out.push('…');
            return out;
        };
        let inner = &after[..close];
        // A key name (letters, `_`, `-`, `.`) may show; a value, which may
        // be a token or a number, may not.
        let name = inner.len() <= 32
            && inner
                .chars()
                .all(|c| c.is_ascii_alphabetic() || "_-.".contains(c));
        out.push_str(if name || inner.chars().all(|c| !c.is_alphanumeric()) {
            inner
        } else {
            "<redacted>"
        });
        out.push(quote);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Why there is no connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The settings themselves are wrong; retrying will not help.
    #[error("invalid Temporal connection settings: {0}")]
    Config(String),
    /// The server did not complete the connection in time.
    #[error(
        "cannot reach Temporal at {address}: no answer within {after:?} (is the address \
         right, and is a firewall dropping the connection?)"
    )]
    Timeout {
        /// The server, `host:port`.
        address: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The connection failed.
    #[error("cannot reach Temporal at {address}: {message}")]
    Connect {
        /// The server, `host:port`.
        address: String,
        /// What failed, and what to check.
        message: String,
    },
}

/// Removes anything that looks like a secret from a message: the API key and
/// TLS key from the environment, and the credentials of URLs.
pub fn sanitise(message: &str) -> String {
    scrub(message, &[])
}

/// [`sanitise`], and `secrets` too.
fn scrub(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    let from_env = ["TEMPORAL_API_KEY", "TEMPORAL_TLS_CLIENT_KEY_DATA"]
        .iter()
        .filter_map(|variable| std::env::var(variable).ok());
    let mut all: Vec<String> = secrets
        .iter()
        .cloned()
        .chain(from_env)
        .filter(|secret| secret.len() >= 4)
        // As Debug output shows them, too.
        .flat_map(|secret| [secret.escape_debug().to_string(), secret])
        .collect();
    // The longest first, so that a secret inside another goes with it.
    all.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    for secret in all {
        out = out.replace(&secret, "<redacted>");
    }
    hide_url_credentials(&out)
}

/// Every `scheme://user:password@host` in `text` with the part before the
/// host's `@` hidden; the password may itself hold `@`.
fn hide_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let end = after
            .find(|c: char| c.is_whitespace() || "/?#\"<>`".contains(c))
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) if at > 0 => {
                out.push_str("<redacted>");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_host_and_port_becomes_a_plain_url() {
        let settings = Settings::plain("127.0.0.1:7233", "billing").unwrap();
        assert_eq!(settings.address(), "http://127.0.0.1:7233/");
        assert_eq!(settings.namespace, "billing");
    }

    #[test]
    fn credentials_never_show() {
        let settings = Settings::plain("https://user:hunter2@temporal.example:7233", "ns").unwrap();
        assert!(!settings.address().contains("hunter2"));
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert_eq!(
            sanitise("failed for http://user:hunter2@host:1"),
            "failed for http://<redacted>@host:1"
        );
        // Not only the first `@`: a mail address before, and a password
        // that holds an `@`, hide nothing less.
        assert_eq!(
            sanitise("ops@example.com saw https://u:p@ss@host:7233/x and http://a:b@c"),
            "ops@example.com saw https://<redacted>@host:7233/x and http://<redacted>@c"
        );
    }

    #[test]
    fn odd_passwords_and_nested_secrets_are_hidden_whole() {
        assert_eq!(
            sanitise("codec at https://user:pa,ss;x)y@codec.example/v1 failed"),
            "codec at https://<redacted>@codec.example/v1 failed"
        );
        let secrets = vec![
            "abcd".to_owned(),
            "xxabcdyy".to_owned(),
            "line\nbreak".to_owned(),
        ];
        assert_eq!(scrub("k=xxabcdyy", &secrets), "k=<redacted>");
        assert_eq!(scrub("v: \"line\\nbreak\"", &secrets), "v: \"<redacted>\"");
        assert_eq!(
            hide_quoted("invalid type: integer `48213377`, expected a string for key `x-token`"),
            "invalid type: integer `<redacted>`, expected a string for key `x-token`"
        );
    }

    #[test]
    fn a_broken_config_line_does_not_show_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("temporal.toml");
        let secret = "tk-Zx9v8Q7w6E5r4T3y";
        std::fs::write(
            &path,
            format!("[profile.default]\naddress = \"h:7233\"\napi_key = {secret}\"\n"),
        )
        .unwrap();
        let options = LoadClientConfigProfileOptions::builder()
            .config_source(temporalio_common::envconfig::DataSource::Path(
                path.display().to_string(),
            ))
            .build();
        let error = load_client_config_profile(options, None).unwrap_err();
        assert!(
            error.to_string().contains(secret),
            "the raw error shows it: {error}"
        );
        let message = config_file_error(&error);
        assert!(!message.contains(secret), "{message}");
        assert!(!message.contains("Zx9v8"), "{message}");
        assert!(message.contains("line 3"), "{message}");
    }

    #[test]
    fn a_profile_key_never_shows_in_a_message() {
        let mut profile = ClientConfigProfile::default();
        profile.address = Some("https://temporal.example:7233".to_owned());
        profile.api_key = Some("pk-7hG5fD3sA1qW".to_owned());
        let settings = Settings::from_profile(profile).unwrap();
        assert_eq!(
            settings.scrub("refused key pk-7hG5fD3sA1qW at temporal.example:7233"),
            "refused key <redacted> at temporal.example:7233"
        );
        assert_eq!(settings.host_port(), "temporal.example:7233");
    }

    #[test]
    fn a_codec_in_the_profile_is_refused() {
        let mut profile = ClientConfigProfile::default();
        profile.address = Some("127.0.0.1:7233".to_owned());
        profile.codec = Some(
            temporalio_common::envconfig::ClientConfigCodec::builder()
                .endpoint("https://codec.example")
                .auth("Bearer cd-secret-123")
                .build(),
        );
        let error = Settings::from_profile(profile).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, ConnectionError::Config(_)), "{message}");
        assert!(message.contains("codec"), "{message}");
        assert!(!message.contains("cd-secret-123"), "{message}");
    }

    #[tokio::test]
    async fn a_refused_connection_reads_as_one_humane_line() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let settings = Settings::plain(&format!("127.0.0.1:{port}"), "default").unwrap();
        let error = settings.connect(Duration::from_secs(2)).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot reach Temporal at 127.0.0.1:{port}: connection refused (is the server \
                 running? check TEMPORAL_ADDRESS)"
            )
        );
    }

    #[tokio::test]
    async fn a_peer_that_never_answers_costs_only_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        // Accept connections and hold them open without a word.
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let settings = Settings::plain(&address, "default").unwrap();
        let started = tokio::time::Instant::now();
        let error = settings
            .connect(Duration::from_millis(300))
            .await
            .unwrap_err();
        let took = started.elapsed();
        silent.abort();
        assert!(
            matches!(
                error,
                ConnectionError::Timeout { .. } | ConnectionError::Connect { .. }
            ),
            "{error}"
        );
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
}
