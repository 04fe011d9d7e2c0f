//! The built-in demo: a vendor publishes a small OS, a sysroot deploys it, and pkglayer shows and
//! manages its deployments. Everything is real (libostree, rpm); nothing outside `WORKDIR` is touched.
//!
//! Usage: `demo PKGLAYER_BINARY WORKDIR` (scripts/demo passes both).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use pkglayer_testkit::{TEST_ENV, TestSysroot, Vendor, base_packages, base_ref};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [binary, workdir] = args.as_slice() else {
        bail!("usage: demo PKGLAYER_BINARY WORKDIR");
    };
    let binary = std::fs::canonicalize(binary).context("finding the pkglayer binary")?;
    let workdir = PathBuf::from(workdir);
    if workdir.exists() {
        std::fs::remove_dir_all(&workdir)
            .with_context(|| format!("removing the previous demo in {}", workdir.display()))?;
    }
    std::fs::create_dir_all(&workdir)?;
    let workdir = std::fs::canonicalize(&workdir)?;

    narrate("The vendor publishes TestOS 1: a base tree made of four RPMs, with a real rpmdb.");
    let vendor = Vendor::create(&workdir.join("vendor"))?;
    let v1 = vendor.publish(&base_ref(), "1", &base_packages("1"))?;
    println!("  {} -> commit {v1}", base_ref());

    narrate(
        "A host deploys it with `ostree admin deploy` (an offline sysroot: nothing is booted).",
    );
    let sysroot = TestSysroot::create(&workdir.join("sysroot"), &vendor, &base_ref())?;
    println!("  sysroot: {}", sysroot.path.display());

    let pkglayer = |args: &[&str]| run_pkglayer(&binary, &sysroot.path, args);
    pkglayer(&["status"])?;
    narrate("The packages of the deployment, read from the commit's rpm database:");
    pkglayer(&["db", "list"])?;

    narrate("The vendor publishes TestOS 2; the host upgrades with `ostree admin upgrade`.");
    vendor.publish(&base_ref(), "2", &base_packages("2"))?;
    sysroot.admin_upgrade()?;
    pkglayer(&["status"])?;

    narrate("Version 2 turns out bad: roll back to version 1 for the next boot.");
    pkglayer(&["rollback"])?;
    pkglayer(&["status"])?;

    narrate("Drop the rollback deployment (version 2) for good.");
    pkglayer(&["cleanup", "--rollback"])?;
    pkglayer(&["status", "--json"])?;

    narrate(&format!(
        "Done. The sysroot stays in {} for a look around.",
        workdir.display()
    ));
    Ok(())
}

fn narrate(text: &str) {
    println!("\n== {text}");
}

/// Runs pkglayer on the demo sysroot, echoing the command line as a user would type it.
fn run_pkglayer(binary: &Path, sysroot: &Path, args: &[&str]) -> Result<()> {
    println!(
        "\n$ pkglayer --sysroot {} {}",
        sysroot.display(),
        args.join(" ")
    );
    let status = Command::new(binary)
        .arg("--sysroot")
        .arg(sysroot)
        .args(args)
        .envs(TEST_ENV)
        .status()
        .context("running pkglayer")?;
    if !status.success() {
        bail!("pkglayer {} failed: {status}", args.join(" "));
    }
    Ok(())
}
