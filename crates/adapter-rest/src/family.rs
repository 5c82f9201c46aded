//! What every API family shares: a [`Family`] is a family's documented routes with its
//! [`ErrorShape`], served behind the API key, which also learns who the caller is (its tenant and
//! the `x-priority` header, as a [`Caller`] extension); [`Body`] reads a route's JSON;
//! [`PriorityField`] is the body's `priority`; [`timing`] writes TEI's timing headers and the
//! lane; [`failure_responses`] documents the failure statuses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aki_core::{EmbedError, Lane, Priority, Timing};
use aki_service::Caller;
use axum::Json;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderName, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use utoipa::PartialSchema;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{RefOr, ResponseBuilder};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::app::AppState;
use crate::failure::Failure;

/// How a family's failures read on the wire: their JSON body, written from the failure.
#[derive(Clone, Copy)]
pub struct ErrorShape(pub fn(&Failure) -> Response);

/// An API family: its documented routes, the routes among them that stay open (no API key),
/// and the shape its failures take.
pub struct Family {
    guarded: OpenApiRouter<AppState>,
    open: OpenApiRouter<AppState>,
    shape: ErrorShape,
}

impl Family {
    /// A family whose routes all need the API key (when one is configured).
    pub fn new(shape: ErrorShape, guarded: OpenApiRouter<AppState>) -> Self {
        Self { guarded, open: OpenApiRouter::new(), shape }
    }

    /// The family with `open` routes too, which need no key and cannot fail.
    pub fn with_open(self, open: OpenApiRouter<AppState>) -> Self {
        Self { open, ..self }
    }

    /// The routes as served: the guarded ones behind the API key, and every failure among them
    /// (the key's, the body's, the service's) written in the family's shape.
    pub fn serve(self, engine: &AppState) -> OpenApiRouter<AppState> {
        self.guarded
            .route_layer(middleware::from_fn_with_state(Arc::clone(engine), authorize))
            .route_layer(middleware::map_response_with_state(self.shape, shape))
            .merge(self.open)
    }

    /// The routes alone, for the OpenAPI document.
    pub fn documented(self) -> OpenApiRouter<AppState> {
        self.guarded.merge(self.open)
    }
}

/// The layer that writes a failure's body in the family's shape (keeping its status, headers and
/// extensions, so the log layer still finds it).
async fn shape(State(shape): State<ErrorShape>, response: Response) -> Response {
    let Some(failure) = response.extensions().get::<Failure>() else {
        return response;
    };
    let body = (shape.0)(failure).into_body();
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, body)
}

/// The route a request matched (its path pattern), as the service's metrics name it.
fn route_of(request: &Request) -> String {
    request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string()
}

/// The header that asks for a lane, for clients that cannot add a body field.
pub const PRIORITY_HEADER: &str = "x-priority";

/// The layer on guarded routes: `Authorization: Bearer <key>` when keys are configured, whose
/// tenant, with the `x-priority` header, becomes the request's [`Caller`] extension.
async fn authorize(State(engine): State<AppState>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let route = route_of(&request);
    let tenant = match engine.service.authorize(&route, token) {
        Ok(tenant) => tenant,
        Err(error) => return Failure::from(error).into_response(),
    };
    let priority = match request.headers().get(PRIORITY_HEADER).map(|v| v.to_str().unwrap_or_default().parse()) {
        None => Priority::Auto,
        Some(Ok(priority)) => priority,
        Some(Err(message)) => {
            let error = EmbedError::Validation(format!("header `{PRIORITY_HEADER}`: {message}"));
            engine.service.reject(&route, &error);
            return Failure::from(error).into_response();
        }
    };
    request.extensions_mut().insert(Caller { tenant, priority, requester: None });
    next.run(request).await
}

/// The `priority` field of a request body: which lane it waits in. Over the `x-priority`
/// header when both are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PriorityField {
    /// By size: bulk above `lanes.bulk_above_tokens` tokens (the default).
    Auto,
    /// The interactive lane (search queries), whatever the size.
    Interactive,
    /// The bulk lane (indexing), whatever the size.
    Bulk,
}

/// `caller` asking for the body's `priority`, when the body has one.
pub fn asking(caller: Caller, priority: Option<PriorityField>) -> Caller {
    let priority = match priority {
        None => return caller,
        Some(PriorityField::Auto) => Priority::Auto,
        Some(PriorityField::Interactive) => Priority::Interactive,
        Some(PriorityField::Bulk) => Priority::Bulk,
    };
    Caller { priority, ..caller }
}

/// A route's JSON body. One that is not the route's JSON (malformed, wrong types, wrong content
/// type, too large) is a failure, counted by the service.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, engine: &AppState) -> Result<Self, Failure> {
        let route = route_of(&request);
        match Json::<T>::from_request(request, engine).await {
            Ok(Json(body)) => Ok(Body(body)),
            Err(rejection) if crate::connection::is_body_timeout(&rejection) => {
                let message = format!(
                    "the request body did not arrive within {} s (limits.body_timeout_secs)",
                    engine.config.limits.body_timeout_secs
                );
                engine.service.reject(&route, &EmbedError::Validation(message.clone()));
                Err(Failure::slow_body(message))
            }
            Err(rejection) => {
                engine.service.reject(&route, &EmbedError::Validation(rejection.body_text()));
                Err(Failure::rejected(&rejection))
            }
        }
    }
}

/// TEI's timing headers as [`timing`] writes them, each with its documentation; the tokens
/// first, then times in milliseconds, then the lane.
const TIMING_HEADERS: [(&str, &str); 6] = [
    ("x-compute-tokens", "tokens processed"),
    ("x-tokenization-time", "milliseconds tokenizing"),
    ("x-queue-time", "milliseconds queued for a batch"),
    ("x-inference-time", "milliseconds in the model"),
    ("x-total-time", "milliseconds from arrival to answer"),
    ("x-lane", "the lane the request waited in: `interactive` or `bulk`"),
];

/// TEI's timing headers, in milliseconds, with the tokens computed and the lane.
pub fn timing(tokens: usize, lane: Lane, timing: Timing, total: Duration) -> [(HeaderName, String); 6] {
    let ms = |d: Duration| d.as_millis().to_string();
    let mut values = [
        tokens.to_string(),
        ms(timing.tokenize),
        ms(timing.queue),
        ms(timing.inference),
        ms(total),
        lane.as_str().to_string(),
    ]
    .into_iter();
    TIMING_HEADERS.map(|(name, _)| (HeaderName::from_static(name), values.next().unwrap_or_default()))
}

/// `route` with [`timing`]'s headers documented on its 200 answer: for the routes whose handlers
/// send them, so the document's list is the one written.
pub fn timed<S>(mut route: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S> {
    for item in route.1.paths.values_mut() {
        for operation in [item.get.as_mut(), item.post.as_mut()].into_iter().flatten() {
            let Some(RefOr::T(ok)) = operation.responses.responses.get_mut("200") else { continue };
            for (i, (name, description)) in TIMING_HEADERS.into_iter().enumerate() {
                let schema = match i {
                    0 => usize::schema(),
                    5 => String::schema(),
                    _ => u64::schema(),
                };
                let header = HeaderBuilder::new().schema(Some(schema)).description(Some(description)).build();
                ok.headers.insert(name.to_string(), RefOr::T(header));
            }
        }
    }
    route
}

/// The 401's description.
pub const UNAUTHORIZED: &str = "an API key is configured and the request's is missing or wrong";

/// Every failure status an API route can answer, each with a body of the schema `shape` (for
/// the families' `utoipa::IntoResponses`).
pub fn failure_responses(shape: &str) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    [
        ("400", "no input at all; malformed JSON or invalid UTF-8"),
        ("401", UNAUTHORIZED),
        ("404", "the request names a model that is not served"),
        ("413", "body over `limits.body_limit_bytes`"),
        ("415", "body not sent as `application/json`"),
        ("422", "wrong types or unknown fields; too many inputs; an input too long; bad options"),
        ("424", "the model failed while computing"),
        (
            "429",
            "too many requests in flight, the lane's queue is full or would not finish the request before its \
             deadline, or the tenant's token rate is spent; with `Retry-After` (seconds)",
        ),
        ("503", "the model is still loading"),
        ("504", "the request ran past `limits.request_timeout_ms`"),
    ]
    .into_iter()
    .map(|(status, description)| {
        let content =
            utoipa::openapi::ContentBuilder::new().schema(Some(utoipa::openapi::Ref::from_schema_name(shape))).build();
        let response = ResponseBuilder::new().description(description).content("application/json", content);
        (status.to_string(), RefOr::T(response.build()))
    })
    .collect()
}
