//! Makes the host for `bench/layer`, `bench/scripts` and `bench/base`: a base OS with `N` extra
//! files (in directories of 100), a sysroot deployed from it, and a repo with `app`, which needs
//! `liba` and `libb`, and `app-scripted`, the same with `%post` and `%posttrans` scripts. All in
//! `DIR`.
//!
//! With `PACKAGES` (and `FILES`, default 100), the base also has that many distribution-shaped
//! packages (the test kit's `distro_packages`: ~`FILES` files each, dependencies between them)
//! installed with the real rpm, so its rpmdb has the size of a real distribution's; `app` and
//! `app-scripted` then also require the soname of the last of them.
//!
//! Usage: `bench_layer_host DIR N [PACKAGES [FILES]]`; prints the sysroot path.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use pkglayer_testkit::{
    Script, TestPackage, TestSysroot, Vendor, base_packages, base_ref, create_repo,
    distro_packages, write_unowned_files,
};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, count, distro, files) = match args.as_slice() {
        [dir, count] => (dir, count, "0", "100"),
        [dir, count, distro] => (dir, count, distro.as_str(), "100"),
        [dir, count, distro, files] => (dir, count, distro.as_str(), files.as_str()),
        _ => bail!("usage: bench_layer_host DIR N [PACKAGES [FILES]]"),
    };
    let count: usize = count.parse().context("N is a number")?;
    let distro: usize = distro.parse().context("PACKAGES is a number")?;
    let files: usize = files.parse().context("FILES is a number")?;
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let dir = std::fs::canonicalize(dir)?;

    let vendor = Vendor::create(&dir.join("vendor"))?;
    let mut base = base_packages("1");
    base.extend(distro_packages(distro, files));
    vendor.publish_with(&base_ref(), "1", &base, |root| {
        Ok(write_unowned_files(root, count)?)
    })?;
    let sysroot = TestSysroot::create(&dir.join("sysroot"), &vendor, &base_ref())?;

    let lib = |name: &str| {
        TestPackage::new(name, "1.0-1")
            .file(&format!("/usr/lib64/{name}.so.1"), format!("{name}\n"))
    };
    // On a distribution-shaped base, the apps also need something of it.
    let from_base = |package: TestPackage| match distro {
        0 => package,
        n => package.requires(&format!("libdistro{}.so.1()(64bit)", n - 1)),
    };
    let packages = [
        from_base(TestPackage::new("app", "1.0-1"))
            .requires("liba")
            .requires("libb")
            .executable("/usr/bin/app", "#!/bin/sh\necho app\n"),
        from_base(TestPackage::new("app-scripted", "1.0-1"))
            .requires("liba")
            .requires("libb")
            .executable("/usr/bin/app-scripted", "#!/bin/sh\necho app\n")
            .script(
                Script::Post,
                "echo \"configured $1\" > /etc/app-scripted.conf",
            )
            .script(
                Script::PostTrans,
                "mkdir -p /usr/share/app-scripted && echo done > /usr/share/app-scripted/stamp",
            ),
        lib("liba"),
        lib("libb"),
    ];
    create_repo(&dir.join("repo"), &packages, "zstd")?;
    let repos = dir.join("repos.d");
    std::fs::create_dir_all(&repos)?;
    std::fs::write(
        repos.join("bench.repo"),
        format!(
            "[bench]\nbaseurl=file://{}/repo/\ngpgcheck=0\n",
            dir.display()
        ),
    )?;
    println!("{}", sysroot.path.display());
    Ok(())
}
