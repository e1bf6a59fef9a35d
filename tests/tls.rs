//! https targets: a TLS front (self-signed certificate made in the test) on 127.0.0.1 before the
//! mock. Untrusted by default; trusted with `--ca-cert`; accepted with `--insecure`, which the run
//! metadata records.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::execute;
use llmbench::mock::MockServer;
use llmbench::plan::{Plan, Target};
use llmbench::record::Outcome;
use llmbench::run::RunError;
use tokio_rustls::rustls;

/// Accepts TLS on 127.0.0.1 and relays each connection to `backend`. Returns the address and
/// the certificate (PEM).
async fn tls_front(backend: SocketAddr) -> (SocketAddr, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert_pem = ck.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = plain.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, cert_pem)
}

fn https_plan(dir: &std::path::Path, front: SocketAddr) -> Plan {
    let mut plan = common::plan(
        dir,
        r#"request(#{ max_tokens: 5, prompt: |i| `q ${i}` }); phase("p", #{ requests: 6, concurrency: 3 });"#,
    );
    plan.target = Some(Target {
        name: "tls".into(),
        base_url: format!("https://{front}/v1"),
        api_key: None,
    });
    plan.model = Some("m".into());
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_needs_a_trusted_certificate_or_an_explicit_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let mock: MockServer = common::mock(5, 1, 5);
    let (front, pem) = tls_front(mock.addr()).await;
    let plan = https_plan(dir.path(), front);

    // Not in the system roots: the preflight says so and nothing runs.
    let err = execute(plan.clone(), &common::options(dir.path()))
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Preflight(_)), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // Trusted through --ca-cert.
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let mut options = common::options(dir.path());
    options.client.ca_cert = Some(ca);
    let finished = execute(plan.clone(), &options).await.unwrap();
    let records = llmbench::record::read_records(&finished.files().unwrap().raw).unwrap();
    assert_eq!(records.len(), 6);
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Ok),
        "{records:?}"
    );

    // Accepted with --insecure, and the metadata says so.
    let mut options = common::options(dir.path());
    options.client.insecure = true;
    let finished = execute(plan, &options).await.unwrap();
    assert_eq!(finished.summary.all.ok, 6);
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&finished.files().unwrap().metadata).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["client"]["insecure"], true, "{meta}");
}
