//! HTTPS with a certificate made by the test.

use custody_server::config::TlsConfig;

#[tokio::test]
async fn serves_https() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let db = custody_store::testing::sqlite();
    let config = custody_server::Config {
        data_dir: dir.path().join("data"),
        database_url: Some(db.url.clone()),
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: Some(TlsConfig { cert: cert_path, key: key_path }),
        ..custody_server::Config::default()
    };
    let server = custody_server::start(config).await.unwrap();
    assert_eq!(server.scheme, "https");
    let token = server.bootstrap_token.clone().unwrap();
    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/api/v1/whoami", server.addr.port());
    let resp = trusted.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let untrusted = reqwest::Client::new();
    assert!(untrusted.get(&url).bearer_auth(&token).send().await.is_err(), "an unknown certificate is refused");
    let plain = reqwest::Client::new().get(format!("http://localhost:{}/healthz", server.addr.port())).send().await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true), "no plaintext on the TLS port");
    server.shutdown().await;
}
