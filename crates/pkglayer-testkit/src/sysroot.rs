//! A sysroot made with real `ostree admin`, deployed from a [`Vendor`], and ways to read it back.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::command::run;
use crate::vendor::{OSNAME, REMOTE, Vendor};

/// Kernel arguments the first deployment gets, so tests can check they are carried over.
pub const KARGS: [&str; 2] = ["root=LABEL=testos-root", "console=ttyS0"];

/// An offline sysroot with stateroot [`OSNAME`] and the vendor as remote [`REMOTE`].
pub struct TestSysroot {
    pub path: PathBuf,
    pub osname: String,
}

impl Drop for TestSysroot {
    /// Deployments made in-process (without [`crate::TEST_ENV`]) carry the immutable bit, which
    /// would keep the temporary directory from being removed; clear it.
    fn drop(&mut self) {
        for dir in self.deployment_dirs().unwrap_or_default() {
            let _ = Command::new("chattr").arg("-i").arg(dir).status();
        }
    }
}

/// One line of `ostree admin status`, the reference our own status is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminStatusEntry {
    pub osname: String,
    pub checksum: String,
    pub serial: u32,
    pub booted: bool,
    pub pending: bool,
    pub rollback: bool,
    pub version: Option<String>,
    pub refspec: Option<String>,
}

impl TestSysroot {
    /// Makes a sysroot at `path` (which must not exist or be empty) and deploys `REMOTE:refname`.
    pub fn create(path: &Path, vendor: &Vendor, refname: &str) -> Result<Self> {
        std::fs::create_dir_all(path)?;
        let sysroot = TestSysroot {
            path: path.to_path_buf(),
            osname: OSNAME.to_string(),
        };
        sysroot.admin(&["init-fs", &path.display().to_string()])?;
        sysroot.admin(&["os-init", &sysroot.sysroot_arg(), OSNAME])?;
        run(Command::new("ostree").arg(sysroot.repo_arg()).args([
            "remote",
            "add",
            "--no-gpg-verify",
            REMOTE,
            &vendor.url(),
        ]))?;
        sysroot.pull(refname)?;
        let mut deploy = vec![
            "deploy".to_string(),
            sysroot.sysroot_arg(),
            sysroot.os_arg(),
        ];
        deploy.extend(KARGS.iter().map(|k| format!("--karg={k}")));
        deploy.push(format!("{REMOTE}:{refname}"));
        sysroot.admin(&deploy.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(sysroot)
    }

    /// Pulls `refname` from the vendor into the sysroot's repo.
    pub fn pull(&self, refname: &str) -> Result<()> {
        run(Command::new("ostree")
            .arg(self.repo_arg())
            .args(["pull", REMOTE, refname]))?;
        Ok(())
    }

    /// `ostree admin upgrade`: pulls the newest base and deploys it as the new default.
    pub fn admin_upgrade(&self) -> Result<()> {
        self.admin(&["upgrade", &self.sysroot_arg(), &self.os_arg()])?;
        Ok(())
    }

    /// Runs `ostree admin ARGS...`.
    pub fn admin(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ostree").arg("admin").args(args))
    }

    /// The deployments as `ostree admin status` lists them, default first.
    pub fn admin_status(&self) -> Result<Vec<AdminStatusEntry>> {
        let text = self.admin(&["status", &self.sysroot_arg()])?;
        parse_admin_status(&text)
    }

    /// The checked-out tree of each deployment, in `ostree admin status` order.
    pub fn deployment_dirs(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .admin_status()?
            .iter()
            .map(|entry| self.deployment_dir(entry))
            .collect())
    }

    pub fn deployment_dir(&self, entry: &AdminStatusEntry) -> PathBuf {
        self.path.join(format!(
            "ostree/deploy/{}/deploy/{}.{}",
            entry.osname, entry.checksum, entry.serial
        ))
    }

    /// The origin file of the `index`th deployment, as text.
    pub fn origin(&self, index: usize) -> Result<String> {
        let dirs = self.deployment_dirs()?;
        let dir = dirs.get(index).context("no such deployment")?;
        let path = format!("{}.origin", dir.display());
        std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))
    }

    /// `rpm -qa` on a deployment's tree, NEVRAs sorted.
    pub fn rpm_qa(&self, deployment_dir: &Path) -> Result<Vec<String>> {
        let output = run(Command::new("rpm").arg("--root").arg(deployment_dir).args([
            "--dbpath",
            "/usr/share/rpm",
            "-qa",
            "--qf",
            "%{NEVRA}\\n",
        ]))?;
        let mut nevras: Vec<String> = output.lines().map(str::to_string).collect();
        nevras.sort();
        Ok(nevras)
    }

    /// `rpm -q NAME` on a deployment's tree: the installed NEVRA, or `None` when not installed.
    pub fn rpm_q(&self, deployment_dir: &Path, name: &str) -> Option<String> {
        run(Command::new("rpm").arg("--root").arg(deployment_dir).args([
            "--dbpath",
            "/usr/share/rpm",
            "-q",
            name,
        ]))
        .ok()
        .map(|nevra| nevra.trim().to_string())
    }

    /// Runs `ostree --repo=SYSROOT/ostree/repo ARGS...`, returning stdout.
    pub fn ostree(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ostree").arg(self.repo_arg()).args(args))
    }

    /// Whether the sysroot's repo has `commit` (`ostree show` finds it).
    pub fn has_commit(&self, commit: &str) -> bool {
        self.ostree(&["show", commit]).is_ok()
    }

    /// Takes the sysroot lock from another process, as another ostree client would, until the
    /// returned holder is dropped.
    pub fn hold_lock(&self) -> LockHolder {
        LockHolder::hold(&self.path.join("ostree/lock"))
    }

    /// The `options` line of every boot loader entry, newest deployment first.
    pub fn boot_options(&self) -> Result<Vec<String>> {
        let loader = self.path.join("boot/loader/entries");
        let mut entries: Vec<(String, String)> = Vec::new();
        for entry in
            std::fs::read_dir(&loader).with_context(|| format!("reading {}", loader.display()))?
        {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path)?;
            let options = text
                .lines()
                .find_map(|l| l.strip_prefix("options "))
                .unwrap_or_default()
                .to_string();
            entries.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                options,
            ));
        }
        // ostree numbers entries so that the highest is the default.
        entries.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(entries.into_iter().map(|(_, options)| options).collect())
    }

    pub fn sysroot_arg(&self) -> String {
        format!("--sysroot={}", self.path.display())
    }

    fn os_arg(&self) -> String {
        format!("--os={}", self.osname)
    }

    pub fn repo_arg(&self) -> String {
        format!("--repo={}", self.path.join("ostree/repo").display())
    }
}

/// Holds a sysroot's lock from a separate process until dropped: a POSIX record lock (`lockf`),
/// which conflicts with the OFD lock libostree takes, so pkglayer waits for it (or, with
/// `--no-wait`, refuses at once).
pub struct LockHolder(std::process::Child);

impl LockHolder {
    fn hold(lock: &Path) -> Self {
        let script = "import fcntl, sys\n\
                      f = open(sys.argv[1], 'a')\n\
                      fcntl.lockf(f, fcntl.LOCK_EX)\n\
                      print('locked', flush=True)\n\
                      sys.stdin.read()\n";
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(lock)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting python3 to hold the sysroot lock");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "locked\n", "the lock holder did not take the lock");
        LockHolder(child)
    }
}

impl Drop for LockHolder {
    /// Closing its stdin ends the holder, and with it the lock.
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Parses `ostree admin status`:
///
/// ```text
/// * testos 3b2f…c.0 (pending)
///     Version: 2
///     origin refspec: vendor:testos/x86_64/stable
/// ```
pub fn parse_admin_status(text: &str) -> Result<Vec<AdminStatusEntry>> {
    let mut entries: Vec<AdminStatusEntry> = Vec::new();
    for line in text.lines() {
        if line.starts_with("    ") || line.starts_with('\t') {
            let Some(entry) = entries.last_mut() else {
                continue;
            };
            let detail = line.trim();
            if let Some(version) = detail.strip_prefix("Version: ") {
                entry.version = Some(version.to_string());
            } else if let Some(refspec) = detail.strip_prefix("origin refspec: ") {
                entry.refspec = Some(refspec.to_string());
            }
            continue;
        }
        let booted = line.starts_with('*');
        let words: Vec<&str> = line.trim_start_matches('*').split_whitespace().collect();
        let [osname, deployment, rest @ ..] = words.as_slice() else {
            continue;
        };
        let Some((checksum, serial)) = deployment.rsplit_once('.') else {
            continue;
        };
        if checksum.len() != 64 {
            bail!("unexpected line in ostree admin status: {line:?}");
        }
        entries.push(AdminStatusEntry {
            osname: osname.to_string(),
            checksum: checksum.to_string(),
            serial: serial.parse()?,
            booted,
            pending: rest.contains(&"(pending)"),
            rollback: rest.contains(&"(rollback)"),
            version: None,
            refspec: None,
        });
    }
    Ok(entries)
}
