//! The source tree keeps the shape the design asks for: imports between the
//! top-level modules run one way (no circle), the core never imports the
//! command line or the daemon, SQL lives only in `src/store/`, every file
//! says what it owns in a `//!` header, and no file grows past ~600 lines.
//! Read from the files themselves, as a reviewer would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules the design puts below the daemon and the command line.
const CORE: [&str; 7] = ["poll", "store", "rules", "diff", "dts", "aliyun", "notify"];

/// The longest a source file may grow before it is split along a seam.
const MAX_LINES: usize = 620;

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("src is readable")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

/// `src/poll/recorder.rs` → `poll`; `src/text.rs` → `text`.
fn module_of(path: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let relative = path.strip_prefix(&src).expect("under src");
    let first = relative
        .components()
        .next()
        .expect("a component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a file without its `#[cfg(test)]` modules (tests may reach anywhere).
fn production_code(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Every top-level module a file names through `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    let code = production_code(text);
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let preceded_by_ident = code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if preceded_by_ident {
            continue;
        }
        let name: String = code[at + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources() {
        let module = module_of(&path);
        if module == "main" || module == "lib" {
            continue;
        }
        let entry = graph.entry(module.clone()).or_default();
        for import in imports(&text) {
            if import != module {
                entry.insert(import);
            }
        }
    }
    graph
}

/// A path of modules that leads from `start` back to it, if any.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn imports_between_modules_run_one_way() {
    let graph = graph();
    assert!(
        graph.contains_key("poll") && graph.contains_key("cli"),
        "{graph:?}"
    );
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            panic!("import circle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_core_never_imports_the_command_line_or_the_daemon() {
    let graph = graph();
    for module in CORE {
        let imports = graph
            .get(module)
            .unwrap_or_else(|| panic!("no module {module}"));
        for above in ["cli", "daemon"] {
            assert!(
                !imports.contains(above),
                "{module} imports {above}: {imports:?}"
            );
        }
    }
}

#[test]
fn sql_lives_only_in_the_store() {
    let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    for (path, text) in sources() {
        if path.starts_with(&store) {
            continue;
        }
        for marker in [
            "sqlx::query",
            "SELECT ",
            "INSERT INTO",
            "UPDATE ",
            "DELETE FROM",
        ] {
            assert!(
                !production_code(&text).contains(marker),
                "{} contains `{marker}`: SQL belongs in src/store",
                path.display()
            );
        }
    }
}

#[test]
fn every_file_says_what_it_owns_and_stays_small() {
    for (path, text) in sources() {
        assert!(
            text.starts_with("//!"),
            "{} does not open with a //! header",
            path.display()
        );
        let lines = text.lines().count();
        assert!(
            lines <= MAX_LINES,
            "{} has {lines} lines; split it along a seam",
            path.display()
        );
        for (number, line) in text.lines().enumerate() {
            if let Some(at) = line.find("TODO") {
                assert!(
                    line[at..].contains("#") || line[at..].contains("issue"),
                    "{}:{}: a TODO without an issue number",
                    path.display(),
                    number + 1
                );
            }
        }
    }
}
