//! Registry metadata: what `wkg publish` reads (name, version, description, licenses, source,
//! ...) written into a component's custom sections, as `wasm-tools metadata add` would. The
//! name and version come from the WIT package declaration in `wit/auth.wit`, the rest from
//! `[metadata]` in `wkg.toml`.

use crate::workspace;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wasm_metadata::{
    AddMetadata, AddMetadataField, Authors, Description, Homepage, Licenses, Payload, Revision,
    Source, Version,
};

/// What goes into the component.
#[derive(Clone, Debug, PartialEq)]
pub struct PackageMetadata {
    /// `mangopay:auth`
    pub name: String,
    /// `0.1.0`
    pub version: String,
    pub description: String,
    pub license: String,
    pub authors: Option<String>,
    pub homepage: Option<String>,
    /// The source repository URL: required to publish, optional in `target/dist/`.
    pub source: Option<String>,
    /// The commit the component was built from, when known.
    pub revision: Option<String>,
}

/// `package mangopay:auth@0.1.0;` → (`mangopay:auth`, `0.1.0`).
pub fn wit_package(wit: &str) -> Result<(String, String), String> {
    let declaration = wit
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("package "))
        .ok_or("no `package` declaration")?;
    let id = declaration.trim_end_matches(';').trim();
    let (name, version) = id
        .split_once('@')
        .ok_or_else(|| format!("`package {id}` has no version"))?;
    Ok((name.to_owned(), version.to_owned()))
}

/// Reads `wkg.toml` and `wit/auth.wit` of the workspace. `source` (a URL) replaces or supplies
/// `[metadata] repository`.
pub fn workspace_metadata(
    source: Option<&str>,
    revision: Option<&str>,
) -> Result<PackageMetadata, String> {
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let (name, version) = wit_package(&read(workspace().join("wit/auth.wit"))?)?;
    let manifest: toml_edit::Document<String> = read(workspace().join("wkg.toml"))?
        .parse()
        .map_err(|e| format!("wkg.toml: {e}"))?;
    let field = |key: &str| {
        manifest
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let required = |key: &str| field(key).ok_or_else(|| format!("wkg.toml: no [metadata] {key}"));
    let source = source
        .map(str::to_owned)
        .or_else(|| field("repository").or_else(|| field("source")));
    Ok(PackageMetadata {
        name,
        version,
        description: required("description")?,
        license: field("license")
            .or_else(|| field("licenses"))
            .ok_or("wkg.toml: no [metadata] license")?,
        authors: field("authors").or_else(|| field("author")),
        homepage: field("homepage"),
        source,
        revision: revision.map(str::to_owned),
    })
}

/// `wasm` with `metadata` in its custom sections (existing producers kept).
pub fn add_metadata(wasm: &[u8], metadata: &PackageMetadata) -> Result<Vec<u8>, String> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let mut add = AddMetadata::default();
    add.name = AddMetadataField::Set(metadata.name.clone());
    add.version = AddMetadataField::Set(Version::new(metadata.version.clone()));
    add.description = AddMetadataField::Set(Description::new(metadata.description.clone()));
    add.licenses = AddMetadataField::Set(
        Licenses::new(&metadata.license).map_err(|e| invalid("license", &e))?,
    );
    if let Some(source) = &metadata.source {
        add.source = AddMetadataField::Set(Source::new(source).map_err(|e| invalid("source", &e))?);
    }
    if let Some(authors) = &metadata.authors {
        add.authors = AddMetadataField::Set(Authors::new(authors.clone()));
    }
    if let Some(homepage) = &metadata.homepage {
        add.homepage =
            AddMetadataField::Set(Homepage::new(homepage).map_err(|e| invalid("homepage", &e))?);
    }
    if let Some(revision) = &metadata.revision {
        add.revision = AddMetadataField::Set(Revision::new(revision.clone()));
    }
    add.to_wasm(wasm).map_err(|e| format!("{e:#}"))
}

/// The registry metadata a component carries (what `wkg publish` reads), by field name:
/// `name`, `version`, `description`, `licenses`, `source`, `authors`, `homepage`, `revision`.
pub fn read_metadata(wasm: &[u8]) -> Result<BTreeMap<&'static str, String>, String> {
    let payload = Payload::from_binary(wasm).map_err(|e| format!("{e:#}"))?;
    let m = payload.metadata();
    let text = |v: Option<&dyn std::fmt::Display>| v.map(|v| v.to_string());
    Ok([
        ("name", m.name.clone()),
        ("version", text(m.version.as_ref().map(|v| v as _))),
        ("description", text(m.description.as_ref().map(|v| v as _))),
        ("licenses", text(m.licenses.as_ref().map(|v| v as _))),
        ("source", text(m.source.as_ref().map(|v| v as _))),
        ("authors", text(m.authors.as_ref().map(|v| v as _))),
        ("homepage", text(m.homepage.as_ref().map(|v| v as _))),
        ("revision", text(m.revision.as_ref().map(|v| v as _))),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect())
}

/// `target/package/<name>@<version>.wasm` with `:` as `-`, e.g. `mangopay-auth@0.1.0.wasm`
/// (in cargo's target directory, created).
pub fn package_path(metadata: &PackageMetadata) -> Result<PathBuf, String> {
    let file = format!(
        "{}@{}.wasm",
        metadata.name.replace(':', "-"),
        metadata.version
    );
    Ok(crate::target_dir("package")?.join(file))
}

/// Writes the release component `wasm` with `metadata` to `package_path`. Refused without a
/// source URL: a published package must say where its code is.
pub fn write_package(wasm: &Path, metadata: &PackageMetadata) -> Result<PathBuf, String> {
    require_source(metadata)?;
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let packaged = add_metadata(&bytes, metadata)?;
    let path = package_path(metadata)?;
    std::fs::write(&path, packaged).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The source URL a published package must carry.
pub fn require_source(metadata: &PackageMetadata) -> Result<&str, String> {
    metadata.source.as_deref().ok_or_else(|| {
        "no source URL: set [metadata] repository in wkg.toml or pass --source <URL> \
         (a published package says where its code is)"
            .to_owned()
    })
}

/// The OCI manifest annotations `wkg publish` derives from the metadata, for
/// `wkg oci push --annotation` (which sets none by itself).
pub fn oci_annotations(metadata: &PackageMetadata) -> Vec<(&'static str, String)> {
    let mut annotations = vec![
        ("org.opencontainers.image.version", metadata.version.clone()),
        (
            "org.opencontainers.image.description",
            metadata.description.clone(),
        ),
        (
            "org.opencontainers.image.licenses",
            metadata.license.clone(),
        ),
    ];
    if let Some(source) = &metadata.source {
        annotations.push(("org.opencontainers.image.source", source.clone()));
    }
    if let Some(authors) = &metadata.authors {
        annotations.push(("org.opencontainers.image.authors", authors.clone()));
    }
    if let Some(homepage) = &metadata.homepage {
        annotations.push(("org.opencontainers.image.url", homepage.clone()));
    }
    if let Some(revision) = &metadata.revision {
        annotations.push(("org.opencontainers.image.revision", revision.clone()));
    }
    annotations
}
