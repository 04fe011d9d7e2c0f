//! Module metadata for test repos: `modulemd` and `modulemd-defaults` documents, added to a repo's
//! repodata with the real `modifyrepo_c`, as distributions publish them.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::command::run;
use crate::package::TestPackage;

/// One build of a module stream.
#[derive(Debug, Clone)]
pub struct TestModule {
    name: String,
    stream: String,
    version: u64,
    context: String,
    requires: Vec<(String, Vec<String>)>,
    profiles: Vec<(String, Vec<String>)>,
    artifacts: Vec<String>,
}

impl TestModule {
    /// Build `version` of `name:stream`, context `ctx1`, requiring `platform:[el9]`.
    pub fn new(name: &str, stream: &str, version: u64) -> Self {
        TestModule {
            name: name.into(),
            stream: stream.into(),
            version,
            context: "ctx1".into(),
            requires: vec![("platform".into(), vec!["el9".into()])],
            profiles: Vec::new(),
            artifacts: Vec::new(),
        }
    }

    /// Another context.
    pub fn context(mut self, context: &str) -> Self {
        self.context = context.into();
        self
    }

    /// Requires `module` in one of `streams` (none: any stream; `-s` excludes one). Requiring
    /// `platform` replaces the default `el9`.
    pub fn requires(mut self, module: &str, streams: &[&str]) -> Self {
        self.requires.retain(|(name, _)| name != module);
        self.requires.push((
            module.into(),
            streams.iter().map(|s| s.to_string()).collect(),
        ));
        self
    }

    /// A profile installing `packages`.
    pub fn profile(mut self, name: &str, packages: &[&str]) -> Self {
        self.profiles.push((
            name.into(),
            packages.iter().map(|s| s.to_string()).collect(),
        ));
        self
    }

    /// Makes `packages` artifacts of the build.
    pub fn artifacts(mut self, packages: &[&TestPackage]) -> Self {
        self.artifacts.extend(packages.iter().map(|p| {
            let evr = p.evr();
            let evr = if evr.contains(':') {
                evr
            } else {
                format!("0:{evr}")
            };
            format!("{}-{evr}.{}", p.name, p.arch)
        }));
        self
    }

    fn yaml(&self) -> String {
        let mut yaml = format!(
            "---\ndocument: modulemd\nversion: 2\ndata:\n  name: {}\n  stream: \"{}\"\n  version: {}\n  context: {}\n  arch: {}\n  summary: {} module\n  description: test\n  license:\n    module: [MIT]\n",
            self.name,
            self.stream,
            self.version,
            self.context,
            crate::host_arch(),
            self.name
        );
        yaml.push_str(
            "  dependencies:\n  - buildrequires:\n      platform: [el9]\n    requires:\n",
        );
        for (module, streams) in &self.requires {
            let _ = writeln!(yaml, "      {module}: [{}]", streams.join(", "));
        }
        if !self.profiles.is_empty() {
            yaml.push_str("  profiles:\n");
            for (name, packages) in &self.profiles {
                let _ = writeln!(yaml, "    {name}:\n      rpms: [{}]", packages.join(", "));
            }
        }
        yaml.push_str("  artifacts:\n    rpms:\n");
        for artifact in &self.artifacts {
            let _ = writeln!(yaml, "    - {artifact}");
        }
        yaml.push_str("...\n");
        yaml
    }
}

/// A `modulemd-defaults` document: `module`'s default stream and, per stream, default profiles.
pub fn module_defaults(module: &str, stream: Option<&str>, profiles: &[(&str, &[&str])]) -> String {
    let mut yaml =
        format!("---\ndocument: modulemd-defaults\nversion: 1\ndata:\n  module: {module}\n");
    if let Some(stream) = stream {
        let _ = writeln!(yaml, "  stream: \"{stream}\"");
    }
    if !profiles.is_empty() {
        yaml.push_str("  profiles:\n");
        for (stream, names) in profiles {
            let _ = writeln!(yaml, "    \"{stream}\": [{}]", names.join(", "));
        }
    }
    yaml.push_str("...\n");
    yaml
}

/// Adds `modules` and `defaults` (documents from [`module_defaults`]) to the repodata of the repo
/// in `dir` (made with [`crate::create_repo`]) as its `modules` metadata.
pub fn add_modules(dir: &Path, modules: &[TestModule], defaults: &[String]) -> Result<()> {
    let mut yaml = String::new();
    for module in modules {
        yaml.push_str(&module.yaml());
    }
    for document in defaults {
        yaml.push_str(document);
    }
    let staging = tempfile::tempdir()?;
    let file = staging.path().join("modules.yaml");
    std::fs::write(&file, yaml)?;
    run(Command::new("modifyrepo_c")
        .arg("--mdtype=modules")
        .arg(&file)
        .arg(dir.join("repodata")))?;
    Ok(())
}
