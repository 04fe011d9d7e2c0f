//! Test support for pkglayer, built only from real components.
//!
//! - [`TestPackage`]: RPMs built in-process with the `rpm` crate (also in the old v3-signature
//!   format, [`TestPackage::write_v3_to`]);
//! - [`Vendor`]: an archive-mode OSTree repo with base OS trees made of those RPMs (real rpmdb);
//! - [`create_repo`] and [`RepoServer`]: rpm-md repos by createrepo_c, served over HTTP on 127.0.0.1;
//! - [`TestSysroot`]: a sysroot made with real `ostree admin`, deployed from the vendor, with helpers
//!   to read deployments back (origin, files, `rpm -qa`, `ostree admin status`);
//! - [`fixtures`]: package graphs several tests share;
//! - [`random_bytes`] and [`distro_packages`]: incompressible content and a distribution-shaped
//!   base, for benchmarks;
//! - [`require_root!`]: tests that need root skip, saying so, when run without it.
//!
//! The test kit does not depend on `pkglayer-core`: it plays the vendor and the repo, and a test
//! must not pass because the product and its fixture share a bug.

mod bulk;
mod command;
pub mod fixtures;
mod host;
mod legacy;
mod modules;
mod package;
pub mod payload_cases;
mod repo;
mod root;
pub mod sandbox_cases;
mod server;
mod signing;
mod sysroot;
mod vendor;

pub use bulk::{distro_packages, random_bytes, write_unowned_files};
pub use command::{TEST_ENV, run};
pub use host::TestHost;
pub use modules::{TestModule, add_modules, module_defaults};
pub use package::{Script, TestPackage, host_arch};
pub use repo::{create_repo, edit_metadata};
pub use root::{NEEDS_ROOT, is_root};
pub use server::{Fault, RepoServer};
pub use signing::SigningKey;
pub use sysroot::{AdminStatusEntry, LockHolder, TestSysroot};
pub use vendor::{
    KERNEL_VERSION, OSNAME, REMOTE, Vendor, base_packages, base_packages_on_platform, base_ref,
    rpmdb_journal_mode,
};
