//! The OS vendor: an archive-mode OSTree repo where base OS trees made of test RPMs are committed.
//!
//! A base tree is built the way a compose tool builds one: the packages are installed with the real
//! `rpm` into a staging root (so the tree carries a real rpmdb at `usr/share/rpm`), `/etc` is moved to
//! `/usr/etc`, `/var` is dropped, and the result is committed with `ostree commit`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::command::run;
use crate::package::TestPackage;

/// The stateroot and ref every test kit base uses unless told otherwise.
pub const OSNAME: &str = "testos";
pub const REMOTE: &str = "vendor";
pub const KERNEL_VERSION: &str = "6.1.0-1.testos";

/// The ref a base is published on, e.g. `testos/x86_64/stable`.
pub fn base_ref() -> String {
    format!("{OSNAME}/{}/stable", crate::package::host_arch())
}

/// An archive-mode repo the sysroot pulls its base from.
pub struct Vendor {
    repo: PathBuf,
    scratch: PathBuf,
}

impl Vendor {
    /// Creates the vendor's repo under `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        let repo = dir.join("repo");
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(&scratch)?;
        run(Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(["init", "--mode=archive"]))?;
        Ok(Vendor { repo, scratch })
    }

    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// `file://` URL of the repo, for `ostree remote add`.
    pub fn url(&self) -> String {
        format!("file://{}", self.repo.display())
    }

    /// Commits a base tree made of `packages` on `refname` with metadata `version`; returns the commit.
    pub fn publish(
        &self,
        refname: &str,
        version: &str,
        packages: &[TestPackage],
    ) -> Result<String> {
        self.publish_with(refname, version, packages, |_| Ok(()))
    }

    /// Like [`Vendor::publish`], with `extra` adding files to the tree's root before the commit (files
    /// no package owns, e.g. to make a large base for benchmarks).
    pub fn publish_with(
        &self,
        refname: &str,
        version: &str,
        packages: &[TestPackage],
        extra: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<String> {
        self.publish_full(refname, version, packages, extra, &[])
    }

    /// Like [`Vendor::publish`], with string `metadata` added to the commit (e.g.
    /// `ostree.endoflife`).
    pub fn publish_with_metadata(
        &self,
        refname: &str,
        version: &str,
        packages: &[TestPackage],
        metadata: &[(&str, &str)],
    ) -> Result<String> {
        self.publish_full(refname, version, packages, |_| Ok(()), metadata)
    }

    fn publish_full(
        &self,
        refname: &str,
        version: &str,
        packages: &[TestPackage],
        extra: impl FnOnce(&Path) -> Result<()>,
        metadata: &[(&str, &str)],
    ) -> Result<String> {
        let work = tempfile::tempdir_in(&self.scratch)?;
        let rpms_dir = work.path().join("rpms");
        let root = work.path().join("root");
        std::fs::create_dir_all(&rpms_dir)?;
        std::fs::create_dir_all(&root)?;
        let rpms = packages
            .iter()
            .map(|p| p.write_to(&rpms_dir))
            .collect::<Result<Vec<_>>>()?;

        install_with_rpm(&root, &rpms)?;
        postprocess_tree(&root)?;
        extra(&root)?;

        let output = run(Command::new("ostree")
            .arg(format!("--repo={}", self.repo.display()))
            .arg("commit")
            .arg(format!("--branch={refname}"))
            .arg(format!("--tree=dir={}", root.display()))
            .arg(format!("--subject=TestOS {version}"))
            .arg(format!("--add-metadata-string=version={version}"))
            .args(
                metadata
                    .iter()
                    .map(|(key, value)| format!("--add-metadata-string={key}={value}")),
            )
            .args(["--owner-uid=0", "--owner-gid=0"]))?;
        Ok(output.trim().to_string())
    }
}

/// Where the static busybox the base OS ships as its shell comes from (Debian's busybox-static).
const HOST_BUSYBOX: &str = "/bin/busybox";

/// The packages of a minimal base OS at `version`: directory layout, users, os-release, a kernel,
/// and a real shell (a static busybox) so programs can run inside a deployment.
pub fn base_packages(version: &str) -> Vec<TestPackage> {
    base_packages_on_platform(version, None)
}

/// [`base_packages`] whose os-release names a module platform (`PLATFORM_ID="platform:el9"`), as
/// RHEL-family bases do.
pub fn base_packages_on_platform(version: &str, platform_id: Option<&str>) -> Vec<TestPackage> {
    let busybox = std::fs::read(HOST_BUSYBOX).unwrap_or_else(|err| {
        panic!("the test base OS needs a static busybox at {HOST_BUSYBOX} (Debian: busybox-static): {err}")
    });
    let release = format!("{version}.testos");
    let passwd = "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1:bin:/bin:/sbin/nologin\n\
                  nobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin\n";
    let group = "root:x:0:\nbin:x:1:\nwheel:x:10:\nnobody:x:65534:\n";
    let os_release = format!(
        "NAME=\"TestOS\"\nID=testos\nVERSION=\"{version}\"\nVERSION_ID={version}\n\
         PRETTY_NAME=\"TestOS {version}\"\n{}",
        platform_id.map_or(String::new(), |id| format!("PLATFORM_ID=\"{id}\"\n"))
    );
    vec![
        TestPackage::new("filesystem", &format!("3.18-{release}"))
            .dir("/usr")
            .dir("/usr/bin")
            .dir("/usr/lib")
            .dir("/usr/share")
            .dir("/usr/lib64")
            .dir("/etc")
            .symlink("/bin", "usr/bin")
            .symlink("/lib", "usr/lib")
            .symlink("/lib64", "usr/lib64"),
        TestPackage::new("setup", &format!("2.14-{release}"))
            .arch("noarch")
            .file("/etc/passwd", passwd)
            .file("/etc/group", group),
        TestPackage::new("testos-release", &format!("{version}-{release}"))
            .arch("noarch")
            .file("/usr/lib/os-release", os_release)
            .symlink("/etc/os-release", "../usr/lib/os-release"),
        // Like Fedora's bash, the shell provides /bin/sh, which scriptlets require.
        TestPackage::new("busybox", &format!("1.35.0-{release}"))
            .provides("/bin/sh")
            .executable("/usr/bin/busybox", busybox)
            .symlink("/usr/bin/sh", "busybox"),
        TestPackage::new("kernel-core", &format!("6.1.0-1.{version}"))
            .file(
                &format!("/usr/lib/modules/{KERNEL_VERSION}/vmlinuz"),
                format!("test kernel for TestOS {version}\n"),
            )
            .file(
                &format!("/usr/lib/modules/{KERNEL_VERSION}/initramfs.img"),
                "test initramfs\n",
            ),
    ]
}

/// Installs `rpms` into `root` with the real rpm, recording them in `root/usr/share/rpm`.
fn install_with_rpm(root: &Path, rpms: &[PathBuf]) -> Result<()> {
    run(Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/usr/share/rpm"])
        .args([
            "-i",
            "--nodeps",
            "--noscripts",
            "--notriggers",
            "--ignorearch",
            "--ignoreos",
        ])
        .args(rpms))
    .context("installing the base packages with rpm")?;
    Ok(())
}

/// Shapes an installed root the way OSTree wants it: `/etc` under `/usr`, no `/var`, and an rpmdb
/// that can be read from a read-only tree.
fn postprocess_tree(root: &Path) -> Result<()> {
    let etc = root.join("etc");
    if etc.exists() {
        std::fs::rename(&etc, root.join("usr/etc")).context("moving /etc to /usr/etc")?;
    }
    for transient in ["var", "run", "tmp"] {
        let path = root.join(transient);
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
    }
    finalize_rpmdb(&root.join("usr/share/rpm"))
}

/// rpm leaves its sqlite database in WAL mode; a read-only deployment needs `journal_mode=DELETE`
/// and no `-wal`/`-shm`/lock files.
///
/// The product does the same to the trees it composes (`pkglayer_core::rpmdb::finalize`, with
/// rusqlite). This is the vendor's side, done the way a compose script would, with the `sqlite3`
/// tool: the test kit does not call the product, so a test cannot pass because the product and the
/// base it is tested on were finalised by the same wrong code. It is the only finaliser the tests
/// use; [`rpmdb_journal_mode`] checks the product's result with the same tool.
fn finalize_rpmdb(dbdir: &Path) -> Result<()> {
    let db = dbdir.join("rpmdb.sqlite");
    let mode = run(Command::new("sqlite3")
        .arg(&db)
        .arg("PRAGMA journal_mode=DELETE;"))?;
    if mode.trim() != "delete" {
        bail!("{} stayed in journal_mode={}", db.display(), mode.trim());
    }
    for leftover in ["rpmdb.sqlite-wal", "rpmdb.sqlite-shm", ".rpm.lock"] {
        let path = dbdir.join(leftover);
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// The `journal_mode` of the rpm database in `dbdir` (e.g. a deployment's `usr/share/rpm`), read
/// with the `sqlite3` tool without writing anything: `delete` for a tree that is read-only.
pub fn rpmdb_journal_mode(dbdir: &Path) -> Result<String> {
    let mode = run(Command::new("sqlite3")
        .arg("-readonly")
        .arg(dbdir.join("rpmdb.sqlite"))
        .arg("PRAGMA journal_mode;"))?;
    Ok(mode.trim().to_string())
}
