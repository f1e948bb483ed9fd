//! The README tells the truth about the tree: its Rust snippets are compiled example code, and
//! its Layout table lists exactly what is there.

use host_test::workspace;
use std::collections::BTreeSet;
use std::path::Path;

fn readme() -> String {
    std::fs::read_to_string(workspace().join("README.md")).expect("README.md")
}

/// The fenced blocks of `lang` in `markdown`.
fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start() == fence => current = Some(Vec::new()),
            Some(lines) if line.trim_start() == "```" => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    blocks
}

/// Every ```rust block of the README stands verbatim in a file the test command compiles:
/// an example of host-test (built by `cargo test`) or the example component.
#[test]
fn readme_rust_snippets_are_compiled_code() {
    let sources: Vec<(String, String)> = [
        "host-test/examples/embedder.rs",
        "examples/list-users/src/lib.rs",
    ]
    .iter()
    .map(|p| {
        let text = std::fs::read_to_string(workspace().join(p)).expect(p);
        (p.to_string(), text)
    })
    .collect();
    let snippets = blocks(&readme(), "rust");
    assert!(!snippets.is_empty(), "the README shows Rust code");
    for snippet in snippets {
        let lines: Vec<&str> = snippet.lines().filter(|l| !l.trim().is_empty()).collect();
        let found = sources.iter().any(|(_, text)| {
            let source: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            source.windows(lines.len()).any(|w| w == lines.as_slice())
        });
        assert!(
            found,
            "README snippet not found verbatim in {:?}:\n{snippet}",
            sources.iter().map(|(p, _)| p).collect::<Vec<_>>()
        );
    }
}

/// The paths in the first column of the README's Layout table.
fn layout_paths() -> BTreeSet<String> {
    let readme = readme();
    let section = readme
        .split("\n## Layout")
        .nth(1)
        .expect("a Layout section")
        .split("\n## ")
        .next()
        .unwrap_or_default()
        .to_owned();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let cell = l.split('|').nth(1).unwrap_or_default().to_owned();
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn entries(dir: &str, files: bool) -> Vec<String> {
    let root = workspace().join(dir);
    std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.path().is_dir();
            let skip = name.starts_with('.') || name == "target" || name == "node_modules";
            (!skip && (is_dir || files)).then(|| {
                let path = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                if is_dir { format!("{path}/") } else { path }
            })
        })
        .collect()
}

/// One row per thing: every top-level entry, every core module, every component crate, every
/// harness module and the xtask modules, and nothing that is not there.
#[test]
fn the_layout_table_matches_the_tree() {
    let listed = layout_paths();
    for path in &listed {
        assert!(
            Path::new(&workspace().join(path)).exists(),
            "the Layout table lists {path}, which does not exist"
        );
    }
    let mut expected: Vec<String> = entries("", true);
    for dir in [
        "src",
        "components",
        "host-test/src",
        "host-test/tests/all",
        "xtask/src",
    ] {
        expected.extend(entries(dir, true));
    }
    // A core module's sibling test folder (`src/client/tests.rs`) goes with its module.
    expected.retain(|p| !(p.starts_with("src/") && p.ends_with('/')));
    for path in expected {
        assert!(
            listed.contains(&path),
            "the Layout table does not list {path}"
        );
    }
}
