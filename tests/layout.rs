//! The architecture, checked: module layers without cycles (the order drawn in `src/lib.rs`),
//! and file sizes. Reads the source text; builds nothing.
//!
//! A module may use its own descendants and modules of a lower layer, never a module of its
//! own or a higher layer. `crate::…` paths are what is checked (every cross-module use in
//! `src/` is written that way; `super::` stays within a module).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first; keep in step with the drawing in `src/lib.rs`.
const LAYERS: &[&[&str]] = &[
    &["config"],
    &["backoff", "batch", "shutdown", "telemetry"],
    &["cloudevents"],
    &["http"],
    &["aws"],
    &["sources", "targets"],
    &["manifest"],
    &["app", "provisioning", "display"],
];

/// Longest file in `src/` without a reason in its module doc.
const SRC_LIMIT: usize = 600;
/// Longest test (or test-support) file without a reason in its module doc.
const TEST_LIMIT: usize = 900;
/// The word that gives the reason, in a `//!` line of a longer file ("… because …").
const REASON: &str = "because";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// `src/targets/sqs/mod.rs` → `targets`; `src/app.rs` → `app`.
fn top_module(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap();
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// Every `crate::<module>` a file's code names (comments left out), with its line number:
/// `crate::a::x`, and each first segment of a group, `use crate::{a::x, b::{y, z}}`, even one
/// that spans lines.
fn crate_references(text: &str) -> Vec<(usize, String)> {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let line_at = |offset: usize| code[..offset].matches('\n').count() + 1;
    let ident = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        from = start + "crate::".len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `other_crate::`
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's top-level entries: split on commas outside nested braces.
            let mut depth = 0;
            let mut entry_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        let module = ident(group[entry_start..i].trim());
                        if !module.is_empty() {
                            found.push((line_at(from + 1 + entry_start), module));
                        }
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        let module = ident(group[entry_start..i].trim());
                        if !module.is_empty() {
                            found.push((line_at(from + 1 + entry_start), module));
                        }
                        entry_start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            let module = ident(rest);
            if !module.is_empty() {
                found.push((line_at(start), module));
            }
        }
    }
    found
}

#[test]
fn every_module_of_src_has_a_layer() {
    let src = root().join("src");
    let mut modules: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| top_module(&src, &e.unwrap().path()))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    modules.sort();
    let unplaced: Vec<_> = modules.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "modules missing from LAYERS (and from the drawing in src/lib.rs): {unplaced:?}"
    );
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for module in &modules {
        assert!(
            lib.lines()
                .any(|l| l.starts_with("//!") && l.contains(module.as_str())),
            "src/lib.rs's drawing does not name {module}"
        );
    }
}

#[test]
fn modules_use_only_lower_layers() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = BTreeMap::new();
    for file in &files {
        let own = top_module(&src, file);
        let Some(own_layer) = layer_of(&own) else {
            continue; // lib.rs and main.rs: above everything
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, used) in crate_references(&text) {
            if used == own {
                continue;
            }
            let allowed = layer_of(&used).is_some_and(|layer| layer < own_layer);
            if !allowed {
                violations
                    .entry(format!(
                        "{}:{line}",
                        file.strip_prefix(root()).unwrap().display()
                    ))
                    .or_insert(format!("{own} uses crate::{used}"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "uses against the layer order of src/lib.rs:\n{}",
        violations
            .iter()
            .map(|(at, what)| format!("  {at}: {what}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_config_leaf_imports_nothing_above_it() {
    // The rule above covers it; this names the issue's own list so a change to LAYERS that
    // lifted config would still fail here.
    let src = root().join("src").join("config");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, used) in crate_references(&text) {
            assert_eq!(
                used,
                "config",
                "{}:{line} uses crate::{used}",
                file.display()
            );
        }
    }
}

#[test]
fn the_reference_scanner_sees_single_grouped_and_inline_paths() {
    let text = "use crate::config::decode::Obj;\n\
                use crate::{aws::arn, http::{sink, tls}};\n\
                use crate::{\n    cloudevents::Encoding,\n    shutdown,\n};\n\
                let x = crate::telemetry::Component::of(k, m); // crate::app in a comment\n";
    let found: Vec<String> = crate_references(text).into_iter().map(|(_, m)| m).collect();
    assert!(found.contains(&"config".to_string()), "{found:?}");
    assert!(found.contains(&"aws".to_string()), "{found:?}");
    assert!(found.contains(&"http".to_string()), "{found:?}");
    assert!(found.contains(&"telemetry".to_string()), "{found:?}");
    assert!(found.contains(&"cloudevents".to_string()), "{found:?}");
    assert!(found.contains(&"shutdown".to_string()), "{found:?}");
    assert!(!found.contains(&"app".to_string()), "{found:?}");
    assert!(!found.contains(&"tls".to_string()), "{found:?}");
}

fn oversized(dirs: &[&str], limit: usize) -> Vec<String> {
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root().join(dir), &mut files);
    }
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = text.lines().count();
        let explained = text
            .lines()
            .take_while(|l| l.starts_with("//!") || l.starts_with("#!") || l.trim().is_empty())
            .any(|l| l.starts_with("//!") && l.contains(REASON));
        if lines > limit && !explained {
            found.push(format!(
                "{} ({lines} lines)",
                file.strip_prefix(root()).unwrap().display()
            ));
        }
    }
    found.sort();
    found
}

#[test]
fn no_source_file_is_long_without_a_reason() {
    let found = oversized(&["src"], SRC_LIMIT);
    assert!(
        found.is_empty(),
        "over {SRC_LIMIT} lines with no \"{REASON}\" sentence in the module doc: {found:?}"
    );
}

#[test]
fn no_test_file_is_long_without_a_reason() {
    let found = oversized(&["tests", "examples", "benches"], TEST_LIMIT);
    assert!(
        found.is_empty(),
        "over {TEST_LIMIT} lines with no \"{REASON}\" sentence in the module doc: {found:?}"
    );
}
