//! TLS end to end: the binary talks to a real TLS listener on loopback (a
//! TLS-terminating proxy made here, in front of the plain-text dev server),
//! with certificates made in the test: server-authenticated TLS with a
//! private CA, mutual TLS, an API key over TLS, and a wrong CA, which must
//! fail at once with a message that says what to check.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

/// A certificate authority.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `names` signed by `issuer`, and its key.
fn leaf(
    names: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> (rcgen::Certificate, KeyPair) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let params = CertificateParams::new(names).unwrap();
    let key = KeyPair::generate().unwrap();
    (params.signed_by(&key, issuer).unwrap(), key)
}

/// Certificates on disk, as a user would have them.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    ca_der: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = authority("schedule-sync test CA");
    let other = authority("some other CA");
    let (server, server_key) = leaf(&["127.0.0.1", "localhost"], &ca);
    let (client, client_key) = leaf(&["client.schedule-sync.test"], &ca);
    Pki {
        ca: write("ca.pem", &ca.pem()),
        other_ca: write("other-ca.pem", &other.pem()),
        client_cert: write("client.pem", &client.pem()),
        client_key: write("client.key", &client_key.serialize_pem()),
        ca_der: ca.der().clone(),
        server_cert: server.der().clone(),
        server_key: server_key.serialize_der(),
        _dir: dir,
    }
}

/// A TLS listener that hands each connection, decrypted, to `upstream`;
/// with `require_client_cert`, only clients with a certificate of the CA.
async fn tls_proxy(pki: &Pki, require_client_cert: bool, upstream: String) -> SocketAddr {
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone()));
    let mut config = builder
        .with_single_cert(vec![pki.server_cert.clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    address
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

async fn run(command: &str, address: SocketAddr, env: &[(&str, &Path)], key: Option<&str>) -> Run {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    child
        .args([command, example.to_str().unwrap(), "--address"])
        .arg(address.to_string())
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_API_KEY")
        .env_remove("TEMPORAL_PROFILE")
        .env("TEMPORAL_CONFIG_FILE", "/nonexistent/temporal.toml")
        .env("TEMPORAL_TLS", "true")
        .envs(env.iter().map(|(k, v)| (*k, *v)));
    if let Some(key) = key {
        child.env("TEMPORAL_API_KEY", key);
    }
    let started = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(60), child.output())
        .await
        .expect("the command hung")
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    }
}

#[tokio::test]
async fn tls_mutual_tls_and_an_api_key_work_and_a_wrong_ca_says_so() {
    let server = support::dev_server().await;
    let pki = pki();
    let tls = tls_proxy(&pki, false, server.address()).await;
    let mtls = tls_proxy(&pki, true, server.address()).await;
    let ca = [("TEMPORAL_TLS_SERVER_CA_CERT_PATH", pki.ca.as_path())];

    // Server-authenticated TLS with a private CA: apply creates the example.
    let applied = run("apply", tls, &ca, None).await;
    assert_eq!(
        applied.code,
        Some(0),
        "{}{}",
        applied.stdout,
        applied.stderr
    );
    let listed = support::listed_schedules(&server);
    assert_eq!(listed.len(), 4, "{listed:?}");

    // An API key over TLS; it shows nowhere.
    let key = "tls-key-5Tg6Yh7Uj8";
    let planned = run("plan", tls, &ca, Some(key)).await;
    assert!(
        matches!(planned.code, Some(0 | 2)),
        "{}{}",
        planned.stdout,
        planned.stderr
    );
    assert!(!planned.stdout.contains(key) && !planned.stderr.contains(key));

    // Mutual TLS: without a client certificate the server refuses; with one
    // it answers.
    let refused = run("plan", mtls, &ca, None).await;
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("cannot reach Temporal at {mtls}")),
        "{}",
        refused.stderr
    );
    let with_cert = [
        ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", pki.ca.as_path()),
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", pki.client_cert.as_path()),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", pki.client_key.as_path()),
    ];
    let mutual = run("plan", mtls, &with_cert, None).await;
    assert!(
        matches!(mutual.code, Some(0 | 2)),
        "{}{}",
        mutual.stdout,
        mutual.stderr
    );

    // A CA that did not sign the server's certificate: refused at once, and
    // the message names the TLS settings to check.
    let wrong = [("TEMPORAL_TLS_SERVER_CA_CERT_PATH", pki.other_ca.as_path())];
    let untrusted = run("plan", tls, &wrong, None).await;
    assert_eq!(untrusted.code, Some(1), "{}", untrusted.stderr);
    assert!(
        untrusted.took < Duration::from_secs(10),
        "took {:?}",
        untrusted.took
    );
    assert!(
        untrusted.stderr.contains("check the CA"),
        "{}",
        untrusted.stderr
    );
    server.stop();
}
