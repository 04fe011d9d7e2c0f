//! What the CLI tests share: running the binary under test, reading its answer, and snapshotting
//! its human output.

#![allow(dead_code)] // each test file uses its own subset

pub mod dnf;
pub mod host;
pub mod model;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use pkglayer_core::layout::{Cache, CacheFolder, State};
use pkglayer_testkit::{TEST_ENV, host_arch};

/// The one way the tests run the binary under test:
/// `pkglayer --sysroot SYSROOT ARGS… [--reposdir DIR]`, with [`TEST_ENV`] and any `env` added.
///
/// ```ignore
/// let output = Pkglayer::new(sysroot).args(["install", "strace"]).reposdir(dir).output();
/// ```
pub struct Pkglayer {
    sysroot: PathBuf,
    args: Vec<OsString>,
    reposdir: Option<PathBuf>,
    envs: Vec<(OsString, OsString)>,
    stdout: Option<Stdio>,
}

impl Pkglayer {
    pub fn new(sysroot: impl AsRef<Path>) -> Self {
        Pkglayer {
            sysroot: sysroot.as_ref().to_path_buf(),
            args: Vec::new(),
            reposdir: None,
            envs: Vec::new(),
            stdout: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// `--reposdir DIR`, an option of the verbs that read repos: it goes after the other arguments,
    /// wherever it is given.
    pub fn reposdir(mut self, dir: impl AsRef<Path>) -> Self {
        self.reposdir = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Where stdout goes (by default a pipe, read into the [`Output`] or left to the [`Child`]).
    pub fn stdout(mut self, stdout: impl Into<Stdio>) -> Self {
        self.stdout = Some(stdout.into());
        self
    }

    fn command(self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pkglayer"));
        command.arg("--sysroot").arg(&self.sysroot).args(&self.args);
        if let Some(dir) = &self.reposdir {
            command.arg("--reposdir").arg(dir);
        }
        command.envs(TEST_ENV).envs(self.envs);
        if let Some(stdout) = self.stdout {
            command.stdout(stdout);
        }
        command
    }

    /// Runs pkglayer to its end; stdout (unless redirected) and stderr are captured.
    pub fn output(self) -> Output {
        self.command().output().expect("running pkglayer")
    }

    /// Starts pkglayer with stdout (unless redirected) and stderr piped, and returns at once.
    pub fn spawn(self) -> Child {
        let piped = self.stdout.is_none();
        let mut command = self.command();
        if piped {
            command.stdout(Stdio::piped());
        }
        command
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting pkglayer")
    }
}

/// Runs `pkglayer --sysroot SYSROOT ARGS…`: [`Pkglayer`] for the common case.
pub fn pkglayer(sysroot: &Path, args: &[&str]) -> Output {
    Pkglayer::new(sysroot).args(args).output()
}

/// Asserts that pkglayer succeeded; returns its stdout.
pub fn ok(output: &Output) -> String {
    assert!(output.status.success(), "pkglayer failed: {}", said(output));
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Asserts that pkglayer failed with exit status 1 (an error the user can act on); returns stderr.
pub fn failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected a failure, got {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    stderr(output)
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Exit status, stdout and stderr of a pkglayer run, for a failure message.
pub fn said(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The cache of the test stateroot of the sysroot at `sysroot`, where the product keeps it.
pub fn cache(sysroot: &Path) -> Cache {
    open_sysroot(sysroot).cache()
}

/// The state folder of the test stateroot of the sysroot at `sysroot`.
pub fn state(sysroot: &Path) -> State {
    open_sysroot(sysroot).state()
}

fn open_sysroot(sysroot: &Path) -> pkglayer_core::Sysroot {
    pkglayer_core::Sysroot::open(sysroot, Some("testos")).expect("opening the test sysroot")
}

/// The metadata cache folder of repo `id` in the test stateroot of the sysroot at `sysroot`.
pub fn repo_cache_dir(sysroot: &Path, id: &str) -> PathBuf {
    let cache = cache(sysroot).folder(CacheFolder::RepoMetadata);
    std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{id}-"))
        })
        .unwrap_or_else(|| panic!("no cache folder for repo {id} in {}", cache.display()))
}

/// Filters for `insta` snapshots of pkglayer's human output: what changes from run to run (commit
/// checksums, times, temporary paths, the server's port) and from machine to machine (the arch)
/// becomes a placeholder. Commits a test knows are named (e.g. `[BASE_V1]`), so the snapshot still
/// says which commit is where; any other is `[CHECKSUM]`.
///
/// ```ignore
/// insta::with_settings!({filters => redactions.filters()}, {
///     insta::assert_snapshot!("status_layered", text);
/// });
/// ```
pub struct Redactions {
    named: Vec<(String, String)>,
    general: Vec<(String, String)>,
}

impl Redactions {
    pub fn new() -> Self {
        let temp = regex_escape(&std::env::temp_dir().display().to_string());
        let general = [
            // A tempfile directory: the rest of the path stays.
            (format!(r"{temp}/\.tmp[A-Za-z0-9]+"), "[TMP]"),
            (r"\b[0-9a-f]{64}\b".to_string(), "[CHECKSUM]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ".to_string(), "[TIME]"),
            (r"127\.0\.0\.1:\d+".to_string(), "127.0.0.1:[PORT]"),
            (regex_escape(host_arch()), "[ARCH]"),
        ];
        Redactions {
            named: Vec::new(),
            general: general
                .into_iter()
                .map(|(regex, replacement)| (regex, replacement.to_string()))
                .collect(),
        }
    }

    /// Shows `text` (a commit, a path…) as `name`, e.g. `[BASE_V1]`.
    pub fn name(mut self, text: &str, name: &str) -> Self {
        self.named.push((regex_escape(text), name.to_string()));
        self
    }

    /// For `insta::with_settings!({filters => …})`: the named texts first, then the general rules.
    pub fn filters(&self) -> Vec<(&str, &str)> {
        (self.named.iter().chain(&self.general))
            .map(|(regex, replacement)| (regex.as_str(), replacement.as_str()))
            .collect()
    }
}

impl Default for Redactions {
    fn default() -> Self {
        Self::new()
    }
}

/// `text` as a regex that matches just it (what `regex::escape` does).
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
