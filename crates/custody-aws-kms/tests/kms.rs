//! The AWS KMS provider, through the real AWS SDK, against a local KMS endpoint (moto's server,
//! started by `scripts/with-moto.sh`). Skipped without one, except under CI=true.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr, missing_docs)]

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use custody_aws_kms::AwsKms;
use custody_crypto::{EncryptionContext, Header, KeyError, KeyProvider};

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "test-secret", None, None, "custody-test"))
        .load()
        .await
}

async fn kms() -> Option<AwsKms> {
    let Ok(endpoint) = std::env::var("CUSTODY_TEST_KMS_ENDPOINT") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true: a local KMS endpoint is required; run under scripts/with-moto.sh");
        }
        eprintln!("skipped: no KMS endpoint (run under scripts/with-moto.sh)");
        return None;
    };
    Some(AwsKms::new(&sdk_config(&endpoint).await))
}

fn alias() -> String {
    format!("custody-test-{}", uuid::Uuid::new_v4())
}

fn context(object: &str) -> EncryptionContext {
    [("project", "acme"), ("dataset", "claims"), ("classification", "restricted"), ("object", object)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn data_keys_are_generated_wrapped_and_bound_to_their_object() {
    let Some(kms) = kms().await else { return };
    let name = alias();
    assert!(matches!(
        kms.wrap(&name, &custody_crypto::InputKey::new([1; 32]), b"x").await,
        Err(KeyError::UnknownKey(_))
    ));
    assert_eq!(kms.ensure_key(&name).await.unwrap(), 1);
    assert_eq!(kms.ensure_key(&name).await.unwrap(), 1, "idempotent");

    // GenerateDataKey through the container; the header names the key's ARN, not the alias.
    let sealing = custody_crypto::seal_header(&kms, &name, context("a")).await.unwrap();
    let kek = &sealing.header.kek;
    assert_eq!((kek.provider.as_str(), kek.version), ("aws-kms", 1));
    assert!(kek.key_id.starts_with("arn:aws:kms:us-east-1:"), "{}", kek.key_id);
    let opened = custody_crypto::open_header(&kms, &sealing.header).await.unwrap();
    assert_eq!(opened.bytes(), sealing.data_key.bytes());

    // Another object's context (KMS checks the encryption context) or altered bytes: refused.
    let mut moved = sealing.header.clone();
    moved.context = context("b");
    assert!(matches!(
        custody_crypto::open_header(&kms, &moved).await,
        Err(custody_crypto::EnvelopeError::Key(KeyError::Unwrap { .. }))
    ));
    let wrapped = base64_decode(&sealing.header.wrapped_key);
    let mut altered = wrapped.clone();
    let mid = altered.len() / 2;
    altered[mid] ^= 1;
    let aad = Header::wrap_aad(&sealing.header.context);
    assert!(kms.unwrap(kek, &altered, &aad).await.is_err());

    // Encrypt of a given data key (the generic wrap) round-trips too.
    let key = custody_crypto::InputKey::new([9; 32]);
    let (kek2, w2) = kms.wrap(&name, &key, &aad).await.unwrap();
    assert_eq!(kms.unwrap(&kek2, &w2, &aad).await.unwrap().bytes(), &[9; 32]);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

#[tokio::test]
async fn rotation_and_reencrypt() {
    let Some(kms) = kms().await else { return };
    let name = alias();
    kms.ensure_key(&name).await.unwrap();
    let sealing = custody_crypto::seal_header(&kms, &name, context("r")).await.unwrap();
    assert_eq!(kms.rotate(&name).await.unwrap(), 2);
    let info = kms.keys().await.unwrap().into_iter().find(|k| k.key_id == sealing.header.kek.key_id).unwrap();
    assert_eq!((info.current, info.live_versions.clone()), (2, vec![1, 2]));

    // ReEncrypt moves the data key to the current generation without it leaving KMS.
    let rewrapped = custody_crypto::rewrap_header(&kms, &sealing.header).await.unwrap();
    assert_eq!(rewrapped.kek.version, 2);
    assert_ne!(rewrapped.wrapped_key, sealing.header.wrapped_key);
    assert_eq!(rewrapped.context, sealing.header.context, "only the wrap changes");
    let opened = custody_crypto::open_header(&kms, &rewrapped).await.unwrap();
    assert_eq!(opened.bytes(), sealing.data_key.bytes());
    let mut moved = sealing.header.clone();
    moved.context = context("other");
    assert!(custody_crypto::rewrap_header(&kms, &moved).await.is_err(), "ReEncrypt checks the source context");

    // KMS cannot retire or destroy one generation: said plainly.
    assert!(
        matches!(kms.set_min_decryption_version(&name, 2).await, Err(KeyError::Invalid(m)) if m.contains("cannot retire"))
    );
    assert!(matches!(kms.destroy(&name, Some(1)).await, Err(KeyError::Invalid(_))));
}

#[tokio::test]
async fn shredding_schedules_deletion_with_a_receipt() {
    let Some(kms) = kms().await else { return };
    let name = alias();
    kms.ensure_key(&name).await.unwrap();
    let sealing = custody_crypto::seal_header(&kms, &name, context("s")).await.unwrap();
    let receipt = kms.destroy(&name, None).await.unwrap();
    assert_eq!(receipt.provider, "aws-kms");
    assert_eq!(receipt.key_id, sealing.header.kek.key_id);
    assert_eq!(receipt.versions, vec![1]);
    let pending = receipt.pending_until.expect("KMS deletes after a waiting period");
    let until = time::OffsetDateTime::parse(&pending, &time::format_description::well_known::Rfc3339).unwrap();
    let wait = until - time::OffsetDateTime::now_utc();
    assert!(wait > time::Duration::days(6) && wait <= time::Duration::days(7), "{wait}");
    let info = kms.keys().await.unwrap().into_iter().find(|k| k.key_id == receipt.key_id).unwrap();
    assert_eq!((info.live_versions, info.destroyed_versions), (vec![], vec![1]), "listed as shredded");
    // Real KMS then refuses every use of the key (KMSInvalidStateException → Destroyed); moto
    // does not enforce deletion, so that refusal is proven on the local and OpenBao providers.
}

#[tokio::test]
async fn an_unreachable_endpoint_is_named() {
    let Some(_) = kms().await else { return };
    let kms = AwsKms::new(&sdk_config("http://127.0.0.1:9").await);
    let err = kms.ensure_key(&alias()).await.unwrap_err();
    assert!(
        matches!(&err, KeyError::Unavailable(m) if m.contains("unreachable") && m.contains("127.0.0.1:9")),
        "{err}"
    );
    assert!(!err.to_string().contains("test-secret"));
}
