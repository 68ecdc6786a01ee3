//! Basic auth: without valid credentials every route answers 401 and
//! nothing runs.

mod api_support;

use api_support::Api;
use base64::Engine as _;
use serde_json::json;

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

#[tokio::test]
async fn unauthenticated_requests_change_nothing() {
    let api = Api::with_auth("kea", "s3cret");
    let add = json!({"command": "lease4-add", "arguments": {"ip-address": "192.0.2.11", "hw-address": "02:00:00:00:00:01"}}).to_string();
    let before = api.fingerprint();
    for auth in [
        None,
        Some(basic("kea:wrong")),
        Some(basic("other:s3cret")),
        Some("Bearer x".into()),
        Some("Basic !!".into()),
    ] {
        let (status, body) = api.post_raw(add.clone(), auth.as_deref()).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            json!({"result": 401, "text": "Unauthorized"})
        );
    }
    assert_eq!(api.fingerprint(), before);
    for path in ["/metrics", "/", "/status.json"] {
        assert_eq!(api.get(path).await.0, 401, "{path}");
    }
    let (status, body) = api.post_raw(add, Some(&basic("kea:s3cret"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(api.leases().len(), 1);
}

#[test]
fn credentials_never_print_the_password() {
    let c = dhcp_user::api::Credentials {
        user: "kea".into(),
        password: dhcp_user::config::Secret::new("s3cret"),
    };
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn credentials_from_cli_file_or_ha_peer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dhcp_user::config::parse(
        &api_support::config_text(&dir.path().join("l.csv"), false),
        "test",
    )
    .unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "hunter2\n").unwrap();
    let c = dhcp_user::api::credentials(Some("admin"), Some(&pw), &cfg)
        .unwrap()
        .unwrap();
    assert_eq!((c.user.as_str(), c.password.expose()), ("admin", "hunter2"));
    assert!(
        dhcp_user::api::credentials(None, None, &cfg)
            .unwrap()
            .is_none(),
        "no HA, no flags: open"
    );
    assert!(dhcp_user::api::credentials(Some("admin"), None, &cfg).is_err());
}
