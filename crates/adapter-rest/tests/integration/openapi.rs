//! The served OpenAPI document against the router: every documented route answers its
//! documented method (and 405 to the others), and a body built from each documented request
//! schema, every property set, is one the route's handler accepts.

use aki_wiring::{AppConfig, Engine};
use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::support::{get, send};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// A value `schema` allows, every property of every object set; `#/components/schemas/...`
/// references are looked up in `document`.
fn sample(schema: &Value, document: &Value) -> Value {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.trim_start_matches("#/components/schemas/");
        return sample(&document["components"]["schemas"][name], document);
    }
    if let Some(choices) = schema["oneOf"].as_array() {
        let choice = choices.iter().find(|c| c["type"] != "null").expect("a choice");
        return sample(choice, document);
    }
    if let Some(values) = schema["enum"].as_array() {
        return values[0].clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned().unwrap_or(Value::Null),
        kind => kind.clone(),
    };
    match kind.as_str() {
        Some("object") => {
            let properties = schema["properties"].as_object().cloned().unwrap_or_default();
            Value::Object(properties.iter().map(|(k, v)| (k.clone(), sample(v, document))).collect::<Map<_, _>>())
        }
        Some("array") => json!([sample(&schema["items"], document)]),
        Some("string") => json!("a"),
        Some("integer") => json!(1),
        Some("number") => json!(0.5),
        Some("boolean") => json!(true),
        _ => panic!("no sample for {schema}"),
    }
}

#[tokio::test]
async fn every_documented_route_is_served_with_its_methods_and_takes_its_documented_body() {
    // The model never loads: handlers answer 503 once a body got past the extractor.
    let app = aki_rest::app(Engine::new(AppConfig::default()).expect("a valid configuration"));
    let document = get(&app, "/openapi.json").await.body;
    let paths = document["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 24, "{:?}", paths.keys());
    for (path, item) in paths {
        let operations = item.as_object().expect("operations");
        for method in METHODS {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let Some(operation) = operations.get(method) else {
                let reply = send(&app, verb, path, "", &[]).await;
                assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is not documented");
                continue;
            };
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            let body = if schema.is_null() { String::new() } else { sample(schema, &document).to_string() };
            let reply = send(&app, verb, path, &body, &[]).await;
            assert!(
                ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&reply.status),
                "{method} {path} is documented but not routed: {}",
                reply.status
            );
            if !schema.is_null() {
                assert_eq!(
                    reply.status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{method} {path}: the documented body {body} was refused: {}",
                    reply.text
                );
            }
        }
    }
}

#[tokio::test]
async fn the_document_is_served_before_the_model_loads_and_without_the_key() {
    let keyed = AppConfig { api_key: Some(aki_service::ApiKey("s3cret".into())), ..AppConfig::default() };
    let app = aki_rest::app(Engine::new(keyed).expect("a valid configuration"));
    let reply = get(&app, "/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.body["info"]["title"], "aki-embed REST API");
}
