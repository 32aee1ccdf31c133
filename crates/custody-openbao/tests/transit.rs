//! The transit provider against a real OpenBao server (`scripts/with-openbao.sh` starts one and
//! exports its address and token). Without one the tests are skipped, except under CI=true,
//! where a missing server fails them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr, missing_docs)]

use custody_crypto::{Header, InputKey, KekRef, KeyError, KeyProvider, RandomAccess};
use custody_openbao::{OpenBaoConfig, OpenBaoTransit};
use zeroize::Zeroizing;

fn config(token: Option<&str>) -> Option<OpenBaoConfig> {
    let (Ok(addr), Ok(real_token)) = (std::env::var("CUSTODY_TEST_BAO_ADDR"), std::env::var("CUSTODY_TEST_BAO_TOKEN"))
    else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true: an OpenBao server is required; run under scripts/with-openbao.sh");
        }
        eprintln!("skipped: no OpenBao server (run under scripts/with-openbao.sh)");
        return None;
    };
    Some(OpenBaoConfig {
        addr,
        token: Zeroizing::new(token.unwrap_or(&real_token).to_string()),
        mount: "transit".into(),
        namespace: None,
        ca_cert_pem: None,
    })
}

fn provider() -> Option<OpenBaoTransit> {
    Some(OpenBaoTransit::new(config(None)?).unwrap())
}

fn fresh_key() -> String {
    format!("custody-test-{}", uuid::Uuid::new_v4())
}

fn data_key(n: u8) -> InputKey {
    InputKey::new([n; 32])
}

#[tokio::test]
async fn wraps_and_unwraps_bound_to_the_context() {
    let Some(bao) = provider() else { return };
    let key = fresh_key();
    assert!(matches!(bao.wrap(&key, &data_key(1), b"ctx").await, Err(KeyError::UnknownKey(k)) if k == key));
    assert_eq!(bao.ensure_key(&key).await.unwrap(), 1);
    assert_eq!(bao.ensure_key(&key).await.unwrap(), 1, "ensure_key is idempotent");

    let (kek, wrapped) = bao.wrap(&key, &data_key(7), b"object A").await.unwrap();
    assert_eq!(kek, KekRef { provider: "openbao".into(), key_id: key.clone(), version: 1 });
    assert!(wrapped.starts_with(b"vault:v1:"));
    assert_eq!(bao.unwrap(&kek, &wrapped, b"object A").await.unwrap().bytes(), &[7; 32]);

    // Another object's context, an altered ciphertext or a header claiming another version.
    assert!(matches!(bao.unwrap(&kek, &wrapped, b"object B").await, Err(KeyError::Unwrap { .. })));
    let mut altered = wrapped.clone();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    assert!(matches!(bao.unwrap(&kek, &altered, b"object A").await, Err(KeyError::Unwrap { .. })));
    let claims_v2 = KekRef { version: 2, ..kek.clone() };
    assert!(matches!(bao.unwrap(&claims_v2, &wrapped, b"object A").await, Err(KeyError::Unwrap { .. })));
    let local = KekRef { provider: "local".into(), ..kek.clone() };
    assert!(matches!(bao.unwrap(&local, &wrapped, b"object A").await, Err(KeyError::WrongProvider(_))));
}

#[tokio::test]
async fn an_object_round_trips_through_the_container() {
    let Some(bao) = provider() else { return };
    let key = fresh_key();
    bao.ensure_key(&key).await.unwrap();
    let context = [("project", "acme"), ("dataset", "claims"), ("classification", "restricted")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sealing = custody_crypto::seal_header(&bao, &key, context).await.unwrap();
    let plaintext: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut object = sealing.header.to_bytes();
    let context = sealing.header.payload_context();
    custody_crypto::encrypt(&sealing.data_key, &context, &mut plaintext.as_slice(), &mut object, |_| {}).unwrap();

    let (header, offset) = Header::read(&mut object.as_slice()).unwrap();
    let data_key = custody_crypto::open_header(&bao, &header).await.unwrap();
    let payload = &object[offset as usize..];
    let mut out = Vec::new();
    custody_crypto::decrypt(&data_key, &header.payload_context(), &mut &payload[..], &mut out, |_| {}).unwrap();
    assert_eq!(out, plaintext);
    let mut ra = RandomAccess::open(&data_key, &header.payload_context(), payload).unwrap();
    assert_eq!(ra.read_range(50_000..50_010).unwrap(), plaintext[50_000..50_010]);

    // A header relabelled with another object's context no longer opens.
    let mut relabelled = header.clone();
    relabelled.context.insert("classification".into(), "public".into());
    assert!(custody_crypto::open_header(&bao, &relabelled).await.is_err());
}

#[tokio::test]
async fn rotation_rewrap_and_retirement() {
    let Some(bao) = provider() else { return };
    let key = fresh_key();
    bao.ensure_key(&key).await.unwrap();
    let (v1, w1) = bao.wrap(&key, &data_key(3), b"ctx").await.unwrap();
    assert_eq!(bao.rotate(&key).await.unwrap(), 2);
    let (v2, w2) = bao.wrap(&key, &data_key(4), b"ctx").await.unwrap();
    assert_eq!(v2.version, 2, "new data keys wrap under the new version");
    assert_eq!(bao.unwrap(&v1, &w1, b"ctx").await.unwrap().bytes(), &[3; 32], "old versions still unwrap");

    // Server-side rewrap: the data key never leaves OpenBao, and the context stays bound.
    assert!(matches!(bao.rewrap(&v1, &w1, b"other").await, Err(KeyError::Unwrap { .. })));
    let (r1, rw1) = bao.rewrap(&v1, &w1, b"ctx").await.unwrap();
    assert_eq!(r1.version, 2);
    assert_eq!(bao.unwrap(&r1, &rw1, b"ctx").await.unwrap().bytes(), &[3; 32]);

    bao.set_min_decryption_version(&key, 2).await.unwrap();
    assert!(matches!(bao.unwrap(&v1, &w1, b"ctx").await, Err(KeyError::Retired { version: 1, min: 2, .. })));
    assert_eq!(bao.unwrap(&v2, &w2, b"ctx").await.unwrap().bytes(), &[4; 32]);
    assert!(matches!(bao.set_min_decryption_version(&key, 9).await, Err(KeyError::UnknownVersion { .. })));

    let info = bao.keys().await.unwrap().into_iter().find(|k| k.key_id == key).unwrap();
    assert_eq!((info.current, info.min_decryption_version, info.live_versions), (2, 2, vec![1, 2]));
}

#[tokio::test]
async fn shredding_makes_data_unrecoverable() {
    let Some(bao) = provider() else { return };
    let key = fresh_key();
    bao.ensure_key(&key).await.unwrap();
    let (v1, w1) = bao.wrap(&key, &data_key(5), b"ctx").await.unwrap();

    assert!(matches!(bao.destroy(&key, Some(1)).await, Err(KeyError::Invalid(m)) if m.contains("rotate first")));
    bao.rotate(&key).await.unwrap();
    bao.rotate(&key).await.unwrap();
    let (v3, w3) = bao.wrap(&key, &data_key(6), b"ctx").await.unwrap();
    assert!(
        matches!(bao.destroy(&key, Some(2)).await, Err(KeyError::Invalid(m)) if m.contains("oldest")),
        "transit trims from the oldest version up"
    );

    let receipt = bao.destroy(&key, Some(1)).await.unwrap();
    assert_eq!((receipt.provider.as_str(), receipt.versions.as_slice()), ("openbao", &[1][..]));
    assert!(matches!(bao.unwrap(&v1, &w1, b"ctx").await, Err(KeyError::Destroyed { version: 1, .. })));
    assert!(matches!(bao.set_min_decryption_version(&key, 1).await, Err(KeyError::Destroyed { .. })));
    assert_eq!(bao.unwrap(&v3, &w3, b"ctx").await.unwrap().bytes(), &[6; 32]);
    let info = bao.keys().await.unwrap().into_iter().find(|k| k.key_id == key).unwrap();
    assert_eq!((info.live_versions, info.destroyed_versions), (vec![2, 3], vec![1]));

    let receipt = bao.destroy(&key, None).await.unwrap();
    assert_eq!(receipt.versions, vec![2, 3]);
    assert!(matches!(bao.unwrap(&v3, &w3, b"ctx").await, Err(KeyError::UnknownKey(_))));
    assert!(bao.keys().await.unwrap().iter().all(|k| k.key_id != key));
}

#[tokio::test]
async fn refusals_and_outages_are_named() {
    let Some(good) = config(None) else { return };
    let bao = OpenBaoTransit::new(config(Some("not-the-token")).unwrap()).unwrap();
    let err = bao.ensure_key(&fresh_key()).await.unwrap_err().to_string();
    assert!(err.contains("permission denied") && err.contains(&good.addr), "{err}");
    assert!(!err.contains(good.token.as_str()), "the token is never echoed");

    let down =
        OpenBaoTransit::new(OpenBaoConfig { addr: "http://127.0.0.1:9".into(), ..config(None).unwrap() }).unwrap();
    let err = down.keys().await.unwrap_err();
    assert!(
        matches!(&err, KeyError::Unavailable(m) if m.contains("unreachable") && m.contains("127.0.0.1:9")),
        "{err}"
    );

    let bao = provider().unwrap();
    assert!(matches!(bao.ensure_key("../sys/mounts").await, Err(KeyError::Invalid(_))));

    // A transit key made without derivation cannot bind contexts: refused, not used.
    let plain = fresh_key();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/v1/transit/keys/{plain}", good.addr))
        .header("X-Vault-Token", good.token.as_str())
        .json(&serde_json::json!({"type": "aes256-gcm96"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let err = bao.wrap(&plain, &data_key(1), b"ctx").await.unwrap_err();
    assert!(matches!(&err, KeyError::Invalid(m) if m.contains("derivation")), "{err}");
}
