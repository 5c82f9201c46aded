//! Long inputs over REST: the native route's `long_inputs` and `window_overlap`, and the
//! server's default (`limits.window_long_inputs`), on the real model.

use serde_json::json;

use crate::support::{config, post, ready_app};

fn document() -> String {
    "the quick brown fox jumps over the lazy dog ".repeat(80)
}

#[tokio::test]
async fn windows_count_every_windows_tokens_and_the_server_default_applies_unless_a_request_says() {
    let (app, _) = ready_app(config()).await;
    let tokens = |body: &serde_json::Value| body["usage"]["tokens"].as_u64().expect("usage");
    let cut = post(&app, "/api/v1/embed", json!({"texts": [document()]})).await;
    assert_eq!(tokens(&cut.body), 256, "cut by default: {}", cut.text);
    let windows = post(&app, "/api/v1/embed", json!({"texts": [document()], "long_inputs": "windows"})).await;
    assert_eq!(windows.status, 200, "{}", windows.text);
    // 722 tokens: [CLS] + 720 + [SEP]; windows of 254 starting 32 before the last ended: 4.
    assert_eq!(tokens(&windows.body), 720 + 32 * 3 + 2 * 4, "{}", windows.text);
    let less = post(&app, "/api/v1/embed", json!({"texts": [document()], "window_overlap": 0})).await;
    assert_eq!(tokens(&less.body), 720 + 2 * 3, "an overlap alone asks for windows: {}", less.text);
    let bad = post(&app, "/api/v1/embed", json!({"texts": [document()], "window_overlap": 254})).await;
    assert_eq!(bad.status, 422, "{}", bad.text);

    let mut windowed = config();
    windowed.limits.window_long_inputs = true;
    let (app, _) = ready_app(windowed).await;
    let default = post(&app, "/api/v1/embed", json!({"texts": [document()]})).await;
    assert_eq!(tokens(&default.body), tokens(&windows.body), "the server's default: {}", default.text);
    let asked = post(&app, "/api/v1/embed", json!({"texts": [document()], "long_inputs": "cut"})).await;
    assert_eq!(tokens(&asked.body), 256, "a request's own choice wins: {}", asked.text);
}
