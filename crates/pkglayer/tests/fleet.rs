//! Fleet: layered commits that are the same wherever they are made, lockfiles that pin a layer, and
//! hosts sharing one vendor base (two sysroots deployed from the same vendor repo, repos served
//! over HTTP on 127.0.0.1).

use std::path::{Path, PathBuf};
use std::process::Output;

mod support;

use pkglayer_testkit::{Script, TestPackage, TestSysroot, base_ref, fixtures, require_root};
use support::{Pkglayer, failure, ok};

type Host = support::host::RepoHost;

/// strace and its dependencies, and a package whose `%post` writes a file into `/usr`.
fn packages() -> Vec<TestPackage> {
    let mut packages = fixtures::strace_with_dependencies();
    packages.push(
        TestPackage::new("postwriter", "1.0-1")
            .file("/usr/share/postwriter/input", "x\n")
            .script(
                Script::Post,
                "cp /usr/share/postwriter/input /usr/share/postwriter/output\n",
            ),
    );
    packages
}

/// A second sysroot on the same vendor base as `h`, with `h`'s repos.
struct Other {
    sysroot: TestSysroot,
    reposdir: PathBuf,
}

impl Other {
    fn of(h: &Host) -> Self {
        let dir = h.host.dir().join("other");
        std::fs::create_dir_all(&dir).unwrap();
        let sysroot = TestSysroot::create(&dir, &h.host.vendor, &base_ref()).unwrap();
        Other {
            sysroot,
            reposdir: h.reposdir.clone(),
        }
    }

    fn pkglayer(&self, args: &[&str]) -> Output {
        self.command(args).output()
    }

    fn command(&self, args: &[&str]) -> Pkglayer {
        Pkglayer::new(&self.sysroot.path)
            .args(args)
            .reposdir(&self.reposdir)
    }

    fn deployments(&self) -> Vec<String> {
        let status = self.sysroot.admin_status().unwrap();
        status.into_iter().map(|e| e.checksum).collect()
    }

    fn newest(&self) -> PathBuf {
        self.sysroot.deployment_dirs().unwrap()[0].clone()
    }
}

fn rpm_qa(sysroot: &TestSysroot, dir: &Path) -> Vec<String> {
    let mut list = sysroot.rpm_qa(dir).unwrap();
    list.sort();
    list
}

#[test]
fn the_same_base_and_packages_give_the_same_commit_on_two_machines() {
    require_root!();
    let h = Host::serving(packages());
    let other = Other::of(&h);
    ok(&h.pkglayer(&["install", "strace", "postwriter"]));
    // Another second on the clock, another machine (its own package cache, its own deployments).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(&other.pkglayer(&["install", "postwriter", "strace"]));
    let here = &h.deployments()[0];
    let there = &other.deployments()[0];
    assert_ne!(here, &h.host.base_v1);
    assert_eq!(here, there, "the layered commits differ");
    assert!(
        h.newest().join("usr/share/postwriter/output").exists(),
        "the script ran"
    );
    assert_eq!(
        rpm_qa(&h.host.sysroot, &h.newest()),
        rpm_qa(&other.sysroot, &other.newest())
    );
}

#[test]
fn source_date_epoch_sets_the_time_of_the_layered_commit() {
    require_root!();
    let h = Host::serving(packages());
    ok(&h
        .command(&["install", "strace"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output());
    let commit = &h.deployments()[0];
    let log = h.host.sysroot.ostree(&["log", commit]).unwrap();
    assert!(log.contains("2023-11-14"), "{log}");

    let bad = h
        .command(&["install", "postwriter"])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output();
    let err = failure(&bad);
    assert!(err.contains("SOURCE_DATE_EPOCH=yesterday"), "{err}");
}
