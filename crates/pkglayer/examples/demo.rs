//! The built-in demo: a vendor publishes a small OS, a host deploys it, and pkglayer layers a package
//! with its dependency from a repo served on 127.0.0.1, runs it inside the new deployment, removes it
//! and rolls back. Everything is real (libostree, libsolv, rpm, bubblewrap); nothing outside `WORKDIR`
//! is touched.
//!
//! Usage: `demo PKGLAYER_BINARY WORKDIR` (scripts/demo passes both).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use pkglayer_testkit::{
    RepoServer, TEST_ENV, TestPackage, TestSysroot, Vendor, base_packages, base_ref, create_repo,
};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [binary, workdir] = args.as_slice() else {
        bail!("usage: demo PKGLAYER_BINARY WORKDIR");
    };
    let binary = std::fs::canonicalize(binary).context("finding the pkglayer binary")?;
    let workdir = PathBuf::from(workdir);
    if workdir.exists() {
        // Deployments of an earlier run may carry the immutable bit.
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(&workdir)
            .status();
        std::fs::remove_dir_all(&workdir)
            .with_context(|| format!("removing the previous demo in {}", workdir.display()))?;
    }
    std::fs::create_dir_all(&workdir)?;
    let workdir = std::fs::canonicalize(&workdir)?;

    narrate("The vendor publishes TestOS 1: a base tree made of RPMs, with a real rpmdb.");
    let vendor = Vendor::create(&workdir.join("vendor"))?;
    let v1 = vendor.publish(&base_ref(), "1", &base_packages("1"))?;
    println!("  {} -> commit {v1}", base_ref());

    narrate(
        "A host deploys it with `ostree admin deploy` (an offline sysroot: nothing is booted).",
    );
    let sysroot = TestSysroot::create(&workdir.join("sysroot"), &vendor, &base_ref())?;
    println!("  sysroot: {}", sysroot.path.display());

    narrate(
        "A package repo, served over HTTP on 127.0.0.1, offers `hello`, which needs `libgreeting`.",
    );
    let www = workdir.join("www");
    create_repo(&www.join("repo"), &repo_packages(), "zstd")?;
    let server = RepoServer::serve(&www)?;
    let first = &sysroot.deployment_dirs()?[0];
    let repos_d = first.join("etc/yum.repos.d");
    std::fs::create_dir_all(&repos_d)?;
    let repo_file = format!(
        "[demo]\nname=Demo packages\nbaseurl={}\ngpgcheck=0\n",
        server.url("repo/")
    );
    std::fs::write(repos_d.join("demo.repo"), &repo_file)?;
    println!("  /etc/yum.repos.d/demo.repo:\n{}", indent(&repo_file));

    let pkglayer = |args: &[&str]| run_pkglayer(&binary, &sysroot.path, args);
    pkglayer(&["status"])?;

    narrate(
        "Layer `hello`: resolved against the base's rpmdb, fetched, imported, composed, deployed.",
    );
    pkglayer(&["install", "hello"])?;
    pkglayer(&["status"])?;

    narrate("The new deployment has one rpm database; the real rpm sees the layered packages:");
    let layered = sysroot.deployment_dirs()?[0].clone();
    show(Command::new("rpm").arg("--root").arg(&layered).args([
        "--dbpath",
        "/usr/share/rpm",
        "-q",
        "hello",
        "libgreeting",
        "setup",
    ]))?;

    narrate("hello's %post ran in a sandbox while layering; its /etc file is in the deployment:");
    show(Command::new("cat").arg(layered.join("etc/hello.conf")))?;

    narrate("Run the layered program inside the new deployment (bubblewrap, no network):");
    show(
        Command::new("bwrap")
            .arg("--bind")
            .arg(&layered)
            .arg("/")
            .args([
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--unshare-all",
                "/usr/bin/hello",
            ]),
    )?;

    narrate("Uninstall it: the layer is derived again from the base, so libgreeting goes too.");
    pkglayer(&["uninstall", "hello"])?;
    pkglayer(&["status"])?;

    narrate("Changed our mind: roll back to the deployment with `hello` for the next boot.");
    pkglayer(&["rollback"])?;
    pkglayer(&["status"])?;

    narrate(&format!(
        "Done ({} HTTP requests served). The sysroot stays in {} for a look around.",
        server.requests().len(),
        workdir.display()
    ));
    Ok(())
}

fn repo_packages() -> Vec<TestPackage> {
    vec![
        TestPackage::new("hello", "2.12-1")
            .requires("libgreeting >= 1.0")
            .executable(
                "/usr/bin/hello",
                "#!/bin/sh\necho \"$(cat /usr/share/greeting/message) (from a layered package)\"\n",
            )
            // Runs in the sandbox at layering time; what it writes is part of the deployment.
            .script(
                pkglayer_testkit::Script::Post,
                "echo \"greeting=hello (written by %post, instance $1)\" > /etc/hello.conf",
            ),
        TestPackage::new("libgreeting", "1.0-3")
            .file("/usr/share/greeting/message", "Hello, world!"),
    ]
}

fn narrate(text: &str) {
    println!("\n== {text}");
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Runs a command, echoing it first, with its output shown as is.
fn show(command: &mut Command) -> Result<()> {
    let line: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!("\n$ {}", line.join(" "));
    let status = command
        .status()
        .with_context(|| format!("running {}", line[0]))?;
    if !status.success() {
        bail!("{} failed: {status}", line.join(" "));
    }
    Ok(())
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
