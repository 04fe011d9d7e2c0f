//! Test support for pkglayer, built only from real components.
//!
//! - [`TestPackage`]: RPMs built in-process with the `rpm` crate (also in the old v3-signature
//!   format, [`TestPackage::write_v3_to`]);
//! - [`Vendor`]: an archive-mode OSTree repo with base OS trees made of those RPMs (real rpmdb);
//! - [`create_repo`] and [`RepoServer`]: rpm-md repos by createrepo_c, served over HTTP on 127.0.0.1;
//! - [`TestSysroot`]: a sysroot made with real `ostree admin`, deployed from the vendor, with helpers
//!   to read deployments back (origin, files, `rpm -qa`, `ostree admin status`).

mod command;
mod host;
mod legacy;
mod package;
mod repo;
mod server;
mod signing;
mod sysroot;
mod vendor;

pub use command::{TEST_ENV, run};
pub use host::TestHost;
pub use package::{Script, TestPackage, host_arch};
pub use repo::{create_repo, edit_metadata};
pub use server::{Fault, RepoServer};
pub use signing::SigningKey;
pub use sysroot::{AdminStatusEntry, TestSysroot};
pub use vendor::{KERNEL_VERSION, OSNAME, REMOTE, Vendor, base_packages, base_ref, finalize_rpmdb};
