//! What a host says of modules, as dnf keeps it in `/etc/dnf`: each module's state in
//! `modules.d/NAME.module` and the administrator's defaults in `modules.defaults.d/*.yaml`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::modulemd::{self, ModuleDefaults};

/// A module's state as dnf records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleState {
    /// `state=enabled` with this stream.
    Enabled(String),
    /// `state=disabled`: none of its streams is active, not even the default.
    Disabled,
}

/// The module configuration of a host's `/etc/dnf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostModules {
    /// States by module name; a module without one follows its default stream.
    pub states: BTreeMap<String, ModuleState>,
    /// Defaults that take precedence over the repos'.
    pub defaults: Vec<ModuleDefaults>,
}

impl HostModules {
    /// Reads `modules.d` and `modules.defaults.d` under `dnf_dir` (a deployment's `etc/dnf`); both
    /// may be missing.
    pub fn read(dnf_dir: &Path) -> Result<Self> {
        let mut host = HostModules::default();
        for path in files_with_extension(&dnf_dir.join("modules.d"), "module")? {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("Reading {}", path.display()))?;
            host.states.extend(parse_module_file(&text));
        }
        for path in files_with_extension(&dnf_dir.join("modules.defaults.d"), "yaml")? {
            let metadata = modulemd::read_file(&path, "@System")?;
            host.defaults.extend(metadata.defaults);
        }
        Ok(host)
    }
}

/// The files of `dir` ending in `.extension`, sorted; none when `dir` does not exist.
fn files_with_extension(dir: &Path, extension: &str) -> Result<Vec<std::path::PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("Reading {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("Reading {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == extension) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The states a `NAME.module` file records: one section per module, `stream=` and `state=` (or the
/// older `enabled=`). As in libdnf, `enabled`/`1`/`true` enable, `disabled`/`0`/`false` disable, and
/// anything else (an empty state: "reset") leaves the module to its default.
fn parse_module_file(text: &str) -> BTreeMap<String, ModuleState> {
    let mut states = BTreeMap::new();
    let mut section: Option<(String, BTreeMap<String, String>)> = None;
    let mut finish = |section: Option<(String, BTreeMap<String, String>)>| {
        let Some((name, keys)) = section else { return };
        let name = keys.get("name").cloned().unwrap_or(name);
        let state = keys.get("state").or_else(|| keys.get("enabled"));
        match state.map(String::as_str) {
            Some("enabled" | "1" | "true") => {
                if let Some(stream) = keys.get("stream").filter(|s| !s.is_empty()) {
                    states.insert(name, ModuleState::Enabled(stream.clone()));
                }
            }
            Some("disabled" | "0" | "false") => {
                states.insert(name, ModuleState::Disabled);
            }
            _ => {}
        }
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            finish(section.take());
            section = Some((name.trim().to_string(), BTreeMap::new()));
        } else if let (Some((_, keys)), Some((key, value))) = (&mut section, line.split_once('=')) {
            keys.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    finish(section);
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_states_as_dnf_writes_them() {
        let text = "[nodejs]\nname=nodejs\nstream=18\nprofiles=common\nstate=enabled\n\n\
                    [perl]\nname=perl\nstream=\nprofiles=\nstate=disabled\n\n\
                    [ruby]\nname=ruby\nstream=3.1\nprofiles=\nstate=\n\n\
                    [php]\nstream=8.1\nprofiles=\nenabled=1\n";
        assert_eq!(
            parse_module_file(text),
            BTreeMap::from([
                ("nodejs".into(), ModuleState::Enabled("18".into())),
                ("perl".into(), ModuleState::Disabled),
                ("php".into(), ModuleState::Enabled("8.1".into())),
            ])
        );
    }

    #[test]
    fn reads_a_dnf_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("modules.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("modules.defaults.d")).unwrap();
        std::fs::write(
            dir.path().join("modules.d/nodejs.module"),
            "[nodejs]\nname=nodejs\nstream=20\nprofiles=\nstate=enabled\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("modules.d/notes.txt"),
            "[x]\nstate=enabled\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("modules.defaults.d/ruby.yaml"),
            "---\ndocument: modulemd-defaults\nversion: 1\ndata:\n  module: ruby\n  stream: '3.1'\n...\n",
        )
        .unwrap();
        let host = HostModules::read(dir.path()).unwrap();
        assert_eq!(
            host.states,
            BTreeMap::from([("nodejs".into(), ModuleState::Enabled("20".into()))])
        );
        assert_eq!(host.defaults.len(), 1);
        assert_eq!(host.defaults[0].stream.as_deref(), Some("3.1"));

        assert_eq!(
            HostModules::read(&dir.path().join("absent")).unwrap(),
            HostModules::default()
        );
    }
}
