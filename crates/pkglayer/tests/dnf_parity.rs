//! Parity with dnf: the same base rpmdb, the same repos, the same requests; our transaction must be
//! dnf's. dnf runs through its Python API (`support/dnf_resolve.py`, Debian's python3-dnf) with
//! `--installroot` semantics and `%_dbpath` pointed at the base's rpmdb.

use std::path::Path;

mod support;

use pkglayer_testkit::{RepoServer, TestHost, TestPackage, create_repo, fixtures, require_root};
use support::Pkglayer;

/// The shared resolution repo, and what else dnf and pkglayer must agree on: epochs, weak
/// dependencies, providers of a virtual name, versioned requirements on the base, renames.
fn main_repo() -> Vec<TestPackage> {
    let mut packages = fixtures::resolution_repo();
    packages.extend([
        TestPackage::new("tzdata", "1:2023c-1").arch("noarch"),
        TestPackage::new("tzdata", "2024a-1").arch("noarch"),
        TestPackage::new("desktop", "1.0-1")
            .recommends("fonts")
            .recommends("not-anywhere"),
        TestPackage::new("fonts", "2.0-1").arch("noarch"),
        TestPackage::new("tool", "2.0-1"),
        TestPackage::new("mailer", "1.0-1").requires("mta"),
        TestPackage::new("postfix", "3.8-1").provides("mta"),
        TestPackage::new("needs-base", "1.0-1").requires("setup >= 2"),
        TestPackage::new("needs-newer-base", "1.0-1").requires("setup >= 99"),
        // Renames: dnf installs what obsoletes the package asked for.
        TestPackage::new("oldname", "1.0-1"),
        TestPackage::new("newname", "2.0-1")
            .obsoletes("oldname")
            .provides("oldname"),
        TestPackage::new("legacy", "1.0-1"),
        TestPackage::new("modern", "1.0-1").obsoletes("legacy"),
    ]);
    packages
}

/// A second repo with a better priority: its older `tool` wins over the main repo's newer one.
fn priority_repo() -> Vec<TestPackage> {
    vec![TestPackage::new("tool", "1.0-1")]
}

const SCENARIOS: &[&[&str]] = &[
    &["strace"],
    &["text-editor"],
    &["/usr/bin/helper"],
    &["libfoo-1.0"],
    &["/usr/lib64/libfoo.so.2"],
    &["manual-reader"],
    &["libfoo"],
    &["helper-tools", "vim-minimal"],
    &["tzdata"],
    &["desktop"],
    &["tool"],
    &["mailer"],
    &["needs-base"],
    &["oldname"],
    &["legacy"],
    &["needs-newer-base"],
    &["needs-missing"],
    &["nonesuch"],
    &["kernel-breaker"],
];

#[test]
fn transactions_match_dnf() {
    require_root!();
    let host = TestHost::new().unwrap();
    let www = host.dir().join("www");
    create_repo(&www.join("main"), &main_repo(), "gz").unwrap();
    create_repo(&www.join("preferred"), &priority_repo(), "gz").unwrap();
    let server = RepoServer::serve(&www).unwrap();
    let reposdir = host.dir().join("repos.d");
    std::fs::create_dir_all(&reposdir).unwrap();
    std::fs::write(
        reposdir.join("test.repo"),
        format!(
            "[everything]\nbaseurl={}\ngpgcheck=0\n\n[preferred]\nbaseurl={}\npriority=10\ngpgcheck=0\n",
            server.url("main/"),
            server.url("preferred/")
        ),
    )
    .unwrap();

    let deployment = &host.sysroot.deployment_dirs().unwrap()[0];
    let (installroot, home) = support::dnf::installroot(host.dir(), deployment);

    let mut disagreements = Vec::new();
    for requests in SCENARIOS {
        let ours = ours(&host.sysroot.path, &reposdir, requests);
        let dnf = support::dnf::transaction(&installroot, &home, &reposdir, requests);
        let agree = match (&ours, &dnf) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !agree {
            disagreements.push(format!(
                "{requests:?}:\n  pkglayer: {ours:?}\n  dnf:      {dnf:?}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Our transaction: sorted NEVRAs, or the error text.
fn ours(sysroot: &Path, reposdir: &Path, requests: &[&str]) -> Result<Vec<String>, String> {
    support::dnf::planned(
        &Pkglayer::new(sysroot)
            .args(["install", "--dry-run", "--json"])
            .args(requests)
            .reposdir(reposdir)
            .output(),
    )
}
