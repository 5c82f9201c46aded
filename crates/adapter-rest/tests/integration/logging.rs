//! Each failed request is logged once, by the log layer, at its kind's level, with the route,
//! the kind, the status and the cause.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use aki_wiring::{AppConfig, Engine};
use axum::http::Method;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

use crate::support::{post, send};

type Events = Arc<Mutex<Vec<(Level, BTreeMap<String, String>)>>>;

/// A subscriber that keeps every event's level and fields.
struct Capture(Events);

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0.lock().expect("events").push((*event.metadata().level(), fields.0));
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// The "request failed" events among `events`, as (level, route, kind, status), each with a cause.
fn failures(events: &Events) -> Vec<(Level, String, String, String)> {
    let events = events.lock().expect("events");
    events
        .iter()
        .filter(|(_, fields)| fields.get("message").is_some_and(|m| m == "request failed"))
        .map(|(level, fields)| {
            assert!(fields.get("error").is_some_and(|e| !e.is_empty()), "the cause is logged: {fields:?}");
            (*level, fields["route"].clone(), fields["kind"].clone(), fields["status"].clone())
        })
        .collect()
}

#[tokio::test]
async fn each_failure_is_logged_once_at_its_kind_s_level() {
    let events = Events::default();
    let _guard = tracing::subscriber::set_default(Capture(Arc::clone(&events)));
    let keyed = AppConfig { api_key: Some(aki_service::ApiKey("s3cret".into())), ..AppConfig::default() };
    let app = aki_rest::app(Engine::new(keyed).expect("a valid configuration"));
    let key = [("authorization", "Bearer s3cret")];

    send(&app, Method::POST, "/embed", &json!({"inputs": "a"}).to_string(), &key).await;
    send(&app, Method::POST, "/v1/embeddings", "{\"input\": [", &key).await;
    post(&app, "/api/v1/embed", json!({"texts": ["a"]})).await;
    send(&app, Method::GET, "/health", "", &[]).await;

    let logged = failures(&events);
    let line = |level, route: &str, kind: &str, status: &str| (level, route.into(), kind.into(), status.into());
    assert_eq!(
        logged,
        [
            line(Level::WARN, "/embed", "unavailable", "503"),
            line(Level::DEBUG, "/v1/embeddings", "bad_request", "400"),
            line(Level::DEBUG, "/api/v1/embed", "unauthorized", "401"),
        ]
    );
}
