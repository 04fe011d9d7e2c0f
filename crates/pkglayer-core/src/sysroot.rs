//! The OSTree physical root we operate on: its stateroot, deployments and their roles.
//!
//! On a booted host the roles are ostree's: the *booted* deployment, a *pending* one before it (the
//! default at next boot) and a *rollback* one after it. On an offline sysroot (image building, tests)
//! nothing is booted; the first deployment of the stateroot is then the *current* one and the next one
//! is its rollback.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fn_error_context::context;
use ostree::gio;
use ostree::glib;

use crate::error::UserError;
use crate::layout::{Cache, State};
use crate::origin::Origin;

/// An opened, loaded sysroot with the stateroot we work in.
pub struct Sysroot {
    path: PathBuf,
    ostree: ostree::Sysroot,
    stateroot: String,
    /// Whether taking the lock waits for another holder (the default) or fails at once.
    wait_for_lock: bool,
}

/// What a deployment is to the stateroot, in ostree's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Booted,
    /// Default at next boot, deployed after the booted one.
    Pending,
    /// The deployment to go back to (after the booted one, or after the default offline).
    Rollback,
    /// The default of an offline sysroot.
    Current,
    Other,
}

/// Holds the sysroot lock; released on drop.
pub struct SysrootLock<'a> {
    sysroot: &'a Sysroot,
}

impl Drop for SysrootLock<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.sysroot.state().operation());
        self.sysroot.ostree.unlock();
    }
}

/// Whether an operation holds the sysroot lock, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum LockState {
    /// Nothing holds it.
    Idle,
    /// Something does: a pkglayer operation (what it is, its process, since when) or another
    /// ostree tool (nothing known).
    Busy {
        /// The verb (`install`, `upgrade`, …), when pkglayer holds it.
        operation: Option<String>,
        /// Its process.
        pid: Option<u32>,
        /// Since when, seconds since the epoch.
        since: Option<u64>,
    },
}

impl Sysroot {
    /// Opens and loads the sysroot at `path`, working in `stateroot` (default: the booted deployment's,
    /// or the only one there is). Writes nothing.
    pub fn open(path: &Path, stateroot: Option<&str>) -> Result<Self> {
        if !path.is_dir() {
            return Err(UserError::new(format!("sysroot {} does not exist", path.display()))
                .hint("pass --sysroot DIR naming an OSTree sysroot (a directory holding ostree/repo)")
                .into());
        }
        if !path.join("ostree/repo").is_dir() {
            return Err(UserError::new(format!(
                "{} is not an OSTree sysroot: it has no ostree/repo",
                path.display()
            ))
            .hint(
                "pass --sysroot DIR naming a directory that holds ostree/repo and ostree/deploy, \
                 or run pkglayer on an OSTree-based host",
            )
            .into());
        }

        route_library_prints_to_log();
        // Absolute from here on: librpm (through libsolv) resolves database paths from the root.
        let path = &std::fs::canonicalize(path)
            .with_context(|| format!("Resolving {}", path.display()))?;
        let file = gio::File::for_path(path);
        let ostree = ostree::Sysroot::new(Some(&file));
        if let Err(err) = ostree.load(gio::Cancellable::NONE) {
            return Err(explain_load_failure(path, err));
        }

        let stateroot = pick_stateroot(path, &ostree, stateroot)?;
        let sysroot = Sysroot {
            path: path.to_path_buf(),
            ostree,
            stateroot,
            wait_for_lock: true,
        };
        if sysroot.deployments().is_empty() {
            return Err(UserError::new(format!(
                "stateroot {} in {} has no deployments",
                sysroot.stateroot,
                path.display()
            ))
            .hint(format!(
                "deploy a base first, e.g. `ostree admin deploy --sysroot {} --os {} REMOTE:REF`",
                path.display(),
                sysroot.stateroot
            ))
            .into());
        }
        Ok(sysroot)
    }

    pub(crate) fn stateroot(&self) -> &str {
        &self.stateroot
    }

    pub(crate) fn ostree(&self) -> &ostree::Sysroot {
        &self.ostree
    }

    pub(crate) fn repo(&self) -> ostree::Repo {
        self.ostree.repo()
    }

    /// This stateroot's deployments, default first.
    pub fn deployments(&self) -> Vec<ostree::Deployment> {
        self.ostree
            .deployments()
            .into_iter()
            .filter(|d| d.osname() == self.stateroot)
            .collect()
    }

    /// The booted deployment, if it belongs to this stateroot.
    pub fn booted(&self) -> Option<ostree::Deployment> {
        self.ostree
            .booted_deployment()
            .filter(|d| d.osname() == self.stateroot)
    }

    /// The deployment operations build on: the booted one, or offline the default.
    pub fn current(&self) -> ostree::Deployment {
        self.booted()
            .or_else(|| self.deployments().into_iter().next())
            .expect("open() checked that the stateroot has deployments")
    }

    /// The deployment that becomes the default at next boot, if one was deployed after booting.
    pub fn pending(&self) -> Option<ostree::Deployment> {
        let booted = self.booted()?;
        self.deployments()
            .into_iter()
            .take_while(|d| !d.equal(&booted))
            .next()
    }

    /// The deployment new operations build on: the pending one if there is one (so operations chain
    /// before a reboot, as with rpm-ostree), else the current one.
    pub fn latest(&self) -> ostree::Deployment {
        self.pending().unwrap_or_else(|| self.current())
    }

    /// The deployment after the current one: what `rollback` goes back to.
    pub fn rollback(&self) -> Option<ostree::Deployment> {
        let current = self.current();
        self.deployments()
            .into_iter()
            .skip_while(|d| !d.equal(&current))
            .nth(1)
    }

    pub(crate) fn role(&self, deployment: &ostree::Deployment) -> Role {
        let is = |other: Option<ostree::Deployment>| other.is_some_and(|o| o.equal(deployment));
        if is(self.booted()) {
            Role::Booted
        } else if is(self.pending()) {
            Role::Pending
        } else if is(self.rollback()) {
            Role::Rollback
        } else if self.booted().is_none() && self.current().equal(deployment) {
            Role::Current
        } else {
            Role::Other
        }
    }

    /// The stateroot's cache (`/var/cache/pkglayer` as the deployments see it): repo metadata, base
    /// rpmdb copies, solver caches. Shared by all deployments of the stateroot, kept across upgrades.
    pub fn cache(&self) -> Cache {
        Cache::new(self.stateroot_var().join("cache/pkglayer"))
    }

    /// The stateroot's state (`/var/lib/pkglayer` as the deployments see it): what must outlive any
    /// cache cleanup, such as the user and group IDs layering gave out.
    pub fn state(&self) -> State {
        State::new(self.stateroot_var().join("lib/pkglayer"))
    }

    /// Where layering on this sysroot works: its repo, the stateroot's cache and state, the current
    /// deployment's `/etc`, and every deployment (of any stateroot) as a checkout for scripts.
    pub fn workspace(&self) -> crate::workspace::Workspace {
        let checkouts = self
            .ostree
            .deployments()
            .iter()
            .map(|deployment| crate::scripts::Checkout {
                commit: deployment.csum().to_string(),
                path: self.deployment_path(deployment),
            })
            .collect();
        crate::workspace::Workspace::new(
            self.repo(),
            self.cache(),
            self.state(),
            Some(self.deployment_path(&self.current()).join("etc")),
            checkouts,
        )
    }

    /// The stateroot's `/var`, shared by its deployments.
    fn stateroot_var(&self) -> PathBuf {
        self.path
            .join("ostree/deploy")
            .join(&self.stateroot)
            .join("var")
    }

    /// The deployment's checked-out tree.
    pub fn deployment_path(&self, deployment: &ostree::Deployment) -> PathBuf {
        self.path
            .join(self.ostree.deployment_dirpath(deployment).as_str())
    }

    /// Where the deployment's origin file lives.
    pub fn origin_path(&self, deployment: &ostree::Deployment) -> PathBuf {
        let mut path = self.deployment_path(deployment).into_os_string();
        path.push(".origin");
        PathBuf::from(path)
    }

    /// The deployment's origin, parsed.
    #[context("Reading the origin of deployment {}.{}", deployment.csum(), deployment.deployserial())]
    pub fn origin(&self, deployment: &ostree::Deployment) -> Result<Origin> {
        let keyfile = deployment.origin().ok_or_else(|| {
            UserError::new(format!(
                "deployment {}.{} has no origin file",
                deployment.csum(),
                deployment.deployserial()
            ))
            .hint(format!(
                "write one at {} with `[origin]` and `refspec=REMOTE:REF`",
                self.origin_path(deployment).display()
            ))
        })?;
        let text = keyfile.to_data();
        Origin::parse(&text).map_err(|err| {
            UserError::new(format!(
                "origin file {} is invalid: {err:#}",
                self.origin_path(deployment).display()
            ))
            .hint("fix it by hand: it needs `[origin]` with `refspec=REMOTE:REF` (or `baserefspec=` when packages are layered)")
            .into()
        })
    }

    /// The commit a user means by `spec`: none for the current deployment, a deployment index (0 is
    /// the first, as `status` lists them), a prefix of a deployment's checksum, or any rev in the repo.
    pub fn resolve_commit(&self, spec: Option<&str>) -> Result<String> {
        let deployments = self.deployments();
        let Some(spec) = spec else {
            return Ok(self.current().csum().to_string());
        };
        if let Some(deployment) = spec.parse::<usize>().ok().and_then(|i| deployments.get(i)) {
            return Ok(deployment.csum().to_string());
        }
        let matching: Vec<_> = deployments
            .iter()
            .map(|d| d.csum().to_string())
            .filter(|csum| csum.starts_with(spec))
            .collect();
        if let [only] = matching.as_slice() {
            return Ok(only.clone());
        }
        if let Ok(Some(commit)) = self.repo().resolve_rev(spec, true) {
            return Ok(commit.to_string());
        }
        Err(UserError::new(format!(
            "no deployment or commit {spec:?} in stateroot {}",
            self.stateroot
        ))
        .hint(format!(
            "name a deployment by index (0 to {}) or checksum as `pkglayer status` lists them, or a commit",
            deployments.len() - 1
        ))
        .into())
    }

    /// Whether [`Sysroot::lock`] waits for another holder (true by default) or fails at once.
    pub fn set_wait_for_lock(&mut self, wait: bool) {
        self.wait_for_lock = wait;
    }

    /// Takes the sysroot lock, waiting (and saying so) while another process holds it, or failing at
    /// once if told not to wait.
    #[context("Locking sysroot {}", self.path.display())]
    pub fn lock(&self, operation: &str) -> Result<SysrootLock<'_>> {
        if !self.ostree.try_lock()? {
            if !self.wait_for_lock {
                return Err(UserError::new(format!(
                    "another ostree or pkglayer operation holds the sysroot lock ({})",
                    self.path.join("ostree/lock").display()
                ))
                .hint("try again when it has finished, or leave out --no-wait to wait for it")
                .into());
            }
            tracing::warn!(
                "waiting for the sysroot lock at {}: another ostree or pkglayer operation is running",
                self.path.join("ostree/lock").display()
            );
            self.ostree.lock()?;
        }
        let lock = SysrootLock { sysroot: self };
        // Only for `status` to tell; an operation does not fail for want of it.
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let record = self.state().operation();
        if let Some(folder) = record.parent() {
            let _ = std::fs::create_dir_all(folder);
        }
        let _ = std::fs::write(
            &record,
            format!("{} {operation} {since}\n", std::process::id()),
        );
        Ok(lock)
    }

    /// Whether an operation holds the sysroot lock now, and which (takes the lock for a moment
    /// when it is free).
    pub fn lock_state(&self) -> Result<LockState> {
        if self.ostree.try_lock()? {
            self.ostree.unlock();
            return Ok(LockState::Idle);
        }
        let record = std::fs::read_to_string(self.state().operation()).unwrap_or_default();
        let mut fields = record.split_whitespace();
        let pid = fields.next().and_then(|f| f.parse().ok());
        let operation = fields.next().map(str::to_string);
        let since = fields.next().and_then(|f| f.parse().ok());
        Ok(LockState::Busy {
            operation,
            pid,
            since,
        })
    }

    /// Writes a new deployment list (all stateroots). The caller releases what the deployments no
    /// longer use ([`crate::retention::release`]), which also prunes the repo.
    #[context("Writing the deployment list")]
    pub(crate) fn write_deployments(&self, deployments: &[ostree::Deployment]) -> Result<()> {
        let opts = ostree::SysrootWriteDeploymentsOpts {
            do_postclean: false,
        };
        self.ostree
            .write_deployments_with_options(deployments, &opts, gio::Cancellable::NONE)?;
        self.reload()
    }

    /// Loads the sysroot again after a change, so the view matches the disk.
    pub(crate) fn reload(&self) -> Result<()> {
        self.ostree
            .load(gio::Cancellable::NONE)
            .context("Reloading the sysroot")
    }
}

/// libostree prints a few messages ("Freed objects: …") with `g_print`, which would land on our
/// stdout among the data; send them to the log instead.
fn route_library_prints_to_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| glib::set_print_handler(|message| tracing::info!("{}", message.trim_end())));
}

/// Picks the stateroot: the one asked for, the booted one's, or the only one.
fn pick_stateroot(path: &Path, ostree: &ostree::Sysroot, wanted: Option<&str>) -> Result<String> {
    let available = stateroots(path)?;
    if let Some(wanted) = wanted {
        if available.iter().any(|s| s == wanted) {
            return Ok(wanted.to_string());
        }
        return Err(
            UserError::new(format!("no stateroot {wanted} in {}", path.display()))
                .hint(if available.is_empty() {
                    "this sysroot has no stateroot yet; create one with `ostree admin os-init`"
                        .to_string()
                } else {
                    format!(
                        "stateroots here: {}; pick one with --os",
                        available.join(", ")
                    )
                })
                .into(),
        );
    }
    if let Some(booted) = ostree.booted_deployment() {
        return Ok(booted.osname().to_string());
    }
    match available.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(
            UserError::new(format!("{} has no stateroot", path.display()))
                .hint("create one with `ostree admin os-init NAME` and deploy a base into it")
                .into(),
        ),
        several => Err(UserError::new(format!(
            "{} has several stateroots ({}) and none is booted",
            path.display(),
            several.join(", ")
        ))
        .hint("pick one with --os NAME")
        .into()),
    }
}

/// The stateroot names under `ostree/deploy`, sorted.
fn stateroots(path: &Path) -> Result<Vec<String>> {
    let deploy = path.join("ostree/deploy");
    let mut names = Vec::new();
    if deploy.is_dir() {
        for entry in
            std::fs::read_dir(&deploy).with_context(|| format!("Reading {}", deploy.display()))?
        {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// libostree fails to load a sysroot whose origin files do not parse; name the broken file.
fn explain_load_failure(path: &Path, err: glib::Error) -> anyhow::Error {
    let deploy_root = path.join("ostree/deploy");
    let broken = std::fs::read_dir(&deploy_root)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|stateroot| {
            std::fs::read_dir(stateroot.path().join("deploy"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "origin"))
        .find_map(|origin| {
            let text = std::fs::read_to_string(&origin).ok()?;
            let keyfile = glib::KeyFile::new();
            let parse = keyfile.load_from_data(&text, glib::KeyFileFlags::NONE);
            parse.err().map(|e| (origin, e.message().to_string()))
        });
    match broken {
        Some((origin, reason)) => UserError::new(format!(
            "origin file {} is corrupt: {reason}",
            origin.display()
        ))
        .hint("fix it by hand: it needs `[origin]` with `refspec=REMOTE:REF`; nothing was changed")
        .into(),
        None => anyhow::Error::new(err).context(format!("Loading sysroot {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_error(err: &anyhow::Error) -> &UserError {
        err.downcast_ref::<UserError>()
            .unwrap_or_else(|| panic!("not a UserError: {err:#}"))
    }

    /// A directory with `ostree/deploy/<name>` for each of `stateroots`, and a stray file there.
    fn with_stateroots(stateroots: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let deploy = dir.path().join("ostree/deploy");
        std::fs::create_dir_all(&deploy).unwrap();
        for name in stateroots {
            std::fs::create_dir(deploy.join(name)).unwrap();
        }
        std::fs::write(deploy.join("not-a-stateroot"), "").unwrap();
        dir
    }

    #[test]
    fn opening_what_is_not_a_sysroot_says_what_to_pass() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nonesuch");
        let err = Sysroot::open(&missing, None).err().unwrap();
        assert_eq!(
            user_error(&err).message,
            format!("sysroot {} does not exist", missing.display())
        );
        assert_eq!(
            user_error(&err).hint.as_deref(),
            Some("pass --sysroot DIR naming an OSTree sysroot (a directory holding ostree/repo)")
        );

        let err = Sysroot::open(dir.path(), None).err().unwrap();
        assert_eq!(
            user_error(&err).message,
            format!(
                "{} is not an OSTree sysroot: it has no ostree/repo",
                dir.path().display()
            )
        );
    }

    #[test]
    fn stateroots_are_the_directories_under_ostree_deploy_sorted() {
        let dir = with_stateroots(&["testos", "fedora"]);
        assert_eq!(stateroots(dir.path()).unwrap(), ["fedora", "testos"]);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(stateroots(empty.path()).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_stateroot_asked_for_must_exist() {
        let dir = with_stateroots(&["fedora", "testos"]);
        // Not loaded: a stateroot asked for is picked without asking ostree what is booted.
        let ostree = ostree::Sysroot::new(Some(&gio::File::for_path(dir.path())));
        assert_eq!(
            pick_stateroot(dir.path(), &ostree, Some("testos")).unwrap(),
            "testos"
        );
        let err = pick_stateroot(dir.path(), &ostree, Some("rhel")).unwrap_err();
        assert_eq!(
            user_error(&err).message,
            format!("no stateroot rhel in {}", dir.path().display())
        );
        assert_eq!(
            user_error(&err).hint.as_deref(),
            Some("stateroots here: fedora, testos; pick one with --os")
        );

        let bare = with_stateroots(&[]);
        let ostree = ostree::Sysroot::new(Some(&gio::File::for_path(bare.path())));
        let err = pick_stateroot(bare.path(), &ostree, Some("rhel")).unwrap_err();
        assert_eq!(
            user_error(&err).hint.as_deref(),
            Some("this sysroot has no stateroot yet; create one with `ostree admin os-init`")
        );
    }

    #[test]
    fn a_load_failure_names_the_origin_file_that_does_not_parse() {
        let dir = with_stateroots(&["testos"]);
        let deployments = dir.path().join("ostree/deploy/testos/deploy");
        std::fs::create_dir_all(&deployments).unwrap();
        std::fs::write(
            deployments.join("aaa.0.origin"),
            "[origin]\nrefspec=vendor:os\n",
        )
        .unwrap();
        let failure = || glib::Error::new(gio::IOErrorEnum::Failed, "Parsing origin: bad key");

        let err = explain_load_failure(dir.path(), failure());
        assert!(err.downcast_ref::<UserError>().is_none(), "{err:#}");
        assert_eq!(
            format!("{err:#}"),
            format!(
                "Loading sysroot {}: Parsing origin: bad key",
                dir.path().display()
            )
        );

        let broken = deployments.join("bbb.0.origin");
        std::fs::write(&broken, "refspec outside any group\n").unwrap();
        let err = explain_load_failure(dir.path(), failure());
        let message = &user_error(&err).message;
        assert!(
            message.starts_with(&format!("origin file {} is corrupt: ", broken.display())),
            "{message}"
        );
    }
}
