//! OIDC bearer JWTs against a real JWKS endpoint on loopback, with keys made by the test.

use crate::common::*;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

struct Issuer {
    url: String,
    key: EncodingKey,
    other: EncodingKey,
}

fn p256() -> (EncodingKey, Value) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    assert_eq!(point[0], 4, "uncompressed point");
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

async fn issuer() -> Issuer {
    let (key, jwk) = p256();
    let (other, _) = p256();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let jwks = json!({ "keys": [jwk] });
    let discovery = json!({ "issuer": url, "jwks_uri": format!("{url}/jwks.json") });
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", axum::routing::get(move || async move { axum::Json(discovery) }))
        .route("/jwks.json", axum::routing::get(move || async move { axum::Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer { url, key, other }
}

fn jwt(key: &EncodingKey, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

#[tokio::test]
async fn oidc_bearer_tokens() {
    let iss = issuer().await;
    let issuer_url = iss.url.clone();
    let s = TestServer::start_with(custody_store::testing::sqlite(), |c| {
        c.oidc = Some(custody_server::config::OidcConfig {
            issuer: issuer_url,
            audience: "custody".into(),
            jwks_url: None,
            roles_claim: "custody_roles".into(),
            leeway_secs: 0,
        })
    })
    .await;
    s.project("p").await;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |over: Value| {
        let mut c = json!({ "iss": iss.url, "aud": "custody", "sub": "u-42", "exp": now + 300, "iat": now, "custody_roles": ["p:viewer"] });
        c.as_object_mut().unwrap().extend(over.as_object().unwrap().clone());
        c
    };

    let good = jwt(&iss.key, "k1", claims(json!({})));
    let me = s.get(&good, "/api/v1/whoami").await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["id"], "oidc:u-42");
    assert_eq!(s.get(&good, "/api/v1/projects/p").await.status, 200);
    assert_eq!(s.post(&good, "/api/v1/projects/p/datasets", dataset_body("x", "public")).await.status, 403);

    let no_roles = jwt(&iss.key, "k1", claims(json!({ "custody_roles": [] })));
    assert_eq!(s.get(&no_roles, "/api/v1/whoami").await.status, 200);
    assert_eq!(s.get(&no_roles, "/api/v1/projects/p").await.status, 403);

    let refused = [
        ("wrong issuer", jwt(&iss.key, "k1", claims(json!({ "iss": "https://evil.example" })))),
        ("wrong audience", jwt(&iss.key, "k1", claims(json!({ "aud": "other" })))),
        ("expired", jwt(&iss.key, "k1", claims(json!({ "exp": now - 10 })))),
        ("not yet valid", jwt(&iss.key, "k1", claims(json!({ "nbf": now + 600 })))),
        ("other key", jwt(&iss.other, "k1", claims(json!({})))),
        ("unknown kid", jwt(&iss.key, "k9", claims(json!({})))),
        ("bad roles", jwt(&iss.key, "k1", claims(json!({ "custody_roles": ["p:emperor"] })))),
        (
            "hmac",
            jsonwebtoken::encode(
                &Header { kid: Some("k1".into()), ..Header::new(Algorithm::HS256) },
                &claims(json!({})),
                &EncodingKey::from_secret(b"k"),
            )
            .unwrap(),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#),
                URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
            ),
        ),
    ];
    for (what, token) in refused {
        let a = s.get(&token, "/api/v1/whoami").await;
        assert_eq!(a.status, 401, "{what}: {:?}", a.body);
    }
    s.stop().await;
}

#[tokio::test]
async fn jwts_are_refused_without_an_issuer() {
    let iss = issuer().await;
    let s = TestServer::start(custody_store::testing::sqlite()).await;
    let now = jsonwebtoken::get_current_timestamp();
    let token = jwt(&iss.key, "k1", json!({ "iss": iss.url, "aud": "custody", "sub": "u", "exp": now + 60 }));
    let a = s.get(&token, "/api/v1/whoami").await;
    assert_eq!(a.status, 401);
    s.stop().await;
}
