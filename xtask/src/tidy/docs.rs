//! docs/architecture.md against the tree: it describes every crate, and every repository path
//! it names exists.

use std::path::Path;

/// The workspace root (xtask's parent).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace")
}

/// Repository paths in `text`: words starting with one of the top-level folders, cut at the
/// first character that cannot be in a path, without a trailing dot; a placeholder such as
/// `crates/backend-<tech>` is not a path.
fn repository_paths(text: &str) -> Vec<String> {
    const TOP: [&str; 6] = ["crates/", "xtask/", "benches/", "scripts/", "deploy/", "docs/"];
    let mut paths = Vec::new();
    for (at, _) in text.char_indices() {
        let rest = &text[at..];
        let starts_word = at == 0 || !text[..at].ends_with(|c: char| c.is_alphanumeric() || "_-/.".contains(c));
        if !starts_word || !TOP.iter().any(|t| rest.starts_with(t)) {
            continue;
        }
        let end = rest.find(|c: char| !(c.is_alphanumeric() || "_-/.".contains(c))).unwrap_or(rest.len());
        if rest[end..].starts_with('<') {
            continue;
        }
        paths.push(rest[..end].trim_end_matches('.').to_string());
    }
    paths
}

#[test]
fn the_architecture_describes_every_crate_and_names_only_paths_that_exist() {
    let text = std::fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        if !text.contains(&format!("`crates/{name}`")) {
            problems.push(format!("crates/{name} has no section (\"`crates/{name}`\")"));
        }
    }
    for path in repository_paths(&text) {
        if !root().join(&path).exists() {
            problems.push(format!("names {path}, which does not exist"));
        }
    }
    assert!(problems.is_empty(), "docs/architecture.md:\n{}", problems.join("\n"));
}

#[test]
fn paths_are_found_in_prose_and_code_spans() {
    let found = repository_paths(
        "see `crates/core/src/pipeline.rs`. And (xtask/src/flags.rs), not src/crates/x, crates/backend-<tech> or a crates/",
    );
    assert_eq!(found, ["crates/core/src/pipeline.rs", "xtask/src/flags.rs", "crates/"]);
}
