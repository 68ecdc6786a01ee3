//! Bad requests: each gets a Kea-style error and the right HTTP status,
//! none panics, none changes anything. Ends with a property test throwing
//! random bodies and commands at the router.

mod api_support;

use api_support::{Api, rt};
use proptest::prelude::*;
use serde_json::{Value, json};

#[tokio::test]
async fn malformed_bodies_are_400_with_a_kea_answer() {
    let api = Api::new();
    let before = api.fingerprint();
    for (body, text) in [
        ("garbage", "invalid JSON"),
        ("", "invalid JSON"),
        ("[1, 2]", "command must be a JSON map"),
        (
            r#"{"arguments": {}}"#,
            "missing mandatory 'command' parameter",
        ),
        (
            r#"{"command": 5}"#,
            "'command' element in command message is not a string",
        ),
        (
            r#"{"command": "list-commands", "service": "dhcp4"}"#,
            "'service' must be a list of strings",
        ),
    ] {
        let (status, answer) = api.post_raw(body, None).await;
        assert_eq!(status, 400, "{body}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["result"], 1, "{body}");
        assert!(v["text"].as_str().unwrap().starts_with(text), "{body}: {v}");
    }
    assert_eq!(api.fingerprint(), before);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let api = Api::new();
    let before = api.fingerprint();
    let big = format!(
        r#"{{"command": "lease4-add", "arguments": {{"pad": "{}"}}}}"#,
        "x".repeat(dhcp_user::api::http::MAX_BODY)
    );
    let (status, answer) = api.post_raw(big, None).await;
    assert_eq!(status, 413);
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap()["result"], 1);
    assert_eq!(api.fingerprint(), before);
}

#[tokio::test]
async fn unknown_commands_and_paths() {
    let api = Api::new();
    let (status, v) = api.post(&json!({"command": "x"})).await;
    assert_eq!(
        status, 200,
        "Kea answers unsupported commands with result 2, not an HTTP error"
    );
    assert_eq!(rt(&v), (2, "'x' command not supported.".into()));
    let (status, _) = api.get("/nope").await;
    assert_eq!(status, 404);
}

const COMMANDS: &[&str] = &[
    "lease4-add",
    "lease4-update",
    "lease4-del",
    "lease4-get",
    "lease4-get-all",
    "lease4-get-page",
    "lease4-get-by-hw-address",
    "lease4-get-by-hostname",
    "lease4-get-by-client-id",
    "lease4-wipe",
    "config-set",
    "config-test",
    "config-write",
    "config-reload",
    "config-get",
    "dhcp-disable",
    "dhcp-enable",
    "statistic-get",
    "statistic-get-all",
    "status-get",
    "version-get",
    "list-commands",
    "ha-heartbeat",
    "lease4-",
    "",
    "shutdown",
];

const KEYS: &[&str] = &[
    "ip-address",
    "hw-address",
    "client-id",
    "subnet-id",
    "valid-lft",
    "expire",
    "hostname",
    "state",
    "user-context",
    "fqdn-fwd",
    "force-create",
    "from",
    "limit",
    "subnets",
    "identifier",
    "identifier-type",
    "max-period",
    "origin",
    "filename",
    "name",
    "Dhcp4",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("192.0.2.11"),
            Just("198.51.100.120"),
            Just("10.0.0.1"),
            Just("start"),
            Just("02:00:00:00:00:01"),
            Just("01:02:03"),
            Just("hw-address"),
            Just("client-id"),
            Just("zz"),
            Just("")
        ]
        .prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

fn arguments() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        value().prop_map(Some),
        prop::collection::vec((prop::sample::select(KEYS), scalar()), 0..6).prop_map(|kv| Some(
            Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        )),
    ]
}

/// Either raw bytes or a well-formed command with random arguments.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (
            prop::sample::select(COMMANDS),
            arguments(),
            prop::option::of(prop::collection::vec("[a-z0-9]{0,6}", 0..3))
        )
            .prop_map(|(c, a, s)| {
                let mut m = serde_json::Map::new();
                m.insert("command".into(), json!(c));
                if let Some(a) = a {
                    m.insert("arguments".into(), a);
                }
                if let Some(s) = s {
                    m.insert("service".into(), json!(s));
                }
                Value::Object(m).to_string().into_bytes()
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// No input panics the router; any answer but success leaves leases,
    /// policy, the dhcp-disable flag, the token and the config file alone.
    #[test]
    fn random_requests_never_panic_and_failures_change_nothing(bodies in prop::collection::vec(body(), 1..6)) {
        let rt_ = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt_.block_on(async {
            let api = Api::in_memory();
            // Something to lose.
            api.cmd("lease4-add", Some(json!({"ip-address": "192.0.2.11", "hw-address": "02:00:00:00:00:01"}))).await;
            for b in bodies {
                let before = api.fingerprint();
                let (status, text) = api.post_raw(b.clone(), None).await;
                let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer not JSON ({e}): {text}"));
                let answers: Vec<Value> = match v { Value::Array(a) => a, v => vec![v] };
                let ok = status == 200 && answers.iter().any(|a| a["result"] == 0);
                if !ok {
                    prop_assert_eq!(api.fingerprint(), before, "{} changed state: {}", String::from_utf8_lossy(&b), text);
                }
            }
            Ok(())
        })?;
    }
}
