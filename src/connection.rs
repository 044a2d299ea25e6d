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
        let mut profile =
            load_client_config_profile(LoadClientConfigProfileOptions::default(), None)
                .map_err(|e| ConnectionError::Config(sanitise(&e.to_string())))?;
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
        let options = ConnectionOptions::try_from(profile)
            .map_err(|e| ConnectionError::Config(sanitise(&e.to_string())))?;
        Ok(Settings { options, namespace })
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
    pub async fn connect(&self, timeout: Duration) -> Result<Client, ConnectionError> {
        let mut options = self.options.clone();
        options.connect_timeout = Some(timeout);
        let attempt = async {
            let connection =
                Connection::connect(options)
                    .await
                    .map_err(|e| ConnectionError::Connect {
                        address: self.address(),
                        message: sanitise(&e.to_string()),
                    })?;
            Client::new(
                connection,
                ClientOptions::new(self.namespace.clone()).build(),
            )
            .map_err(|e| ConnectionError::Connect {
                address: self.address(),
                message: sanitise(&e.to_string()),
            })
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| ConnectionError::Timeout {
                address: self.address(),
                after: timeout,
            })?
    }
}

/// Why there is no connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The settings themselves are wrong; retrying will not help.
    #[error("invalid Temporal connection settings: {0}")]
    Config(String),
    /// The server did not complete the connection in time.
    #[error("connecting to Temporal at {address} timed out after {after:?}")]
    Timeout {
        /// The server address.
        address: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The connection failed.
    #[error("cannot connect to Temporal at {address}: {message}")]
    Connect {
        /// The server address.
        address: String,
        /// What the client said.
        message: String,
    },
}

/// Removes anything that looks like a secret from a message: the API key and
/// TLS key from the environment, and the credentials of URLs.
pub fn sanitise(message: &str) -> String {
    let mut out = message.to_owned();
    for variable in ["TEMPORAL_API_KEY", "TEMPORAL_TLS_CLIENT_KEY_DATA"] {
        if let Ok(secret) = std::env::var(variable)
            && secret.len() >= 4
        {
            out = out.replace(&secret, "<redacted>");
        }
    }
    // user:password@ in URLs
    while let Some(at) = out.find('@') {
        let Some(scheme_end) = out[..at].rfind("://") else {
            break;
        };
        let credentials = &out[scheme_end + 3..at];
        if credentials.is_empty()
            || credentials.contains(char::is_whitespace)
            || credentials == "<redacted>"
        {
            break;
        }
        out.replace_range(scheme_end + 3..at, "<redacted>");
    }
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
