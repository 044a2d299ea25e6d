//! Connection settings follow Temporal's environment conventions, with
//! command-line overrides on top. One test function, because it changes the
//! process environment.

use std::time::Duration;

use schedule_sync::connection::{ConnectionError, Overrides, Settings};

#[test]
fn environment_then_config_file_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("temporal.toml");
    std::fs::write(
        &config,
        "[profile.default]\naddress = \"file-host:7233\"\nnamespace = \"from-file\"\n\n\
         [profile.staging]\naddress = \"staging-host:7233\"\nnamespace = \"staging\"\n",
    )
    .unwrap();
    // SAFETY: this test binary has one test, so nothing reads the
    // environment concurrently.
    unsafe {
        std::env::set_var("TEMPORAL_CONFIG_FILE", &config);
        std::env::remove_var("TEMPORAL_ADDRESS");
        std::env::remove_var("TEMPORAL_NAMESPACE");
        std::env::remove_var("TEMPORAL_API_KEY");
        std::env::remove_var("TEMPORAL_PROFILE");
    }

    let from_file = Settings::load(&Overrides::default()).unwrap();
    assert_eq!(from_file.address(), "http://file-host:7233/");
    assert_eq!(from_file.namespace, "from-file");

    unsafe { std::env::set_var("TEMPORAL_PROFILE", "staging") };
    let profile = Settings::load(&Overrides::default()).unwrap();
    assert_eq!(profile.namespace, "staging");

    unsafe {
        std::env::set_var("TEMPORAL_ADDRESS", "env-host:7233");
        std::env::set_var("TEMPORAL_NAMESPACE", "from-env");
    }
    let from_env = Settings::load(&Overrides::default()).unwrap();
    assert_eq!(from_env.address(), "http://env-host:7233/");
    assert_eq!(from_env.namespace, "from-env");

    let flags = Overrides {
        address: Some("flag-host:7000".to_owned()),
        namespace: Some("from-flag".to_owned()),
    };
    let from_flags = Settings::load(&flags).unwrap();
    assert_eq!(from_flags.address(), "http://flag-host:7000/");
    assert_eq!(from_flags.namespace, "from-flag");

    // An API key turns TLS on, as in Temporal's SDKs, and never shows.
    unsafe { std::env::set_var("TEMPORAL_API_KEY", "secret-key-123") };
    let with_key = Settings::load(&Overrides::default()).unwrap();
    assert_eq!(with_key.address(), "https://env-host:7233/");
    let shown = format!("{with_key:?}");
    assert!(!shown.contains("secret-key-123"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");

    // A missing profile is a configuration error, not a panic.
    unsafe { std::env::set_var("TEMPORAL_PROFILE", "nowhere") };
    let error = Settings::load(&Overrides::default()).unwrap_err();
    assert!(matches!(error, ConnectionError::Config(_)), "{error}");
    unsafe { std::env::remove_var("TEMPORAL_PROFILE") };

    // A refused connection fails at once, within the timeout, and its error
    // does not show the key the settings carry (TEMPORAL_API_KEY is set).
    let port = schedule_sync::dev_server::free_port().unwrap();
    let closed = Settings::load(&Overrides {
        address: Some(format!("127.0.0.1:{port}")),
        namespace: None,
    })
    .unwrap();
    assert!(closed.address().starts_with("https://"), "{closed:?}");
    assert!(format!("{closed:?}").contains("<redacted>"), "{closed:?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime
        .block_on(closed.connect(Duration::from_secs(2)))
        .unwrap_err();
    assert!(!error.to_string().contains("secret-key-123"));
    assert!(
        matches!(
            error,
            ConnectionError::Connect { .. } | ConnectionError::Timeout { .. }
        ),
        "{error}"
    );
}
