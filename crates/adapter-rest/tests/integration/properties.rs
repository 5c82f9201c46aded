//! Properties of the request DTOs: any JSON body (and any bytes) sent to any route is answered
//! with a 2xx or a 4xx in the route's error shape, never a 5xx and never a panic; the server
//! keeps answering good requests afterwards.

use std::sync::OnceLock;

use axum::Router;
use axum::http::Method;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{config, ready_app, send};

/// One server for every case, on a runtime that outlives them (the batcher's worker runs there).
fn server() -> &'static (tokio::runtime::Runtime, Router) {
    static SERVER: OnceLock<(tokio::runtime::Runtime, Router)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let (app, _) = runtime.block_on(ready_app(config()));
        (runtime, app)
    })
}

/// Keys the routes know, and some they do not.
const KEYS: [&str; 14] = [
    "texts",
    "input",
    "inputs",
    "model",
    "dimensions",
    "normalize",
    "truncate",
    "truncation_direction",
    "encoding_format",
    "add_special_tokens",
    "user",
    "prompt",
    "extra",
    "",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1000i64..100_000).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        prop::sample::select(vec!["Left", "Right", "float", "base64", "sentence-transformers/all-MiniLM-L6-v2"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(prop::sample::select(KEYS.to_vec()).prop_map(str::to_string), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body as sent: usually a JSON object with the routes' keys, sometimes any JSON, sometimes
/// any bytes (as text, lossily).
fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::btree_map(prop::sample::select(KEYS.to_vec()).prop_map(str::to_string), json_value(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()).to_string()),
        2 => json_value().prop_map(|v| v.to_string()),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

const ROUTES: [&str; 5] = ["/api/v1/embed", "/v1/embeddings", "/embed", "/tokenize", "/rerank-not-a-route"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_body_on_any_route_is_a_2xx_or_a_4xx_in_json(route in prop::sample::select(ROUTES.to_vec()), body in body()) {
        let (runtime, app) = server();
        let reply = runtime.block_on(send(app, Method::POST, route, &body, &[]));
        prop_assert!(reply.status.is_success() || reply.status.is_client_error(), "{} {}: {} {}", route, body, reply.status, reply.text);
        if reply.status.is_client_error() && route != "/rerank-not-a-route" {
            prop_assert!(reply.body.get("error").is_some(), "{} {}: an error without the route's shape: {}", route, body, reply.text);
        }
    }
}

#[test]
fn the_server_still_answers_after_the_fuzzing() {
    let (runtime, app) = server();
    let reply = runtime.block_on(send(app, Method::POST, "/api/v1/embed", r#"{"texts": ["still fine"]}"#, &[]));
    assert_eq!(reply.status, axum::http::StatusCode::OK, "{}", reply.text);
}
