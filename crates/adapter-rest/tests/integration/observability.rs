//! Every metric the Grafana dashboard and the autoscaler's Prometheus Adapter rule name exists in
//! a live `/metrics`, so a renamed metric cannot silently empty a panel or stop the scaling.

use std::collections::BTreeSet;

use serde_json::json;

use crate::support::{config, get, post, ready_app};

/// `aki_*` names in `text`, histogram series (`_bucket`, `_sum`, `_count`) as their family.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = text[i..].find("aki_") {
        let start = i + found;
        let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end =
            text[start..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(text.len(), |e| start + e);
        if boundary {
            let name = &text[start..end];
            let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            names.insert(family.to_string());
        }
        i = end;
    }
    names
}

#[tokio::test]
async fn the_dashboard_and_the_autoscaler_name_only_metrics_the_server_exports() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
    let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut named = metric_names(&read("observability/grafana-dashboard.json"));
    let scaling = metric_names(&(read("kubernetes/prometheus-adapter-rules.yaml") + &read("kubernetes/hpa.yaml")));
    assert!(scaling.contains("aki_queue_depth"), "the autoscaler scales on the queue: {scaling:?}");
    named.extend(scaling);
    assert!(named.len() >= 10, "the dashboard names the metrics it charts: {named:?}");

    let mut cached = config();
    cached.result_cache.max_bytes = 1 << 20;
    let (app, _) = ready_app(cached).await;
    post(&app, "/api/v1/embed", json!({"texts": ["a request so every series has a value"]})).await;
    let exported: BTreeSet<String> = get(&app, "/metrics")
        .await
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = named.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(missing.is_empty(), "named but not exported: {missing:?}; exported: {exported:?}");
}
