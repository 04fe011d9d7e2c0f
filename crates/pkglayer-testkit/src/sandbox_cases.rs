//! What the script sandbox tests need beyond the standard base: a base with the real tools scripts
//! call (`systemctl`, rpm's macro expansion), and packages whose scripts carry rpm's `-e` flag.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::package::{TestPackage, host_arch};
use crate::repo::create_repo;
use crate::vendor::base_packages;

/// A macro only the test base's rpm configuration defines: seeing it expanded proves the image's
/// macros were used, not the machine's.
pub const BASE_MACRO: (&str, &str) = ("testos_vendor", "TestOS Vendor");

/// The standard base at `version`, plus this machine's `systemctl` and `rpm` (with every library
/// they load) and an rpm configuration of its own.
pub fn sandbox_base(version: &str) -> Vec<TestPackage> {
    let mut packages = base_packages(version);
    let (name, value) = BASE_MACRO;
    packages.push(
        TestPackage::new("sandbox-tools", &format!("1.0-{version}"))
            .host_programs(&["/usr/bin/systemctl", "/usr/bin/rpm"])
            .expect("this machine's systemctl and rpm")
            .file("/usr/lib/rpm/rpmrc", "")
            .file(
                "/usr/lib/rpm/macros",
                "%_prefix /usr\n%_datadir %{_prefix}/share\n%_sysconfdir /etc\n",
            )
            .file(
                "/usr/lib/rpm/macros.d/macros.testos",
                format!("%{name} {value}\n"),
            )
            .dir("/usr/lib/systemd/system")
            .dir("/etc/systemd/system"),
    );
    packages
}

/// A package `name-1.0-1` whose `%post` carries rpm's `-e` flag (`RPMSCRIPT_FLAG_EXPAND`), with an
/// empty directory `dir` for it to write into.
pub fn expanded_post_package(name: &str, dir: &str, body: &str) -> Result<rpm::Package> {
    let mut builder = rpm::PackageBuilder::new(
        name,
        "1.0",
        "MIT",
        host_arch(),
        &format!("{name} test package"),
    );
    builder
        .using_config(
            rpm::BuildConfig::v4()
                .compression(rpm::CompressionType::Gzip)
                .source_date(1_700_000_000u32),
        )
        .release("1")
        .with_dir_entry(rpm::FileOptions::dir(dir))?
        .post_install_script(
            rpm::Scriptlet::new(body)
                .prog(vec!["/bin/sh"])
                .flags(rpm::ScriptletFlags::EXPAND),
        );
    builder
        .build()
        .with_context(|| format!("building test package {name}"))
}

/// Adds `packages` to the rpm-md repo in `dir` (made by [`create_repo`]) and writes its metadata
/// again, with everything under `Packages/`.
pub fn add_to_repo(dir: &Path, packages: &[rpm::Package]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for package in packages {
        let metadata = &package.metadata;
        let path = dir.join("Packages").join(format!(
            "{}-{}-{}.{}.rpm",
            metadata.get_name()?,
            metadata.get_version()?,
            metadata.get_release()?,
            metadata.get_arch()?
        ));
        package
            .write_file(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    create_repo(dir, &[], "gz")?;
    Ok(written)
}
