//! Where a layering reads and writes: the OSTree repo (package cache, bases, the layered commit),
//! the cache and state folders, the host's `/etc` (repo files, dnf variables and module state) and
//! the checkouts the scripts' sandbox can stack on. On a host these are the sysroot's
//! ([`crate::Sysroot::workspace`]); on a build machine (`compose`) a folder of their own, with no
//! host `/etc` and no deployments.

use std::path::{Path, PathBuf};

use crate::layout::{Cache, State};
use crate::scripts::Checkout;

/// The places a layering works in.
pub struct Workspace {
    repo: ostree::Repo,
    cache: Cache,
    state: State,
    etc: Option<PathBuf>,
    checkouts: Vec<Checkout>,
}

impl Workspace {
    /// A workspace of its own parts.
    pub(crate) fn new(
        repo: ostree::Repo,
        cache: Cache,
        state: State,
        etc: Option<PathBuf>,
        checkouts: Vec<Checkout>,
    ) -> Self {
        Workspace {
            repo,
            cache,
            state,
            etc,
            checkouts,
        }
    }

    /// The repo packages are imported into and the layered commit is written to.
    pub(crate) fn repo(&self) -> ostree::Repo {
        self.repo.clone()
    }

    /// Repo metadata, base rpmdb copies, solver caches, downloads.
    pub(crate) fn cache(&self) -> &Cache {
        &self.cache
    }

    /// What outlives caches: the user and group IDs layering gave out.
    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// The host's `/etc` (the current deployment's); `None` on a build machine.
    pub(crate) fn etc(&self) -> Option<&Path> {
        self.etc.as_deref()
    }

    /// Checked-out trees the scripts' sandbox can stack on: those of `base_commit` first.
    pub(crate) fn checkouts(&self, base_commit: &str) -> Vec<Checkout> {
        let mut checkouts = self.checkouts.clone();
        checkouts.sort_by_key(|checkout| checkout.commit != base_commit);
        checkouts
    }
}
