//! Source scanning for the architecture test: the module graph of a crate (to find
//! import circles) and the public items of a crate (to find storage types leaking
//! through its API). A small hand-written scanner rather than a full Rust parser:
//! it only has to see `use`/path references and item signatures, after comments
//! are removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The text without `//` and `/* */` comments (string, raw string and char
/// literals kept whole, so a `//` inside them is left alone).
pub fn strip_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    // Index just past the closing quote of a literal opening at `i`, if one does.
    let literal_end = |i: usize| -> Option<usize> {
        let find = |from: usize, pat: &[u8]| {
            b[from.min(b.len())..]
                .windows(pat.len())
                .position(|w| w == pat)
                .map(|p| from + p + pat.len())
        };
        match b[i] {
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                Some((j + 1).min(b.len()))
            }
            b'r' if b.get(i + 1) == Some(&b'"') => find(i + 2, b"\""),
            b'r' if b.get(i + 1) == Some(&b'#') => {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let mut close = vec![b'"'];
                close.extend(std::iter::repeat_n(b'#', hashes));
                find(i + 1 + hashes + 1, &close)
            }
            // 'x' or '\x' / '\u{..}'; anything else is a lifetime.
            b'\'' if b.get(i + 1) == Some(&b'\\') => find(i + 3, b"'"),
            b'\'' if b.get(i + 2) == Some(&b'\'') => Some(i + 3),
            _ => None,
        }
    };
    while i < b.len() {
        let prev_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push(b'\n');
                    }
                    i += 1;
                }
            }
        } else if let Some(end) = (b[i] != b'r' || !prev_ident)
            .then(|| literal_end(i))
            .flatten()
        {
            out.extend_from_slice(&b[i..end]);
            i = end;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The text before a trailing `#[cfg(test)] mod …` (unit tests refer to their
/// parent with `super::`, which is not an import between modules).
fn without_test_module(text: &str) -> &str {
    let mut from = 0;
    while let Some(at) = text[from..].find("#[cfg(test)]") {
        let at = from + at;
        if text[at + 12..].trim_start().starts_with("mod ") {
            return &text[..at];
        }
        from = at + 12;
    }
    text
}

/// The module path of a source file relative to its crate's `src` directory
/// (`lib.rs`/`main.rs` → "", `a/mod.rs` → "a", `a/b.rs` → "a::b").
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

fn parent(module: &str) -> &str {
    module.rsplit_once("::").map_or("", |(p, _)| p)
}

/// Identifiers joined by `::` that follow `prefix` in `text` (`crate::a::b::C`
/// after "crate::" gives `["a", "b", "C"]`).
fn paths_after<'a>(text: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(prefix) {
        let start = from + at;
        from = start + prefix.len();
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // part of a longer name or path
        }
        let rest = &text[from..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
        if !path.is_empty() {
            out.push(path);
        }
    }
    out
}

/// The module dependency graph of one crate: module → modules it refers to by a
/// `crate::…` or `super::…` path. References to a module's own ancestors are left
/// out (a child naming its parent's re-exports is containment, not a peer import).
pub fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<(String, String)> = rust_files(src)
        .into_iter()
        .map(|f| {
            let text = strip_comments(&std::fs::read_to_string(&f).unwrap());
            (module_of(src, &f), without_test_module(&text).to_string())
        })
        .collect();
    let modules: BTreeSet<&str> = files.iter().map(|(m, _)| m.as_str()).collect();
    let mut graph = BTreeMap::new();
    for (m, text) in &files {
        let mut edges = BTreeSet::new();
        let mut refer = |path: Vec<String>| {
            // The longest prefix of the path that names a module.
            for len in (1..=path.len()).rev() {
                let cand = path[..len].join("::");
                if modules.contains(cand.as_str()) {
                    let ancestor = m.starts_with(&format!("{cand}::"));
                    if cand != *m && !ancestor {
                        edges.insert(cand);
                    }
                    break;
                }
            }
        };
        for p in paths_after(text, "crate::") {
            refer(p.iter().map(|s| s.to_string()).collect());
        }
        for p in paths_after(text, "super::") {
            let base = parent(m);
            let mut full: Vec<String> = if base.is_empty() {
                Vec::new()
            } else {
                base.split("::").map(str::to_string).collect()
            };
            full.extend(p.iter().map(|s| s.to_string()));
            refer(full);
        }
        graph.insert(m.clone(), edges);
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan).
pub fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            let graph = self.graph;
            for w in graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.found.push(comp);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// Names a file brings in from crate `krate` with `use krate::…` (the last segment
/// of each imported path, or its `as` alias), plus the crate's own name.
fn imported_names(text: &str, krate: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::from([krate.to_string()]);
    let mut from = 0;
    let head = format!("use {krate}");
    while let Some(at) = text[from..].find(&head) {
        let start = from + at + head.len();
        let end = start + text[start..].find(';').unwrap_or(text.len() - start);
        from = end;
        let body = &text[start..end];
        for part in body.split([',', '{', '}']) {
            let part = part.trim();
            let name = match part.split_once(" as ") {
                Some((_, alias)) => alias.trim(),
                None => part.rsplit("::").next().unwrap_or("").trim(),
            };
            if !name.is_empty() && name != "self" && name != "*" {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The signatures of a file's public items (`pub` but not `pub(crate)` or
/// `pub(super)`), each from `pub` to the `{` or `;` that ends it, however many
/// lines it spans; for `pub enum` and `pub trait` the whole body (variants and
/// methods are public too). Returns (line number, signature).
pub fn public_signatures(text: &str) -> Vec<(usize, String)> {
    let text = strip_comments(text);
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("pub") {
        let start = from + at;
        from = start + 3;
        let before = text[..start].chars().next_back();
        let after = text[start + 3..].chars().next();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            || !after.is_some_and(char::is_whitespace)
        {
            continue; // `pub(crate)`, or part of another word
        }
        let whole_body = {
            let rest = text[start + 3..].trim_start();
            rest.starts_with("enum ") || rest.starts_with("trait ")
        };
        let mut depth = 0i32;
        let mut end = start;
        for (i, &c) in b.iter().enumerate().skip(start) {
            match c {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b'{' if depth == 0 && !whole_body => {
                    end = i;
                    break;
                }
                b'{' => depth += 1,
                b'}' if whole_body && depth == 1 => {
                    end = i;
                    break;
                }
                b'}' => {
                    depth -= 1;
                    if depth < 0 {
                        end = i; // the end of the struct a `pub` field sits in
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = i;
                    break;
                }
                b',' if depth == 0 && !whole_body => {
                    end = i; // a `pub` field of a struct
                    break;
                }
                _ => {}
            }
            end = i;
        }
        let line = text[..start].matches('\n').count() + 1;
        out.push((line, text[start..=end.min(b.len() - 1)].to_string()));
        from = from.max(end);
    }
    out
}

/// Public signatures in `text` that name crate `krate` or anything imported from it,
/// as (line, signature).
pub fn public_items_naming(text: &str, krate: &str) -> Vec<(usize, String)> {
    let names = imported_names(&strip_comments(text), krate);
    public_signatures(text)
        .into_iter()
        .filter(|(_, sig)| {
            sig.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| names.contains(word))
        })
        .collect()
}
