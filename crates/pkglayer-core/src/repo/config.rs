//! `*.repo` files, the yum/dnf INI format, as found in a deployment's `/etc/yum.repos.d`.
//!
//! ```text
//! [fedora]
//! name=Fedora $releasever - $basearch
//! metalink=https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever&arch=$basearch
//! enabled=1
//! gpgcheck=1
//! gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch
//! ```
//!
//! Parsing is separate from I/O: [`parse_repo_file`] takes the text and the file name to put in error
//! messages; [`load_repos_dir`] reads a directory. [`RepoVars`] also takes a host's `/etc/dnf/vars`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::error::UserError;

/// dnf's defaults for the keys a repo may leave out.
const DEFAULT_METADATA_EXPIRE: Duration = Duration::from_secs(48 * 3600);
/// dnf\'s default `timeout=`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_PRIORITY: i32 = 99;
const DEFAULT_COST: i32 = 1000;

/// One `[id]` section of a `.repo` file, with variables substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfig {
    /// The section name, `[id]`: how the repo is named in plans, caches and messages.
    pub id: String,
    pub(crate) name: String,
    /// The file it came from, for messages.
    pub file: PathBuf,
    pub(crate) enabled: bool,
    pub(crate) baseurls: Vec<String>,
    pub(crate) metalink: Option<String>,
    pub(crate) mirrorlist: Option<String>,
    pub(crate) gpgcheck: bool,
    pub(crate) repo_gpgcheck: bool,
    pub(crate) gpgkeys: Vec<String>,
    /// How long fetched metadata stays fresh; `None` means it never expires.
    pub metadata_expire: Option<Duration>,
    pub(crate) skip_if_unavailable: bool,
    /// Lower wins between repos offering the same package.
    pub priority: i32,
    /// Lower is preferred between repos of the same priority.
    pub cost: i32,
    pub(crate) exclude: Vec<String>,
    pub(crate) includepkgs: Vec<String>,
    /// `module_hotfixes=1`: module filtering never hides this repo's packages.
    pub(crate) module_hotfixes: bool,
    pub(crate) sslverify: bool,
    /// dnf's `timeout=`: how long a server may stay silent before the transfer counts as failed.
    pub timeout: Duration,
}

/// The values of `$releasever`, `$basearch` and `$arch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoVars {
    /// The base tree's os-release `VERSION_ID`.
    pub releasever: String,
    pub(crate) arch: String,
    pub(crate) basearch: String,
    /// Variables of the host's `/etc/dnf/vars`, by name; they win over the ones above.
    pub(crate) custom: std::collections::BTreeMap<String, String>,
}

impl RepoVars {
    /// The variables for a base with `VERSION_ID` `releasever` on machine `arch` (`$basearch`
    /// follows from it).
    pub fn new(releasever: &str, arch: &str) -> Self {
        RepoVars {
            releasever: releasever.to_string(),
            arch: arch.to_string(),
            basearch: basearch(arch).to_string(),
            custom: Default::default(),
        }
    }

    /// These variables with those of the directory `dir` (dnf's `/etc/dnf/vars`: a file a variable,
    /// named as it, its first line the value), which win over the built-in ones. A missing
    /// directory adds nothing.
    pub(crate) fn with_vars_dir(mut self, dir: &Path) -> Result<Self> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(self);
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("Reading {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid || !entry.file_type()?.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(entry.path())
                .with_context(|| format!("Reading {}", entry.path().display()))?;
            let value = text.lines().next().unwrap_or("").trim().to_string();
            self.custom.insert(name, value);
        }
        Ok(self)
    }

    /// Replaces `$name` and `${name}` for the known variables; other text is left alone.
    pub fn substitute(&self, text: &str) -> String {
        let mut vars: std::collections::BTreeMap<&str, &str> = [
            ("releasever", self.releasever.as_str()),
            ("basearch", self.basearch.as_str()),
            ("arch", self.arch.as_str()),
        ]
        .into_iter()
        .collect();
        vars.extend(self.custom.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut out = text.to_string();
        for (name, value) in vars {
            out = out.replace(&format!("${{{name}}}"), value);
            out = replace_bare_var(&out, name, value);
        }
        out
    }
}

/// Replaces `$name` where it is not followed by more identifier characters.
fn replace_bare_var(text: &str, name: &str, value: &str) -> String {
    let pattern = format!("${name}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&pattern) {
        let after = &rest[at + pattern.len()..];
        let continues = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        out.push_str(if continues { &pattern } else { value });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The base architecture dnf uses in repo URLs for a machine architecture.
pub fn basearch(arch: &str) -> &str {
    match arch {
        "i386" | "i486" | "i586" | "i686" | "athlon" | "geode" => "i386",
        "armv7hl" | "armv7hnl" | "armv8hl" => "armhfp",
        "armv5tel" | "armv5tejl" | "armv6l" | "armv7l" => "arm",
        "ppc64p7" => "ppc64",
        other => other,
    }
}

/// Parses the text of one `.repo` file; `file` names it in errors and in each [`RepoConfig`].
pub fn parse_repo_file(file: &Path, text: &str, vars: &RepoVars) -> Result<Vec<RepoConfig>> {
    let at = |line: usize| format!("{}:{}", file.display(), line);
    let mut sections: Vec<(String, usize, BTreeMap<String, String>)> = Vec::new();
    let mut last_key: Option<String> = None;

    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        // An indented line continues the previous value (how multi-line baseurl lists are written).
        if let (true, Some(key), Some((_, _, keys))) =
            (raw.starts_with([' ', '\t']), &last_key, sections.last_mut())
        {
            let value = keys.get_mut(key).expect("last_key was inserted");
            value.push('\n');
            value.push_str(trimmed);
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let Some(id) = header.strip_suffix(']').map(str::trim) else {
                bail!(repo_error(&at(number), "a section header must end with ]"));
            };
            if id.is_empty() || id.contains(char::is_whitespace) {
                bail!(repo_error(&at(number), &format!("invalid repo id {id:?}")));
            }
            if sections.iter().any(|(existing, _, _)| existing == id) {
                bail!(repo_error(
                    &at(number),
                    &format!("repo {id} is defined twice")
                ));
            }
            sections.push((id.to_string(), number, BTreeMap::new()));
            last_key = None;
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            bail!(repo_error(
                &at(number),
                &format!("expected key=value, found {trimmed:?}")
            ));
        };
        let Some((_, _, keys)) = sections.last_mut() else {
            bail!(repo_error(
                &at(number),
                "key=value before any [repo] section"
            ));
        };
        let key = key.trim().to_string();
        keys.insert(key.clone(), value.trim().to_string());
        last_key = Some(key);
    }

    sections
        .into_iter()
        // dnf reads `[main]` as its own settings, never as a repo; so do we (and ignore them).
        .filter(|(id, _, _)| id != "main")
        .map(|(id, line, keys)| build_repo(file, &at(line), id, keys, vars))
        .collect()
}

fn repo_error(location: &str, what: &str) -> UserError {
    UserError::new(format!("{location}: {what}"))
        .hint("fix the repo file, or point --reposdir at another directory")
}

fn build_repo(
    file: &Path,
    location: &str,
    id: String,
    mut keys: BTreeMap<String, String>,
    vars: &RepoVars,
) -> Result<RepoConfig> {
    let mut take = |key: &str| keys.remove(key).map(|v| vars.substitute(&v));
    let boolean = |key: &str, value: Option<String>, default: bool| -> Result<bool> {
        match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("1" | "yes" | "true" | "on") => Ok(true),
            Some("0" | "no" | "false" | "off") => Ok(false),
            Some(other) => bail!(repo_error(
                location,
                &format!("[{id}] {key}={other} is not a boolean (use 1 or 0)")
            )),
        }
    };
    let integer = |key: &str, value: Option<String>, default: i32| -> Result<i32> {
        value.map_or(Ok(default), |v| {
            v.parse().map_err(|_| {
                repo_error(location, &format!("[{id}] {key}={v} is not a whole number")).into()
            })
        })
    };

    let enabled = boolean("enabled", take("enabled"), true)?;
    let metadata_expire = match take("metadata_expire") {
        None => Some(DEFAULT_METADATA_EXPIRE),
        Some(value) => parse_expiry(&value).ok_or_else(|| {
            repo_error(
                location,
                &format!(
                    "[{id}] metadata_expire={value} is not a duration (e.g. 3600, 6h, 2d, never)"
                ),
            )
        })?,
    };
    let repo = RepoConfig {
        name: take("name").unwrap_or_else(|| id.clone()),
        file: file.to_path_buf(),
        enabled,
        baseurls: split_list(take("baseurl")),
        metalink: take("metalink").filter(|v| !v.is_empty()),
        mirrorlist: take("mirrorlist").filter(|v| !v.is_empty()),
        gpgcheck: boolean("gpgcheck", take("gpgcheck"), false)?,
        repo_gpgcheck: boolean("repo_gpgcheck", take("repo_gpgcheck"), false)?,
        gpgkeys: split_list(take("gpgkey")),
        metadata_expire,
        skip_if_unavailable: boolean("skip_if_unavailable", take("skip_if_unavailable"), false)?,
        priority: integer("priority", take("priority"), DEFAULT_PRIORITY)?,
        cost: integer("cost", take("cost"), DEFAULT_COST)?,
        exclude: split_list(take("exclude").or_else(|| take("excludepkgs"))),
        includepkgs: split_list(take("includepkgs")),
        module_hotfixes: boolean("module_hotfixes", take("module_hotfixes"), false)?,
        sslverify: boolean("sslverify", take("sslverify"), true)?,
        timeout: match take("timeout") {
            None => DEFAULT_TIMEOUT,
            Some(value) => value
                .parse::<f64>()
                .ok()
                .filter(|seconds| *seconds > 0.0)
                .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
                .ok_or_else(|| {
                    repo_error(
                        location,
                        &format!("[{id}] timeout={value} is not a number of seconds"),
                    )
                })?,
        },
        id,
    };
    for key in keys.keys() {
        tracing::debug!("{location}: [{}] ignoring unknown key {key}", repo.id);
    }
    if repo.enabled
        && repo.baseurls.is_empty()
        && repo.metalink.is_none()
        && repo.mirrorlist.is_none()
    {
        bail!(repo_error(
            location,
            &format!("repo {} has no baseurl, metalink or mirrorlist", repo.id)
        ));
    }
    Ok(repo)
}

/// Values separated by whitespace, commas or continuation lines.
fn split_list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `3600`, `90m`, `6h`, `2d`, or `-1` / `never`; `Some(None)` means never expires.
fn parse_expiry(value: &str) -> Option<Option<Duration>> {
    let value = value.trim().to_ascii_lowercase();
    if value == "never" || value == "-1" {
        return Some(None);
    }
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value.as_str(), "s"),
    };
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86400),
        _ => return None,
    }?;
    Some(Some(Duration::from_secs(seconds)))
}

/// Every repo defined by the `*.repo` files in `dir`, in file-name order.
pub fn load_repos_dir(dir: &Path, vars: &RepoVars) -> Result<Vec<RepoConfig>> {
    load_repos_dir_as(dir, dir, vars)
}

/// [`load_repos_dir`] for a directory the user knows as `shown_as` (a deployment's
/// `etc/yum.repos.d` is the host's `/etc/yum.repos.d`): messages and [`RepoConfig::file`] name
/// that.
pub fn load_repos_dir_as(dir: &Path, shown_as: &Path, vars: &RepoVars) -> Result<Vec<RepoConfig>> {
    let entries = std::fs::read_dir(dir).map_err(|err| {
        UserError::new(format!(
            "cannot read repo directory {}: {err}",
            dir.display()
        ))
        .hint("pass --reposdir DIR naming a directory of *.repo files")
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "repo") && path.is_file())
        .collect();
    files.sort();

    let mut repos: Vec<RepoConfig> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("Reading {}", file.display()))?;
        let shown = file
            .file_name()
            .map_or_else(|| file.clone(), |name| shown_as.join(name));
        for repo in parse_repo_file(&shown, &text, vars)? {
            if let Some(first) = repos.iter().find(|r| r.id == repo.id) {
                bail!(
                    UserError::new(format!(
                        "repo {} is defined in both {} and {}",
                        repo.id,
                        first.file.display(),
                        shown.display()
                    ))
                    .hint("remove one of the two definitions")
                );
            }
            repos.push(repo);
        }
    }
    Ok(repos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> RepoVars {
        RepoVars::new("40", "x86_64")
    }

    fn parse(text: &str) -> Result<Vec<RepoConfig>> {
        parse_repo_file(Path::new("/etc/yum.repos.d/test.repo"), text, &vars())
    }

    #[test]
    fn parses_a_fedora_style_file() {
        let repos = parse(
            "\
# Fedora's main repo
[fedora]
name=Fedora $releasever - $basearch
metalink=https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever&arch=$basearch
enabled=1
metadata_expire=7d
repo_gpgcheck=0
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-${releasever}-$basearch
skip_if_unavailable=False

[local]
name = Local mirror
baseurl=http://127.0.0.1:8080/$releasever/
        file:///srv/mirror/$arch,https://mirror.example/f$releasever
enabled=0
priority=10
cost=500
exclude=kernel* glibc,systemd
includepkgs=strace
sslverify=no
metadata_expire=never
",
        )
        .unwrap();
        assert_eq!(repos.len(), 2);
        let fedora = &repos[0];
        assert_eq!(fedora.id, "fedora");
        assert_eq!(fedora.name, "Fedora 40 - x86_64");
        assert_eq!(
            fedora.metalink.as_deref(),
            Some("https://mirrors.fedoraproject.org/metalink?repo=fedora-40&arch=x86_64")
        );
        assert!(fedora.enabled && fedora.gpgcheck && !fedora.repo_gpgcheck);
        assert_eq!(
            fedora.gpgkeys,
            ["file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-40-x86_64"]
        );
        assert_eq!(fedora.metadata_expire, Some(Duration::from_secs(7 * 86400)));
        assert_eq!((fedora.priority, fedora.cost), (99, 1000));
        assert!(!fedora.skip_if_unavailable && fedora.sslverify);

        let local = &repos[1];
        assert_eq!(local.name, "Local mirror");
        assert_eq!(
            local.baseurls,
            [
                "http://127.0.0.1:8080/40/",
                "file:///srv/mirror/x86_64",
                "https://mirror.example/f40"
            ]
        );
        assert!(!local.enabled && !local.sslverify);
        assert_eq!((local.priority, local.cost), (10, 500));
        assert_eq!(local.exclude, ["kernel*", "glibc", "systemd"]);
        assert_eq!(local.includepkgs, ["strace"]);
        assert_eq!(local.metadata_expire, None);
    }

    #[test]
    fn malformed_files_name_file_and_line() {
        let cases = [
            (
                "baseurl=http://x/\n",
                "test.repo:1: key=value before any [repo] section",
            ),
            (
                "[a]\nbaseurl=http://x/\njunk line\n",
                "test.repo:3: expected key=value",
            ),
            ("[a\n", "test.repo:1: a section header must end with ]"),
            (
                "[a]\nbaseurl=x\n[a]\nbaseurl=y\n",
                "test.repo:3: repo a is defined twice",
            ),
            (
                "[a]\nbaseurl=x\nenabled=maybe\n",
                "test.repo:1: [a] enabled=maybe is not a boolean",
            ),
            (
                "[a]\nbaseurl=x\npriority=high\n",
                "[a] priority=high is not a whole number",
            ),
            (
                "[a]\nbaseurl=x\nmetadata_expire=soon\n",
                "[a] metadata_expire=soon is not a duration",
            ),
            (
                "[a]\nname=no urls\n",
                "test.repo:1: repo a has no baseurl, metalink or mirrorlist",
            ),
            // Found by the `repo_file` fuzz target: numbers too large for a duration panicked.
            (
                "[a]\nbaseurl=x\ntimeout=3444444444444444444444444444444444.5\n",
                "[a] timeout=3444444444444444444444444444444444.5 is not a number of seconds",
            ),
            (
                "[a]\nbaseurl=x\nmetadata_expire=99999999999999999d\n",
                "[a] metadata_expire=99999999999999999d is not a duration",
            ),
            (
                "[a]\nbaseurl=x\ntimeout=-1\n",
                "[a] timeout=-1 is not a number of seconds",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        // A disabled repo without URLs is fine: it is never fetched.
        assert!(parse("[a]\nenabled=0\n").is_ok());
        // `[main]` holds dnf settings, not a repo.
        assert_eq!(parse("[main]\ngpgcheck=1\n").unwrap(), []);
    }

    #[test]
    fn substitutes_only_whole_variable_names() {
        let vars = RepoVars::new("9", "i686");
        let cases = [
            ("$releasever/$basearch/$arch", "9/i386/i686"),
            ("${releasever}x/${basearch}", "9x/i386"),
            ("$releaseverx $archive $arch", "$releaseverx $archive i686"),
            ("no variables", "no variables"),
        ];
        for (input, expected) in cases {
            assert_eq!(vars.substitute(input), expected, "{input}");
        }
    }

    #[test]
    fn variables_of_the_vars_directory_win() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("contentdir"), "centos\nignored\n").unwrap();
        std::fs::write(dir.path().join("releasever"), " 9-stream \n").unwrap();
        std::fs::write(dir.path().join("not-a-name"), "x").unwrap();
        let vars = RepoVars::new("9", "x86_64")
            .with_vars_dir(dir.path())
            .unwrap();
        assert_eq!(
            vars.substitute("$contentdir/${releasever}/$basearch/$contentdirx"),
            "centos/9-stream/x86_64/$contentdirx"
        );
        let none = RepoVars::new("9", "x86_64")
            .with_vars_dir(&dir.path().join("missing"))
            .unwrap();
        assert_eq!(none.substitute("$contentdir"), "$contentdir");
    }

    #[test]
    fn expiry_units() {
        let cases = [
            ("3600", Some(Some(3600))),
            ("90m", Some(Some(5400))),
            ("6h", Some(Some(21600))),
            ("2d", Some(Some(172800))),
            ("-1", Some(None)),
            ("never", Some(None)),
            ("6 weeks", None),
        ];
        for (input, expected) in cases {
            let got = parse_expiry(input).map(|e| e.map(|d| d.as_secs()));
            assert_eq!(got, expected, "{input}");
        }
    }

    #[test]
    fn loads_a_directory_and_refuses_duplicate_ids() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.repo"), "[b]\nbaseurl=http://b/\n").unwrap();
        std::fs::write(dir.path().join("a.repo"), "[a]\nbaseurl=http://a/\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "[c]\nnot a repo file\n").unwrap();
        let ids: Vec<String> = load_repos_dir(dir.path(), &vars())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);

        std::fs::write(dir.path().join("c.repo"), "[a]\nbaseurl=http://other/\n").unwrap();
        let err = load_repos_dir(dir.path(), &vars()).unwrap_err().to_string();
        assert!(err.contains("repo a is defined in both"), "{err}");
        assert!(err.contains("a.repo and"), "{err}");
    }
}
