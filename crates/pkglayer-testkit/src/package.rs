//! Test RPMs built in-process with the `rpm` crate: no rpmbuild, no spec files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A package to build: identity, dependencies, contents and scripts.
///
/// ```no_run
/// # use pkglayer_testkit::TestPackage;
/// let strace = TestPackage::new("strace", "6.1-1")
///     .requires("libfoo >= 2")
///     .executable("/usr/bin/strace", "#!/bin/sh\necho strace\n");
/// ```
#[derive(Debug, Clone)]
pub struct TestPackage {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    deps: Vec<(DepKind, String)>,
    entries: Vec<Entry>,
    scripts: Vec<(Script, Vec<String>, String)>,
    description: Option<String>,
    /// Changelog entries: author line, text, time (seconds since the epoch).
    changelog: Vec<(String, String, u32)>,
    /// zstd (as Fedora's packages) instead of gzip for the payload.
    zstd: bool,
}

#[derive(Debug, Clone, Copy)]
enum DepKind {
    Requires,
    Provides,
    Conflicts,
    Obsoletes,
    Recommends,
}

/// The scriptlets a test package can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    Pre,
    Post,
    PostTrans,
    /// `%filetriggerin -- PREFIX`
    FileTriggerIn(String),
    /// `%transfiletriggerin -- PREFIX`
    TransFileTriggerIn(String),
}

#[derive(Debug, Clone)]
enum Entry {
    File {
        path: String,
        contents: Vec<u8>,
        mode: u16,
        user: String,
        group: String,
        /// Files with the same hardlink set share one inode.
        hardlink: Option<String>,
        /// File capabilities in libcap's text form, e.g. `cap_net_raw=ep`.
        caps: Option<String>,
    },
    Dir {
        path: String,
        mode: u16,
        user: String,
        group: String,
    },
    Symlink {
        path: String,
        target: String,
        user: String,
        group: String,
    },
}

/// The architecture test packages are built for: the machine's, as rpm names it.
pub fn host_arch() -> &'static str {
    std::env::consts::ARCH
}

impl TestPackage {
    /// A package `name` at `evr` (`version-release` or `epoch:version-release`), for the host arch.
    pub fn new(name: &str, evr: &str) -> Self {
        let (epoch, vr) = match evr.split_once(':') {
            Some((epoch, vr)) => (Some(epoch.parse().expect("numeric epoch")), vr),
            None => (None, evr),
        };
        let (version, release) = vr.rsplit_once('-').unwrap_or((vr, "1"));
        TestPackage {
            name: name.to_string(),
            epoch,
            version: version.to_string(),
            release: release.to_string(),
            arch: host_arch().to_string(),
            deps: Vec::new(),
            entries: Vec::new(),
            scripts: Vec::new(),
            description: None,
            changelog: Vec::new(),
            zstd: false,
        }
    }

    /// The `%description` (by default the builder's, empty).
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.to_string());
        self
    }

    /// A `%changelog` entry: `author` as in `Name <mail> - 1.0-1`, `text`, `time` in seconds since
    /// the epoch.
    pub fn changelog(mut self, author: &str, text: &str, time: u32) -> Self {
        self.changelog
            .push((author.to_string(), text.to_string(), time));
        self
    }

    /// Compresses the payload with zstd (level 3), as Fedora does, instead of gzip.
    pub fn zstd_payload(mut self) -> Self {
        self.zstd = true;
        self
    }

    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.to_string();
        self
    }

    /// `dep` is `name` or `name OP version`, e.g. `libfoo >= 2.0`.
    pub fn requires(mut self, dep: &str) -> Self {
        self.deps.push((DepKind::Requires, dep.to_string()));
        self
    }

    pub fn provides(mut self, dep: &str) -> Self {
        self.deps.push((DepKind::Provides, dep.to_string()));
        self
    }

    pub fn conflicts(mut self, dep: &str) -> Self {
        self.deps.push((DepKind::Conflicts, dep.to_string()));
        self
    }

    pub fn obsoletes(mut self, dep: &str) -> Self {
        self.deps.push((DepKind::Obsoletes, dep.to_string()));
        self
    }

    pub fn recommends(mut self, dep: &str) -> Self {
        self.deps.push((DepKind::Recommends, dep.to_string()));
        self
    }

    /// A regular file, mode 0644, owned by root.
    pub fn file(self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.file_with(path, contents, 0o644, "root", "root")
    }

    /// An executable file, mode 0755, owned by root.
    pub fn executable(self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.file_with(path, contents, 0o755, "root", "root")
    }

    pub fn file_with(
        mut self,
        path: &str,
        contents: impl Into<Vec<u8>>,
        mode: u16,
        user: &str,
        group: &str,
    ) -> Self {
        self.entries.push(Entry::File {
            path: path.to_string(),
            contents: contents.into(),
            mode,
            user: user.to_string(),
            group: group.to_string(),
            hardlink: None,
            caps: None,
        });
        self
    }

    /// An executable file (0755, root) with file capabilities, e.g. `cap_net_raw=ep`.
    pub fn executable_with_caps(
        mut self,
        path: &str,
        contents: impl Into<Vec<u8>>,
        caps: &str,
    ) -> Self {
        self.entries.push(Entry::File {
            path: path.to_string(),
            contents: contents.into(),
            mode: 0o755,
            user: "root".into(),
            group: "root".into(),
            hardlink: None,
            caps: Some(caps.to_string()),
        });
        self
    }

    /// Regular files (mode 0755, root) at `paths`, hardlinks of one another.
    pub fn hardlinks(mut self, paths: &[&str], contents: impl Into<Vec<u8>>) -> Self {
        let contents = contents.into();
        for path in paths {
            self.entries.push(Entry::File {
                path: path.to_string(),
                contents: contents.clone(),
                mode: 0o755,
                user: "root".into(),
                group: "root".into(),
                hardlink: Some(paths[0].to_string()),
                caps: None,
            });
        }
        self
    }

    pub fn dir(self, path: &str) -> Self {
        self.dir_with(path, 0o755, "root", "root")
    }

    /// A directory with mode `mode`, owned by `user`:`group`.
    pub fn dir_with(mut self, path: &str, mode: u16, user: &str, group: &str) -> Self {
        self.entries.push(Entry::Dir {
            path: path.to_string(),
            mode,
            user: user.to_string(),
            group: group.to_string(),
        });
        self
    }

    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.symlink_with(path, target, "root", "root")
    }

    /// A symlink owned by `user`:`group`.
    pub fn symlink_with(mut self, path: &str, target: &str, user: &str, group: &str) -> Self {
        self.entries.push(Entry::Symlink {
            path: path.to_string(),
            target: target.to_string(),
            user: user.to_string(),
            group: group.to_string(),
        });
        self
    }

    /// A shell scriptlet (`/bin/sh`).
    pub fn script(self, kind: Script, body: &str) -> Self {
        self.script_with(kind, &["/bin/sh"], body)
    }

    /// A Lua scriptlet (`-p <lua>`).
    pub fn lua_script(self, kind: Script, body: &str) -> Self {
        self.script_with(kind, &["<lua>"], body)
    }

    /// A scriptlet run by `interpreter`.
    pub fn script_with(mut self, kind: Script, interpreter: &[&str], body: &str) -> Self {
        let interpreter = interpreter.iter().map(|s| s.to_string()).collect();
        self.scripts.push((kind, interpreter, body.to_string()));
        self
    }

    /// Host programs (e.g. `/usr/bin/rpmlua`) at the same paths, with every shared library they load
    /// (from `ldd`) under `/usr/lib/x86_64-linux-gnu` and the dynamic loader under `/usr/lib64`: real
    /// tools for a test base that has no distribution behind it.
    pub fn host_programs(mut self, programs: &[&str]) -> Result<Self> {
        let mut libraries = std::collections::BTreeSet::new();
        for program in programs {
            let contents = std::fs::read(program)
                .with_context(|| format!("reading host program {program}"))?;
            self = self.executable(
                &format!("/usr{}", program.trim_start_matches("/usr")),
                contents,
            );
            let output = std::process::Command::new("ldd").arg(program).output()?;
            for word in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                if word.starts_with('/') {
                    libraries.insert(word.to_string());
                }
            }
        }
        for library in libraries {
            let name = Path::new(&library)
                .file_name()
                .context("a library path has a file name")?
                .to_string_lossy()
                .into_owned();
            let dir = if name.starts_with("ld-linux") {
                "/usr/lib64"
            } else {
                "/usr/lib/x86_64-linux-gnu"
            };
            let contents = std::fs::read(&library).with_context(|| format!("reading {library}"))?;
            self = self.executable(&format!("{dir}/{name}"), contents);
        }
        Ok(self)
    }

    /// `[epoch:]version-release`
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) if epoch > 0 => format!("{epoch}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        }
    }

    /// `name-[epoch:]version-release.arch`, as `rpm -q --qf '%{NEVRA}'` prints it.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), self.arch)
    }

    /// The file name rpm tooling gives this package: `name-version-release.arch.rpm`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }

    /// Builds the package in memory.
    pub fn build(&self) -> Result<rpm::Package> {
        // A fixed build date keeps packages (and so their checksums) reproducible.
        let compression = if self.zstd {
            rpm::CompressionWithLevel::Zstd(3)
        } else {
            rpm::CompressionType::Gzip.into()
        };
        let config = rpm::BuildConfig::v4()
            .compression(compression)
            .source_date(1_700_000_000u32);
        let mut builder = rpm::PackageBuilder::new(
            &self.name,
            &self.version,
            "MIT",
            &self.arch,
            &format!("{} test package", self.name),
        );
        builder.using_config(config).release(&self.release);
        if let Some(epoch) = self.epoch {
            builder.epoch(epoch);
        }
        if let Some(description) = &self.description {
            builder.description(description.as_str());
        }
        for (author, text, time) in &self.changelog {
            builder.add_changelog_entry(author, text, *time);
        }
        for (kind, dep) in &self.deps {
            let dep = parse_dependency(dep)?;
            match kind {
                DepKind::Requires => builder.requires(dep),
                DepKind::Provides => builder.provides(dep),
                DepKind::Conflicts => builder.conflicts(dep),
                DepKind::Obsoletes => builder.obsoletes(dep),
                DepKind::Recommends => builder.recommends(dep),
            };
        }
        for entry in &self.entries {
            match entry {
                Entry::File {
                    path,
                    contents,
                    mode,
                    user,
                    group,
                    hardlink,
                    caps,
                } => {
                    let mut options = rpm::FileOptions::new(path)
                        .permissions(*mode)
                        .user(user)
                        .group(group);
                    if let Some(set) = hardlink {
                        options = options.hardlink(set);
                    }
                    if let Some(caps) = caps {
                        options = options.caps(caps.as_str())?;
                    }
                    builder.with_file_contents(contents.clone(), options)
                }
                Entry::Dir {
                    path,
                    mode,
                    user,
                    group,
                } => builder.with_dir_entry(
                    rpm::FileOptions::dir(path)
                        .permissions(*mode)
                        .user(user)
                        .group(group),
                ),
                Entry::Symlink {
                    path,
                    target,
                    user,
                    group,
                } => builder.with_symlink(
                    rpm::FileOptions::symlink(path, target)
                        .user(user)
                        .group(group),
                ),
            }
            .with_context(|| format!("adding {entry:?} to {}", self.name))?;
        }
        for (kind, interpreter, body) in &self.scripts {
            let script = rpm::Scriptlet::new(body.as_str()).prog(interpreter.clone());
            match kind {
                Script::Pre => builder.pre_install_script(script),
                Script::Post => builder.post_install_script(script),
                Script::PostTrans => builder.post_trans_script(script),
                Script::FileTriggerIn(prefix) => builder.file_trigger_in(prefix, None, script),
                Script::TransFileTriggerIn(prefix) => {
                    builder.trans_file_trigger_in(prefix, None, script)
                }
            };
        }
        builder
            .build()
            .with_context(|| format!("building test package {}", self.nevra()))
    }

    /// Builds the package into `dir`, returning the path of the `.rpm`.
    pub fn write_to(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(self.file_name());
        self.build()?
            .write_file(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// `name`, or `name OP version` with OP one of `= < <= > >=`.
fn parse_dependency(dep: &str) -> Result<rpm::Dependency> {
    let parts: Vec<&str> = dep.split_whitespace().collect();
    Ok(match parts[..] {
        [name] => rpm::Dependency::any(name),
        [name, "=", version] => rpm::Dependency::eq(name, version),
        [name, "<", version] => rpm::Dependency::less(name, version),
        [name, "<=", version] => rpm::Dependency::less_eq(name, version),
        [name, ">", version] => rpm::Dependency::greater(name, version),
        [name, ">=", version] => rpm::Dependency::greater_eq(name, version),
        _ => bail!("cannot parse dependency {dep:?}"),
    })
}
