//! The code's layout: no module of any crate imports a module that imports it back.
//!
//! A module's imports are its `use` declarations and its inline `crate::…`/`super::…` paths,
//! outside its test module; each resolves to the deepest module file it names (`a/b.rs` or
//! `a/b/mod.rs` is module `a::b`). A group's `mod.rs` may re-export its children; a child that
//! imports its parent closes a cycle, which is why children import their siblings instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every crate's module root (`src/`), and the directories under it that are crates of their
/// own (binaries).
const CRATES: [(&str, &[&str]); 9] = [
    ("engine/src", &[]),
    ("engine/delta/src", &[]),
    ("engine/s3/src", &[]),
    ("engine/alloc/src", &[]),
    ("datagen/src", &[]),
    ("dispatcher/src", &["bin"]),
    ("api/src", &["bin"]),
    ("benches/src", &["bin"]),
    ("src", &[]),
];

/// The crate's modules: `a::b` → its file (the root is `""`).
fn modules(src: &Path, skip: &[&str]) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(src)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if path.is_dir() {
                if !skip.contains(&rel.as_str()) {
                    dirs.push(path);
                }
                continue;
            }
            let Some(stem) = rel.strip_suffix(".rs") else {
                continue;
            };
            let mut parts: Vec<&str> = stem.split('/').collect();
            if parts.last() == Some(&"mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                parts.clear();
            }
            found.insert(parts.join("::"), path);
        }
    }
    found
}

/// The code of a module file without comments and without its test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        out.push_str(line);
        out.push('\n');
    }
    let test_module = out
        .match_indices("#[cfg(test)]")
        .map(|(at, _)| at)
        .find(|&at| {
            out[at..]
                .trim_start_matches("#[cfg(test)]")
                .trim_start()
                .trim_start_matches("pub(crate) ")
                .starts_with("mod tests")
        });
    if let Some(at) = test_module {
        out.truncate(at);
    }
    out
}

/// The paths a `use` tree names, e.g. `a::{b, c::{d, E}}` → `a::b`, `a::c::d`, `a::c::E`.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(prefix, &inner[start..], out);
    } else if let Some((head, rest)) = tree.split_once("::") {
        let mut prefix = prefix.to_vec();
        prefix.push(head.to_string());
        expand(&prefix, rest, out);
    } else if !tree.is_empty() {
        let mut path = prefix.to_vec();
        path.push(tree.split(" as ").next().unwrap().trim().to_string());
        out.push(path);
    }
}

/// The modules `module` (its path split at `::`) imports.
fn imports(module: &[String], code: &str, modules: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let boundary = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        let tail = &rest[at + 4..];
        let end = tail.find(';').unwrap_or(tail.len());
        if boundary {
            let tree: String = tail[..end].split_whitespace().collect::<Vec<_>>().join(" ");
            expand(
                &[],
                &tree.replace(":: ", "::").replace(" ::", "::"),
                &mut paths,
            );
        }
        rest = &tail[end.min(tail.len())..];
    }
    for (at, _) in code.match_indices("crate::") {
        let path: String = code[at..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        // `crate::{a, b}` is a `use` tree, read above.
        let segments: Vec<String> = path.split("::").map(str::to_string).collect();
        if segments.len() > 1 && segments.iter().all(|s| !s.is_empty()) {
            paths.push(segments);
        }
    }
    let mut found = BTreeSet::new();
    for path in paths {
        let absolute: Vec<String> = match path.first().map(String::as_str) {
            Some("crate") => path[1..].to_vec(),
            Some("super") => {
                let mut base = module[..module.len().saturating_sub(1)].to_vec();
                let mut rest = &path[1..];
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend_from_slice(rest);
                base
            }
            Some("self") => [module, &path[1..]].concat(),
            // A child module's path, e.g. `use pipeline::Pipeline;` in `run`.
            Some(head)
                if modules.contains_key(&[module, &[head.to_string()]].concat().join("::")) =>
            {
                [module, &path[..]].concat()
            }
            _ => continue,
        };
        let target = (0..=absolute.len())
            .rev()
            .map(|n| absolute[..n].join("::"))
            .find(|m| modules.contains_key(m))
            .expect("the root module exists");
        if target != module.join("::") {
            found.insert(target);
        }
    }
    found
}

/// A cycle of the graph, if it has one, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// The import graph of the crate rooted at `src`.
fn graph(src: &Path, skip: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(src, skip);
    modules
        .iter()
        .map(|(name, path)| {
            let module: Vec<String> = name
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            (name.clone(), imports(&module, &code(path), &modules))
        })
        .collect()
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cycles = Vec::new();
    for (src, skip) in CRATES {
        let modules = graph(&root.join(src), skip);
        assert!(modules.contains_key(""), "{src}: no crate root found");
        if let Some(found) = cycle(&modules) {
            let shown: Vec<&str> = found
                .iter()
                .map(|m| if m.is_empty() { "<root>" } else { m })
                .collect();
            cycles.push(format!("{src}: {}", shown.join(" → ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_child_that_imports_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("group")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod group;\nmod other;\n").unwrap();
    std::fs::write(
        src.join("group/mod.rs"),
        "mod child;\npub use child::Thing;\npub struct Shared;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("group/child.rs"),
        "// use crate::other; in a comment is not an import\nuse super::Shared;\npub struct Thing;\n\
         #[cfg(test)]\nmod tests {\n    use crate::other::X;\n}\n",
    )
    .unwrap();
    std::fs::write(
        src.join("other.rs"),
        "use crate::{group::{self, Thing as T}};\n",
    )
    .unwrap();
    let tangled = graph(src, &[]);
    assert_eq!(tangled["other"], BTreeSet::from(["group".to_string()]));
    assert_eq!(
        tangled["group::child"],
        BTreeSet::from(["group".to_string()])
    );
    let found = cycle(&tangled).expect("group and group::child import each other");
    assert!(
        found.contains(&"group".to_string()) && found.contains(&"group::child".to_string()),
        "{found:?}"
    );
    // The child importing its sibling instead: no cycle.
    std::fs::write(src.join("group/shared.rs"), "pub struct Shared;\n").unwrap();
    std::fs::write(
        src.join("group/mod.rs"),
        "mod child;\nmod shared;\npub use child::Thing;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("group/child.rs"),
        "use super::shared::Shared;\npub struct Thing;\n",
    )
    .unwrap();
    assert_eq!(cycle(&graph(src, &[])), None);
}
