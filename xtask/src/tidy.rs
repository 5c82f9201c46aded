//! Architecture invariants as tests, in the style of rust-analyzer's tidy tests: the dependency
//! edges between the workspace's crates and the external crates each may use, read from
//! `cargo metadata`. docs/architecture.md states the same rules in prose; a change to either
//! must change both. House rules on the files themselves are in `tidy/sources.rs` (a `//!` doc
//! at the top of each Rust file, no file under `crates/` over 400 lines) and `tidy/readmes.rs`
//! (a README names only files and modules that exist).

#[cfg(test)]
mod docs;
#[cfg(test)]
mod readmes;
#[cfg(test)]
mod sources;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    /// What a package may depend on: `normal` (and build) dependencies, and `dev` dependencies
    /// on top of those for its tests, benches and examples.
    struct Allowed {
        normal: &'static [&'static str],
        dev: &'static [&'static str],
    }

    /// Every workspace package and everything it may depend on. Adding a dependency means adding
    /// it here, where the rules below and a reviewer see it.
    fn allowed() -> BTreeMap<&'static str, Allowed> {
        BTreeMap::from([
            // The centre: no runtime, web, ML, cache or configuration crate.
            ("aki-core", Allowed { normal: &["async-trait", "serde", "thiserror"], dev: &[] }),
            (
                "aki-batching",
                Allowed {
                    normal: &["aki-core", "async-trait", "serde", "tokio", "tracing"],
                    dev: &["aki-backend-candle", "mockall", "proptest", "serde_json", "tokio", "tracing-subscriber"],
                },
            ),
            (
                "aki-cache",
                Allowed {
                    normal: &["aki-core", "async-trait", "moka", "serde", "tokio", "tracing"],
                    dev: &["aki-backend-candle", "mockall", "tokio"],
                },
            ),
            (
                "aki-backend-candle",
                Allowed {
                    normal: &[
                        "aki-core",
                        "async-trait",
                        "candle-core",
                        "candle-nn",
                        "candle-transformers",
                        "gemm",
                        "half",
                        "hf-hub",
                        "rayon",
                        "serde",
                        "serde_json",
                        "tokenizers",
                        "tokio",
                        "tracing",
                    ],
                    dev: &["libm", "proptest", "tempfile", "tokio"],
                },
            ),
            (
                "aki-service",
                Allowed {
                    normal: &["aki-core", "governor", "serde", "sha2", "subtle", "tokio", "tracing"],
                    dev: &["async-trait", "mockall", "tokio"],
                },
            ),
            (
                "aki-wiring",
                Allowed {
                    normal: &[
                        "aki-backend-candle",
                        "aki-batching",
                        "aki-cache",
                        "aki-core",
                        "aki-service",
                        "anyhow",
                        "async-trait",
                        "clap",
                        "figment",
                        "http",
                        "libc",
                        "opentelemetry",
                        "opentelemetry-http",
                        "opentelemetry-otlp",
                        "opentelemetry_sdk",
                        "prometheus",
                        "rlimit",
                        "serde",
                        "tokio",
                        "toml",
                        "tracing",
                        "tracing-opentelemetry",
                        "tracing-subscriber",
                    ],
                    dev: &["figment"],
                },
            ),
            (
                "aki-rest",
                Allowed {
                    normal: &[
                        "aki-core",
                        "aki-service",
                        "aki-wiring",
                        "anyhow",
                        "axum",
                        "base64",
                        "hyper",
                        "hyper-util",
                        "serde",
                        "serde_json",
                        "tokio",
                        "tower",
                        "tower-http",
                        "tracing",
                        "utoipa",
                        "utoipa-axum",
                    ],
                    dev: &[
                        "aki-service",
                        "base64",
                        "opentelemetry-proto",
                        "proptest",
                        "tempfile",
                        "tokio-stream",
                        "tonic",
                        "tower",
                    ],
                },
            ),
            (
                "aki-grpc",
                Allowed {
                    normal: &[
                        "aki-core",
                        "aki-service",
                        "aki-wiring",
                        "anyhow",
                        "axum",
                        "futures-util",
                        "prost",
                        "protoc-bin-vendored",
                        "tokio",
                        "tokio-stream",
                        "tonic",
                        "tonic-health",
                        "tonic-prost",
                        "tonic-prost-build",
                        "tonic-reflection",
                        "tower",
                        "tracing",
                    ],
                    dev: &["aki-rest", "aki-service", "opentelemetry-proto", "serde_json", "tokio-stream", "tower"],
                },
            ),
            (
                "aki-benches",
                Allowed {
                    normal: &[
                        "aki-backend-candle",
                        "aki-batching",
                        "aki-bench-report",
                        "aki-core",
                        "async-trait",
                        "gemm",
                        "rayon",
                        "serde_json",
                        "tokenizers",
                        "tokio",
                    ],
                    dev: &["criterion"],
                },
            ),
            ("aki-bench-report", Allowed { normal: &["serde"], dev: &["serde_json"] }),
            (
                "xtask",
                Allowed {
                    normal: &[
                        "aki-bench-report",
                        "aki-core",
                        "anyhow",
                        "clap",
                        "hf-hub",
                        "rlimit",
                        "serde",
                        "serde_json",
                        "sha2",
                    ],
                    dev: &[],
                },
            ),
        ])
    }

    /// Crates that only some packages may know, and which ones.
    const KNOWLEDGE: [(&str, &[&str], &[&str]); 5] = [
        // Inference and tokenization: the backend; benches measure the libraries themselves and
        // xtask installs models, as tools, never on a request path.
        (
            "candle, tokenizers, gemm",
            &["candle-core", "candle-nn", "candle-transformers", "tokenizers", "gemm"],
            &["aki-backend-candle", "aki-benches"],
        ),
        ("the Hugging Face hub", &["hf-hub"], &["aki-backend-candle", "xtask"]),
        ("HTTP and gRPC wire formats", &["axum", "tower-http", "tonic", "prost", "base64"], &["aki-rest", "aki-grpc"]),
        ("configuration files and Prometheus", &["figment", "prometheus"], &["aki-wiring"]),
        (
            "concrete decorators and backends",
            &["aki-batching", "aki-cache", "aki-backend-candle"],
            &["aki-wiring", "aki-benches"],
        ),
    ];

    /// Each workspace package's dependency names by kind (`normal` includes build dependencies).
    fn dependencies() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
        let mut found = BTreeMap::new();
        for package in metadata["packages"].as_array().expect("packages") {
            let (mut normal, mut dev) = (BTreeSet::new(), BTreeSet::new());
            for dependency in package["dependencies"].as_array().expect("dependencies") {
                let name = dependency["name"].as_str().expect("name").to_string();
                if dependency["kind"] == "dev" {
                    dev.insert(name)
                } else {
                    normal.insert(name)
                };
            }
            found.insert(package["name"].as_str().expect("name").to_string(), (normal, dev));
        }
        found
    }

    #[test]
    fn every_package_depends_only_on_what_it_is_allowed() {
        let allowed = allowed();
        let found = dependencies();
        let packages: BTreeSet<&str> = found.keys().map(String::as_str).collect();
        assert_eq!(packages, allowed.keys().copied().collect(), "a package was added or removed: list it in tidy.rs");
        for (package, (normal, dev)) in &found {
            let rules = &allowed[package.as_str()];
            for dependency in normal {
                assert!(rules.normal.contains(&dependency.as_str()), "{package} may not depend on {dependency}");
            }
            for dependency in dev {
                assert!(rules.dev.contains(&dependency.as_str()), "{package} may not dev-depend on {dependency}");
            }
        }
    }

    #[test]
    fn dependencies_point_inward_and_knowledge_stays_in_its_crates() {
        for (package, rules) in allowed() {
            for (what, crates, owners) in KNOWLEDGE {
                for dependency in rules.normal {
                    assert!(
                        !crates.contains(dependency) || owners.contains(&package),
                        "{package} may not know {what} ({dependency})"
                    );
                }
            }
            // Workspace crates other than the composition root and the binaries depend on the
            // core alone.
            let inner = ["aki-batching", "aki-cache", "aki-backend-candle", "aki-service"];
            if inner.contains(&package) {
                let aki: Vec<_> = rules.normal.iter().filter(|d| d.starts_with("aki-")).collect();
                assert_eq!(aki, [&"aki-core"], "{package} must depend on aki-core only");
            }
        }
    }
}
