//! The README and the pages of `docs/` tell the truth about the tree: their Rust snippets are
//! compiled example code, their WIT snippets are the shipped WIT (or a world of the reader's
//! own that resolves against it), every relative link leads to a file and heading that exist,
//! and the Layout table lists exactly what is there.

use host_test::workspace;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The page that holds the Layout table.
const LAYOUT_PAGE: &str = "docs/testing.md";

/// The documentation: `README.md` and every `docs/*.md`, as (path relative to the workspace,
/// text).
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(workspace().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok())
        .map(|e| PathBuf::from("docs").join(e.file_name()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(workspace().join(&p))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, text)
        })
        .collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
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

/// `markdown` without its fenced blocks (any language): what a reader sees as prose.
fn prose(markdown: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every ```rust block stands verbatim (blank lines aside) in a file the test command
/// compiles: an example of host-test (built by `cargo test`) or the example component.
#[test]
fn rust_snippets_are_compiled_code() {
    let sources: Vec<(&str, String)> = [
        "host-test/examples/embedder.rs",
        "examples/list-users/src/lib.rs",
    ]
    .into_iter()
    .map(|p| (p, read(p)))
    .collect();
    let mut checked = 0;
    for (page, text) in pages() {
        for snippet in blocks(&text, "rust") {
            let lines: Vec<&str> = snippet.lines().filter(|l| !l.trim().is_empty()).collect();
            assert!(!lines.is_empty(), "{}: an empty rust block", page.display());
            let found = sources.iter().any(|(_, text)| {
                let source: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                source.windows(lines.len()).any(|w| w == lines.as_slice())
            });
            assert!(
                found,
                "{}: snippet not found verbatim in {:?}:\n{snippet}",
                page.display(),
                sources.iter().map(|(p, _)| p).collect::<Vec<_>>()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "the README and docs show Rust code ({checked} blocks)"
    );
}

/// The WIT a ```wit block may quote: the package the components export, the middleware's
/// world and the examples' worlds.
const WIT_SOURCES: &[&str] = &[
    "wit/auth.wit",
    "components/middleware/wit/world.wit",
    "examples/list-users/wit/world.wit",
    "examples/users-service/wit/world.wit",
    "examples/users-p3/wit/world.wit",
];

/// The worlds of [`WIT_SOURCES`]: a block that declares one of these is quoting it, not
/// showing a world of the reader's own.
fn shipped_worlds() -> BTreeSet<String> {
    WIT_SOURCES
        .iter()
        .flat_map(|p| {
            read(p)
                .lines()
                .filter_map(|l| l.trim().strip_prefix("world "))
                .filter_map(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The lines of a WIT block that must match the source: all but blank lines and plain `//`
/// comments (the page's own remarks; `///` doc comments are WIT and must match).
fn wit_lines(block: &str) -> Vec<&str> {
    block
        .lines()
        .map(str::trim)
        .filter(|l| {
            let remark = l.starts_with("//") && !l.starts_with("///");
            !l.is_empty() && !remark
        })
        .collect()
}

/// Whether `lines` appear, in this order (not necessarily adjacent), among the trimmed lines
/// of `source`.
fn in_order(lines: &[&str], source: &str) -> bool {
    let mut source = source.lines().map(str::trim);
    lines.iter().all(|line| source.any(|s| s == *line))
}

/// A block that is a world of the reader's own (`world my-service { import ...; }`), parsed by
/// wit-parser into a `Resolve` that holds the shipped `mangopay:auth` package, so that every
/// package, interface and version it names must exist there. Returns why not, if not.
fn resolves_as_own_world(block: &str) -> Result<(), String> {
    let world = wit_lines(block)
        .iter()
        .find_map(|l| l.strip_prefix("world "))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or("it declares no world")?
        .to_owned();
    if shipped_worlds().contains(&world) {
        return Err(format!(
            "it declares world `{world}`, a shipped world, but is not its text"
        ));
    }
    let mut resolve = wit_parser::Resolve::default();
    resolve
        .push_file(workspace().join("wit/auth.wit"))
        .map_err(|e| format!("wit/auth.wit: {e:#}"))?;
    let text = if wit_lines(block).iter().any(|l| l.starts_with("package ")) {
        block.to_owned()
    } else {
        format!("package docs:snippet;\n{block}")
    };
    resolve
        .push_str("snippet.wit", &text)
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

/// Every ```wit block is either the shipped WIT, quoted: each line (blank lines and `//`
/// remarks aside, whitespace trimmed) found, in order, in one of [`WIT_SOURCES`]; or a world of
/// the reader's own, not named like a shipped one, that wit-parser resolves against
/// `wit/auth.wit`.
#[test]
fn wit_snippets_are_the_shipped_wit_or_resolve_against_it() {
    let sources: Vec<(&str, String)> = WIT_SOURCES.iter().map(|p| (*p, read(p))).collect();
    let mut checked = 0;
    for (page, text) in pages() {
        for block in blocks(&text, "wit") {
            let lines = wit_lines(&block);
            assert!(!lines.is_empty(), "{}: an empty wit block", page.display());
            let quoted = sources.iter().any(|(_, source)| in_order(&lines, source));
            if !quoted && let Err(why) = resolves_as_own_world(&block) {
                panic!(
                    "{}: this wit block is neither lines of {WIT_SOURCES:?} in order nor a \
                     world of your own that resolves against wit/auth.wit ({why}):\n{block}",
                    page.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "the README and docs show WIT ({checked} blocks)"
    );
}

/// The check itself can fail: a misspelt interface, a wrong version and an invented
/// function are caught.
#[test]
fn the_wit_check_refuses_what_is_not_there() {
    let auth = read("wit/auth.wit");
    assert!(
        resolves_as_own_world("world my-service {\n    import mangopay:auth/auth@0.3.0;\n}")
            .is_ok()
    );
    for wrong in [
        "world my-service {\n    import mangopay:auth/auth@0.1.0;\n}",
        "world my-service {\n    import mangopay:auth/authz@0.3.0;\n}",
        "world standalone {\n    import mangopay:auth/auth@0.3.0;\n}",
    ] {
        assert!(resolves_as_own_world(wrong).is_err(), "accepted:\n{wrong}");
    }
    let invented = "resource client {\n    refresh: func() -> result<token, error>;\n}";
    assert!(!in_order(&wit_lines(invented), &auth));
    let reordered = "base-url: func() -> string;\ncreate: static func(config: config) -> result<client, error>;";
    assert!(!in_order(&wit_lines(reordered), &auth));
}

/// GitHub's anchor for a heading: lower case, backticks and punctuation other than `-` and
/// `_` dropped, spaces turned into `-`; a repeated heading gets `-1`, `-2`, ...
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings (`#` lines outside fenced blocks).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(markdown).lines() {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// The targets of the inline links `[text](target)` in a page's prose, code spans removed.
fn link_targets(markdown: &str) -> Vec<String> {
    // Code spans may show link syntax without being links.
    let text: String = prose(markdown)
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join("");
    let mut targets = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        targets.push(rest[..end].trim().to_owned());
        rest = &rest[end..];
    }
    targets
}

/// Every relative link of the README and `docs/` resolves: its file (relative to the page)
/// exists, and its `#anchor`, if any, is a heading of the page it points to.
#[test]
fn every_relative_link_resolves() {
    let pages = pages();
    let mut checked = 0;
    for (page, text) in &pages {
        let dir = page.parent().unwrap_or(Path::new(""));
        for target in link_targets(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                page.clone()
            } else {
                dir.join(path)
            };
            let on_disk = workspace().join(&file);
            assert!(
                on_disk.exists(),
                "{}: the link ({target}) leads to {}, which does not exist",
                page.display(),
                file.display()
            );
            if let Some(anchor) = anchor {
                assert!(
                    on_disk.extension().is_some_and(|x| x == "md"),
                    "{}: the link ({target}) has an anchor into a file that is not Markdown",
                    page.display()
                );
                let headings = anchors(&std::fs::read_to_string(&on_disk).expect("read"));
                assert!(
                    headings.contains(anchor),
                    "{}: the link ({target}) names #{anchor}, not a heading of {}; its \
                     headings: {headings:?}",
                    page.display(),
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 50,
        "the pages link to each other and the code ({checked} links)"
    );
}

/// The README is a map: short, and it links to every page of `docs/`.
#[test]
fn the_readme_is_a_map_to_every_page() {
    let pages = pages();
    let (_, readme) = &pages[0];
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines: the reference goes to docs/"
    );
    let linked = link_targets(readme);
    for (page, _) in &pages[1..] {
        let target = page.to_string_lossy().replace('\\', "/");
        assert!(
            linked
                .iter()
                .any(|l| l.split('#').next() == Some(target.as_str())),
            "README.md does not link to {target}"
        );
    }
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Building the `.wasm` yourself"),
        "building-the-wasm-yourself"
    );
    assert_eq!(
        slug("`send`: the API call end to end"),
        "send-the-api-call-end-to-end"
    );
    assert_eq!(
        slug("7. Renewal stall: a renewal under load"),
        "7-renewal-stall-a-renewal-under-load"
    );
    assert_eq!(
        slug("From a Rust embedder (wasmtime)"),
        "from-a-rust-embedder-wasmtime"
    );
    let twice = anchors("# A\n```sh\n# not a heading\n```\n## A\n");
    assert_eq!(twice, BTreeSet::from(["a".to_owned(), "a-1".to_owned()]));
}

/// The paths in the first column of the Layout table.
fn layout_paths() -> BTreeSet<String> {
    let page = read(LAYOUT_PAGE);
    let section = page
        .split("\n## Layout")
        .nth(1)
        .unwrap_or_else(|| panic!("{LAYOUT_PAGE} has a Layout section"))
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
            "the Layout table ({LAYOUT_PAGE}) lists {path}, which does not exist"
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
            "the Layout table ({LAYOUT_PAGE}) does not list {path}"
        );
    }
}
