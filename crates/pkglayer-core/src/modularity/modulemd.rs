//! Reading a repo's module metadata (`modules.yaml`): the `modulemd` v2 documents (one per stream
//! build) and the `modulemd-defaults` v1 documents (default stream and profiles of a module). Other
//! documents (translations, obsoletes, older versions) are skipped: resolution does not need them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_yaml_ng::Value;

/// One build of a module stream, as a `modulemd` document describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleStream {
    /// The module's name (`nodejs`).
    pub name: String,
    /// The stream (`18`).
    pub stream: String,
    /// The build's version: a higher one is a newer build of the same stream and context.
    pub version: u64,
    /// Which build of the stream for a set of dependencies (`rhel9`, `9b8d0c4e`).
    pub context: String,
    /// The build's architecture.
    pub arch: String,
    /// Run-time module dependencies: module name → streams (`-stream` excludes one, none means any).
    /// One map per `dependencies` entry.
    pub requires: Vec<BTreeMap<String, Vec<String>>>,
    /// Profiles: name → the package names it installs.
    pub profiles: BTreeMap<String, Vec<String>>,
    /// The packages the build consists of, as `name-epoch:version-release.arch`.
    pub artifacts: Vec<String>,
    /// Names of artifacts that are not modular any more (`demodularized`): they do not hide the
    /// non-modular packages of their name.
    pub demodularized: Vec<String>,
    /// `static_context: true`: the context names the build's dependencies for good (else libdnf
    /// groups builds by their dependencies, see `modularity`).
    pub static_context: bool,
    /// The id of the repo that carries it.
    pub repo: String,
}

impl ModuleStream {
    /// `name:stream`, how users name a stream.
    pub fn name_stream(&self) -> String {
        format!("{}:{}", self.name, self.stream)
    }
}

/// What a `modulemd-defaults` document says of a module.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleDefaults {
    /// The module's name.
    pub module: String,
    /// The stream used when none is enabled.
    pub stream: Option<String>,
    /// Per stream, the profiles installed when none is named.
    pub profiles: BTreeMap<String, Vec<String>>,
}

/// Everything a module metadata file holds that resolution uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleMetadata {
    /// Every stream build, in document order.
    pub streams: Vec<ModuleStream>,
    /// Defaults, in document order.
    pub defaults: Vec<ModuleDefaults>,
}

impl ModuleMetadata {
    /// Appends what `other` holds.
    pub fn extend(&mut self, other: ModuleMetadata) {
        self.streams.extend(other.streams);
        self.defaults.extend(other.defaults);
    }
}

/// Reads a (possibly compressed) `modules.yaml` of repo `repo` through `cache`, a JSON copy of what
/// it holds (name it after the repomd checksum): YAML is slow to parse (0.1 s for a thousand
/// documents), JSON of the same a tenth of it. A cache that cannot be read is parsed again; one
/// that cannot be written only costs time next run.
pub fn read_cached(path: &Path, repo: &str, cache: &Path) -> Result<ModuleMetadata> {
    if let Some(metadata) = std::fs::read(cache)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    {
        return Ok(metadata);
    }
    let metadata = read_file(path, repo)?;
    let partial = cache.with_extension("partial");
    let written = serde_json::to_vec(&metadata)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&partial, bytes))
        .and_then(|()| std::fs::rename(&partial, cache));
    if let Err(err) = written {
        tracing::debug!("cannot write module cache {}: {err}", cache.display());
        let _ = std::fs::remove_file(&partial);
    }
    Ok(metadata)
}

/// Reads a (possibly compressed) `modules.yaml` of repo `repo`.
pub fn read_file(path: &Path, repo: &str) -> Result<ModuleMetadata> {
    let mut text = String::new();
    crate::repo::filelists::open(path)?
        .read_to_string(&mut text)
        .with_context(|| format!("Reading {}", path.display()))?;
    parse(&text, repo).with_context(|| format!("module metadata {}", path.display()))
}

/// Parses the YAML documents of a module metadata file of repo `repo`.
pub fn parse(text: &str, repo: &str) -> Result<ModuleMetadata> {
    let mut metadata = ModuleMetadata::default();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value: Value = serde::Deserialize::deserialize(document)
            .with_context(|| format!("YAML document {} is malformed", index + 1))?;
        let kind = value.get("document").and_then(scalar);
        let version = value.get("version").and_then(scalar);
        let data = value.get("data");
        let parsed = match (kind.as_deref(), version.as_deref(), data) {
            (Some("modulemd"), Some("2"), Some(data)) => {
                stream(data, repo).map(|s| metadata.streams.push(s))
            }
            (Some("modulemd-defaults"), Some("1"), Some(data)) => {
                defaults(data).map(|d| metadata.defaults.push(d))
            }
            _ => Ok(()),
        };
        parsed.with_context(|| {
            format!(
                "YAML document {} ({})",
                index + 1,
                kind.unwrap_or_else(|| "no kind".into())
            )
        })?;
    }
    Ok(metadata)
}

fn stream(data: &Value, repo: &str) -> Result<ModuleStream> {
    let required = |key: &str| -> Result<String> {
        data.get(key)
            .and_then(scalar)
            .with_context(|| format!("a modulemd document without {key}"))
    };
    let version = required("version")?;
    let requires = match data.get("dependencies") {
        Some(Value::Sequence(entries)) => entries
            .iter()
            .map(|entry| string_lists(entry.get("requires")))
            .collect(),
        _ => Vec::new(),
    };
    let profiles = match data.get("profiles") {
        Some(Value::Mapping(profiles)) => profiles
            .iter()
            .filter_map(|(name, profile)| Some((scalar(name)?, strings(profile.get("rpms")))))
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(ModuleStream {
        name: required("name")?,
        stream: required("stream")?,
        version: version
            .parse()
            .with_context(|| format!("version {version:?} is not a number"))?,
        context: data.get("context").and_then(scalar).unwrap_or_default(),
        arch: data
            .get("arch")
            .and_then(scalar)
            .unwrap_or_else(|| "noarch".into()),
        requires,
        profiles,
        artifacts: strings(data.get("artifacts").and_then(|a| a.get("rpms"))),
        demodularized: strings(data.get("demodularized").and_then(|d| d.get("rpms"))),
        static_context: data.get("static_context").and_then(Value::as_bool) == Some(true),
        repo: repo.to_string(),
    })
}

fn defaults(data: &Value) -> Result<ModuleDefaults> {
    let Some(module) = data.get("module").and_then(scalar) else {
        bail!("a modulemd-defaults document without module");
    };
    Ok(ModuleDefaults {
        module,
        stream: data.get("stream").and_then(scalar),
        profiles: string_lists(data.get("profiles")),
    })
}

/// A YAML scalar as text: streams and versions may be written as numbers (`stream: 18`).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A sequence of scalars; anything else is empty.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        _ => Vec::new(),
    }
}

/// A mapping of scalar keys to sequences of scalars.
fn string_lists(value: Option<&Value>) -> BTreeMap<String, Vec<String>> {
    match value {
        Some(Value::Mapping(map)) => map
            .iter()
            .filter_map(|(key, list)| Some((scalar(key)?, strings(Some(list)))))
            .collect(),
        _ => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULES: &str = r#"
---
document: modulemd
version: 2
data:
  name: nodejs
  stream: 18
  version: 9020020230606103624
  context: rhel9
  arch: x86_64
  summary: Javascript runtime
  dependencies:
  - buildrequires:
      platform: [el9]
    requires:
      platform: [el9]
      perl: []
  profiles:
    common:
      rpms: [nodejs, npm]
    minimal:
      rpms: [nodejs]
  artifacts:
    rpms:
    - nodejs-1:18.14.2-2.module+el9.x86_64
    - nodejs-1:18.14.2-2.module+el9.src
    - npm-1:9.5.0-1.18.14.2.2.module+el9.x86_64
...
---
document: modulemd-defaults
version: 1
data:
  module: nodejs
  stream: "18"
  profiles:
    18: [common]
    20: [common, development]
...
---
document: modulemd-translations
version: 1
data:
  module: nodejs
  stream: 18
  modified: 201812061200
  translations: {}
...
"#;

    #[test]
    fn reads_streams_and_defaults() {
        let metadata = parse(MODULES, "appstream").unwrap();
        assert_eq!(
            metadata.streams,
            vec![ModuleStream {
                name: "nodejs".into(),
                stream: "18".into(),
                version: 9020020230606103624,
                context: "rhel9".into(),
                arch: "x86_64".into(),
                requires: vec![BTreeMap::from([
                    ("perl".into(), vec![]),
                    ("platform".into(), vec!["el9".into()]),
                ])],
                profiles: BTreeMap::from([
                    ("common".into(), vec!["nodejs".into(), "npm".into()]),
                    ("minimal".into(), vec!["nodejs".into()]),
                ]),
                artifacts: vec![
                    "nodejs-1:18.14.2-2.module+el9.x86_64".into(),
                    "nodejs-1:18.14.2-2.module+el9.src".into(),
                    "npm-1:9.5.0-1.18.14.2.2.module+el9.x86_64".into(),
                ],
                demodularized: vec![],
                static_context: false,
                repo: "appstream".into(),
            }]
        );
        assert_eq!(
            metadata.defaults,
            vec![ModuleDefaults {
                module: "nodejs".into(),
                stream: Some("18".into()),
                profiles: BTreeMap::from([
                    ("18".into(), vec!["common".into()]),
                    ("20".into(), vec!["common".into(), "development".into()]),
                ]),
            }]
        );
    }

    #[test]
    fn a_broken_document_is_named() {
        let text = "---\ndocument: modulemd\nversion: 2\ndata:\n  name: x\n  version: 1\n...\n";
        let err = parse(text, "r").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "YAML document 1 (modulemd): a modulemd document without stream"
        );
        let err = parse("---\n: : [\n", "r").unwrap_err();
        assert!(
            format!("{err:#}").starts_with("YAML document 1 is malformed"),
            "{err:#}"
        );
    }

    #[test]
    fn an_empty_file_has_no_modules() {
        assert_eq!(parse("", "r").unwrap(), ModuleMetadata::default());
    }
}
