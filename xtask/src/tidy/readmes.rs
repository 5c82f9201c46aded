//! Tidy test on the packages' READMEs: every source file, path and module a README names
//! exists, so a README cannot go on citing a file that was split or renamed.
//!
//! What counts as naming one, in a README's text outside fenced code blocks:
//! - a file name ending in `.rs`, in backticks or not (the site docs.rs aside): a path must
//!   exist relative to the package, its `src/` or the workspace root; a bare name must be a file
//!   of the package;
//! - a path in backticks or a link target whose first folder is `src`, `tests`, `benches` or
//!   `examples`, or a folder that exists there: the whole path must exist (so `proto/` is
//!   checked, `application/json` is not);
//! - a Rust path in backticks rooted at the package's library (`aki_core::paths`, `crate::`):
//!   its lowercase segments are modules the package declares (`mod x`), the last one a module
//!   or an item; a capitalised segment is an item, and what follows it (a variant, a method) is
//!   not checked;
//! - a name in backticks next to the word "module" (the `packed` module, module `packed`): a
//!   module the package declares.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::sources::{walk, workspace_root};

/// What a README of a package may name: the workspace's paths and the package's modules and items.
struct Package {
    /// The package's folder, relative to the workspace root.
    dir: PathBuf,
    /// Its library's name (`aki_core`).
    lib: String,
    /// Every file and folder of the workspace, relative to its root.
    tree: BTreeSet<PathBuf>,
    /// Modules the package's Rust files declare.
    modules: BTreeSet<String>,
    /// Items they declare (functions, types, traits, constants, macros, modules, re-exports).
    items: BTreeSet<String>,
}

impl Package {
    /// Reads the package in `dir` (relative to `root`), its folders that hold packages of their
    /// own aside.
    fn read(root: &Path, dir: &Path, tree: BTreeSet<PathBuf>) -> Self {
        let manifest = std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap_or_default();
        let lib = manifest
            .lines()
            .find_map(|line| line.trim().strip_prefix("name = \""))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .replace('-', "_");
        let nested: Vec<&PathBuf> =
            tree.iter().filter(|p| p.starts_with(dir) && *p != dir && tree.contains(&p.join("Cargo.toml"))).collect();
        let (mut modules, mut items) = (BTreeSet::new(), BTreeSet::new());
        for path in tree.iter().filter(|p| p.starts_with(dir) && p.extension().is_some_and(|e| e == "rs")) {
            if nested.iter().any(|n| path.starts_with(n)) {
                continue;
            }
            declarations(&std::fs::read_to_string(root.join(path)).unwrap_or_default(), &mut modules, &mut items);
        }
        Self { dir: dir.to_path_buf(), lib, tree, modules, items }
    }

    /// Whether `path` is a file or folder relative to the package, its `src/` or the root.
    fn has_path(&self, path: &str) -> bool {
        let path = path.trim_start_matches("./").trim_end_matches('/');
        self.bases().iter().any(|base| self.tree.contains(&base.join(path)))
    }

    /// Where a relative path in the README may start: the package, its `src/`, the root.
    fn bases(&self) -> [PathBuf; 3] {
        [self.dir.clone(), self.dir.join("src"), PathBuf::new()]
    }

    /// Whether a file of the package is called `name`.
    fn has_file_named(&self, name: &str) -> bool {
        self.tree.iter().any(|p| p.starts_with(&self.dir) && p.file_name().is_some_and(|n| n == name))
    }

    /// What is wrong with `token` (a word of a code span, a link target, a word ending in
    /// `.rs`), if anything; `beside_module` when the README calls it a module.
    fn problem(&self, token: &str, beside_module: bool) -> Option<String> {
        let token = token.trim_matches(|c: char| ",;:.()[]\"'".contains(c));
        if token.is_empty() || token.contains("://") {
            return None;
        }
        if token.ends_with(".rs") && token != "docs.rs" {
            let found = match token.find(['*', '{']) {
                // A glob (`benches/*.rs`): its folder.
                Some(at) => self.has_path(&token[..token[..at].rfind('/').unwrap_or(0)]),
                None if token.contains('/') => self.has_path(token),
                None => self.has_file_named(token),
            };
            return (!found).then(|| format!("`{token}` is no file of {}", self.dir.display()));
        }
        if token.contains('/') && !token.starts_with('/') {
            let path = &token
                [..token.find(['*', '{', '<', '$']).map_or(token.len(), |at| token[..at].rfind('/').unwrap_or(0))];
            let first = path.trim_start_matches("./").split('/').next().unwrap_or_default();
            let checked = ["src", "tests", "benches", "examples"].contains(&first)
                || self.bases().iter().any(|base| self.tree.contains(&base.join(first)));
            return (checked && !self.has_path(path)).then(|| format!("`{token}` does not exist"));
        }
        if token.contains("::") {
            return self.rust_path_problem(token);
        }
        let identifier =
            !token.is_empty() && token.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        (beside_module && identifier && !self.modules.contains(token))
            .then(|| format!("the `{token}` module is not declared in {}", self.dir.display()))
    }

    /// Checks a Rust path rooted at the package's library; other crates' paths are not checked.
    fn rust_path_problem(&self, token: &str) -> Option<String> {
        let token = token.trim_end_matches("()").trim_end_matches('!');
        let segments: Vec<&str> = token.split("::").collect();
        if !(segments[0] == self.lib || segments[0] == "crate") {
            return None;
        }
        for (i, segment) in segments.iter().enumerate().skip(1) {
            let last = i == segments.len() - 1;
            let known = if segment.starts_with(|c: char| c.is_ascii_uppercase()) {
                self.items.contains(*segment)
            } else {
                self.modules.contains(*segment) || (last && self.items.contains(*segment))
            };
            if !known {
                return Some(format!("`{token}`: {} has no `{segment}`", self.lib));
            }
            if segment.starts_with(|c: char| c.is_ascii_uppercase()) {
                break;
            }
        }
        None
    }

    /// Every problem of `readme`'s text.
    fn problems(&self, readme: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let mut fenced = false;
        for line in readme.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if fenced {
                continue;
            }
            // Even pieces are prose, odd ones code spans.
            let pieces: Vec<&str> = line.split('`').collect();
            for (i, piece) in pieces.iter().enumerate() {
                if i % 2 == 1 {
                    let before = pieces[i - 1].trim_end();
                    let after = pieces.get(i + 1).map_or("", |p| p.trim_start());
                    let beside_module = before.ends_with("module")
                        || before.ends_with("modules")
                        || after.starts_with("module")
                        || after.starts_with("modules");
                    problems.extend(piece.split_whitespace().filter_map(|t| self.problem(t, beside_module)));
                } else {
                    for target in link_targets(piece) {
                        problems.extend(self.problem(target.split('#').next().unwrap_or_default(), false));
                    }
                    let words = piece.split_whitespace().filter(|w| !w.contains("](") && !w.starts_with('('));
                    problems.extend(
                        words
                            .filter(|w| w.trim_end_matches(|c: char| !c.is_alphanumeric()).ends_with(".rs"))
                            .filter_map(|w| self.problem(w, false)),
                    );
                }
            }
        }
        problems
    }
}

/// The targets of markdown links (`[text](target)`) in `text`, web addresses aside.
fn link_targets(text: &str) -> Vec<&str> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.contains("://") && !target.starts_with('#') && !target.starts_with("mailto:"))
        .collect()
}

/// Adds the modules and items declared in `source` (a Rust file's text): lines that open with
/// a declaration (after attributes and qualifiers such as `pub(crate)` or `async`), so that a
/// `mod x` in a comment or a string does not count.
fn declarations(source: &str, modules: &mut BTreeSet<String>, items: &mut BTreeSet<String>) {
    const KEYWORDS: [&str; 11] =
        ["fn", "struct", "enum", "trait", "type", "const", "static", "union", "mod", "macro_rules", "use"];
    const QUALIFIERS: [&str; 10] = ["pub", "crate", "super", "self", "in", "async", "unsafe", "extern", "C", "default"];
    for line in source.lines().map(str::trim_start) {
        let line = match line.strip_prefix("#[").and_then(|_| line.rsplit_once(']')) {
            Some((_, rest)) => rest.trim_start(),
            None => line,
        };
        if !line.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let words: Vec<&str> =
            line.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
        let public = words.first() == Some(&"pub");
        let mut rest = words.iter().skip_while(|w| QUALIFIERS.contains(w)).copied();
        let (Some(mut keyword), Some(mut name)) = (rest.next(), rest.next()) else { continue };
        if keyword == "const" && name == "fn" {
            (keyword, name) = ("fn", rest.next().unwrap_or_default());
        }
        match keyword {
            // A re-export names its items at the end of each path: `pub use a::{B, c}`.
            "use" if public => items.extend([name].into_iter().chain(rest).map(str::to_string)),
            "use" => {}
            "mod" => {
                modules.insert(name.to_string());
                items.insert(name.to_string());
            }
            _ if KEYWORDS.contains(&keyword) => {
                items.insert(name.to_string());
            }
            _ => {}
        }
    }
}

/// The folders of the workspace's packages under `crates/`, `benches/` and `xtask/`.
fn package_dirs(tree: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    tree.iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "Cargo.toml"))
        .filter(|p| ["crates", "benches", "xtask"].iter().any(|top| p.starts_with(top)))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect()
}

#[test]
fn readmes_name_only_files_and_modules_that_exist() {
    let root = workspace_root();
    let tree: BTreeSet<PathBuf> =
        walk(&root).into_iter().filter_map(|p| p.strip_prefix(&root).ok().map(Path::to_path_buf)).collect();
    let mut problems = Vec::new();
    for dir in package_dirs(&tree) {
        let Ok(readme) = std::fs::read_to_string(root.join(&dir).join("README.md")) else { continue };
        let package = Package::read(&root, &dir, tree.clone());
        problems.extend(package.problems(&readme).into_iter().map(|p| format!("{}/README.md: {p}", dir.display())));
    }
    assert!(problems.is_empty(), "READMEs that name what is not there:\n{}", problems.join("\n"));
}

fn package() -> Package {
    let tree = [
        "Cargo.toml",
        "benches",
        "benches/data",
        "crates",
        "crates/candle",
        "crates/candle/proto",
        "crates/candle/src",
        "crates/candle/src/lib.rs",
        "crates/candle/src/packed",
        "crates/candle/src/packed/mod.rs",
        "crates/candle/src/packed/linear.rs",
        "crates/candle/tests",
        "crates/candle/tests/integration",
        "crates/candle/tests/integration/main.rs",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    let (mut modules, mut items) = (BTreeSet::new(), BTreeSet::new());
    declarations(
        "//! Docs.\nmod packed;\n#[cfg(test)] pub(crate) mod linear;\npub use packed::{Split, pack};\n\
         pub struct CandleBackend;\nenum Dtype { F32 }\n// mod gone;\nlet s = \"mod gone\";\npub const fn run() {}\n",
        &mut modules,
        &mut items,
    );
    Package { dir: "crates/candle".into(), lib: "aki_candle".into(), tree, modules, items }
}

#[test]
fn what_exists_and_ordinary_words_pass() {
    let readme = "# aki-candle\n\nThe `packed` module (`packed/linear.rs`, `linear.rs`, `src/packed/`, \
        [the kernels](src/packed/mod.rs#L3)), `aki_candle::packed::linear`, `aki_candle::Dtype::F32`, \
        `aki_candle::run()`, `crate::Split`, `CandleBackend` over `EmbeddingProvider`, `application/json`, \
        `POST /v1/embed`, `proto/`, `benches/data/`, `tests/integration/*.rs`, `tokio::spawn`, \
        `cargo test -p aki-candle`, `AKI_*`, [axum](https://docs.rs/axum), see docs.rs and lib.rs.\n\
        ```\ncargo run src/gone.rs\n```\n";
    assert_eq!(package().problems(readme), Vec::<String>::new());
}

#[test]
fn what_is_gone_is_flagged() {
    let readme = "Kernels in `bf16.rs`, `src/packed/bf16.rs` and `packed/bf16/`, the `bf16` module, \
        module `gone`, `aki_candle::bf16::Gemm`, `aki_candle::Gone`, `tests/unit/`, \
        [bf16](src/bf16.rs), and bf16.rs.";
    let problems = package().problems(readme);
    assert_eq!(problems.len(), 10, "{problems:#?}");
}
