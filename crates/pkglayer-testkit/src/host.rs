//! A whole test host in one call: a vendor publishing base version 1 and a sysroot deployed from it.

use std::path::Path;

use anyhow::Result;

use crate::package::TestPackage;
use crate::sysroot::TestSysroot;
use crate::vendor::{Vendor, base_packages, base_ref};

/// A vendor and a sysroot in a temporary directory, removed on drop.
pub struct TestHost {
    pub vendor: Vendor,
    pub sysroot: TestSysroot,
    /// The commit of base version 1, the first deployment.
    pub base_v1: String,
    dir: tempfile::TempDir,
}

impl TestHost {
    /// Publishes base version 1 of the standard base packages and deploys it.
    pub fn new() -> Result<Self> {
        Self::with_base(&base_packages("1"))
    }

    /// Publishes version 1 of a base made of `packages` and deploys it.
    pub fn with_base(packages: &[TestPackage]) -> Result<Self> {
        Self::with_base_prepared(packages, |_| Ok(()))
    }

    /// Like [`TestHost::with_base`], with `prepare` called on the sysroot's (empty, existing)
    /// directory before the sysroot is made in it, e.g. to mount a small filesystem there.
    pub fn with_base_prepared(
        packages: &[TestPackage],
        prepare: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let vendor = Vendor::create(&dir.path().join("vendor"))?;
        let base_v1 = vendor.publish(&base_ref(), "1", packages)?;
        let sysroot_dir = dir.path().join("sysroot");
        std::fs::create_dir_all(&sysroot_dir)?;
        prepare(&sysroot_dir)?;
        let sysroot = TestSysroot::create(&sysroot_dir, &vendor, &base_ref())?;
        Ok(TestHost {
            vendor,
            sysroot,
            base_v1,
            dir,
        })
    }

    /// Publishes base `version` and deploys it with `ostree admin upgrade`; returns its commit.
    pub fn upgrade_base(&self, version: &str) -> Result<String> {
        let commit = self
            .vendor
            .publish(&base_ref(), version, &base_packages(version))?;
        self.sysroot.admin_upgrade()?;
        Ok(commit)
    }

    /// A scratch directory beside the sysroot, removed with the host.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
