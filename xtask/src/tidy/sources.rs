//! Tidy tests on the workspace's Rust files: each opens with a `//!` doc line, and no library or
//! binary file under `crates/` runs past [`MAX_LINES`] (a file that long usually holds two jobs:
//! one concept per file). Also the file walk the README test shares.

use std::path::{Path, PathBuf};

/// The most lines a source file under `crates/` may have (files under `tests/` aside).
const MAX_LINES: usize = 400;

/// The workspace root.
pub(super) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Every file and directory under `dir`, sorted, leaving out build output (`target`) and hidden
/// directories (`.git`).
pub(super) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => return found,
    };
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            if name == "target" || name.starts_with('.') {
                continue;
            }
            found.push(path.clone());
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The `.rs` files under each of `dirs` (relative to the workspace root), as paths relative to it.
fn rust_files(dirs: &[&str]) -> Vec<PathBuf> {
    let root = workspace_root();
    dirs.iter()
        .flat_map(|dir| walk(&root.join(dir)))
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .filter_map(|path| path.strip_prefix(&root).ok().map(Path::to_path_buf))
        .collect()
}

/// The first line of `text` that is neither blank nor part of an inner attribute (`#![...]`).
fn opening_line(text: &str) -> Option<&str> {
    let mut in_attribute = false;
    for line in text.lines().map(str::trim) {
        if in_attribute || line.starts_with("#![") {
            in_attribute = !line.ends_with(']');
        } else if !line.is_empty() {
            return Some(line);
        }
    }
    None
}

#[test]
fn the_opening_line_skips_blank_lines_and_inner_attributes() {
    assert_eq!(opening_line("\n//! Docs.\nfn f() {}"), Some("//! Docs."));
    assert_eq!(
        opening_line("#![allow(unused)]\n#![cfg_attr(\n    test,\n    allow(dead_code)\n)]\n\n//! Docs."),
        Some("//! Docs.")
    );
    assert_eq!(opening_line("// A comment.\n//! Docs."), Some("// A comment."));
    assert_eq!(opening_line("/// An item's doc.\nfn f() {}"), Some("/// An item's doc."));
    assert_eq!(opening_line("\n\n"), None);
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = workspace_root();
    let undocumented: Vec<String> = rust_files(&["crates", "benches", "xtask"])
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(root.join(path)).unwrap_or_default();
            !opening_line(&text).is_some_and(|line| line.starts_with("//!"))
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(undocumented.is_empty(), "files that do not open with a `//!` doc line:\n{}", undocumented.join("\n"));
}

#[test]
fn no_source_file_under_crates_is_over_the_line_limit() {
    let root = workspace_root();
    let long: Vec<String> = rust_files(&["crates"])
        .into_iter()
        .filter(|path| !path.components().any(|c| c.as_os_str() == "tests"))
        .filter_map(|path| {
            let lines = std::fs::read_to_string(root.join(&path)).unwrap_or_default().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines (one job per file: split them):\n{}", long.join("\n"));
}
