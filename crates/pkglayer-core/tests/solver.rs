//! Resolution with libsolv against a real base rpmdb (read from a vendor commit) and a real rpm-md
//! repo made by createrepo_c.

use std::path::PathBuf;
use std::process::Command;

use pkglayer_core::repo::Repomd;
use pkglayer_core::rpmdb;
use pkglayer_core::solver::{RepoSource, Resolver, SolveError};
use pkglayer_testkit::{TestPackage, Vendor, base_packages, base_ref, host_arch, run};

struct Fixture {
    _dir: tempfile::TempDir,
    base_root: PathBuf,
    primary: PathBuf,
    filelists: PathBuf,
}

/// Base v1 from the test kit, and a repo with a small dependency graph.
fn fixture(repo_packages: &[TestPackage]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let vendor = Vendor::create(&dir.path().join("vendor")).unwrap();
    let commit = vendor
        .publish(&base_ref(), "1", &base_packages("1"))
        .unwrap();
    let ostree_repo = ostree::Repo::new_for_path(vendor.repo());
    ostree_repo.open(ostree::gio::Cancellable::NONE).unwrap();
    let base_root = dir.path().join("base");
    rpmdb::checkout_rpmdb(&ostree_repo, &commit, &base_root).unwrap();

    let repo_dir = dir.path().join("repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    for package in repo_packages {
        package.write_to(&repo_dir).unwrap();
    }
    run(Command::new("createrepo_c").arg("--quiet").arg(&repo_dir)).unwrap();
    // The index createrepo_c wrote names each file with its checksum; check both as a real fetch will.
    let repomd =
        Repomd::parse(&std::fs::read_to_string(repo_dir.join("repodata/repomd.xml")).unwrap())
            .unwrap();
    let find = |kind: &str| -> PathBuf {
        let record = repomd.record(kind).unwrap();
        let path = repo_dir.join(&record.location);
        record.checksum.verify_file(&path).unwrap();
        path
    };
    Fixture {
        primary: find("primary"),
        filelists: find("filelists"),
        base_root,
        _dir: dir,
    }
}

fn resolver(fixture: &Fixture) -> Resolver {
    let mut resolver = Resolver::new(host_arch());
    resolver.add_base_rpmdb(&fixture.base_root, None).unwrap();
    resolver
        .add_repo(&RepoSource {
            id: "test".into(),
            primary: fixture.primary.clone(),
            filelists: Some(fixture.filelists.clone()),
            priority: 99,
            cost: 1000,
            solv_cache: None,
            exclude: Vec::new(),
            includepkgs: Vec::new(),
        })
        .unwrap();
    resolver
}

fn names(resolver: &mut Resolver, requests: &[&str]) -> Result<Vec<String>, SolveError> {
    let requests: Vec<String> = requests.iter().map(|s| s.to_string()).collect();
    resolver
        .resolve(&requests, false, false)
        .map(|planned| planned.iter().map(|p| p.nevra.to_string()).collect())
        .map_err(|e| e.downcast::<SolveError>().unwrap())
}

fn repo_packages() -> Vec<TestPackage> {
    vec![
        TestPackage::new("strace", "6.1-1")
            .requires("libfoo >= 2")
            .requires("/usr/bin/helper")
            .executable("/usr/bin/strace", "#!/bin/sh\n"),
        TestPackage::new("libfoo", "1.0-1").file("/usr/lib/libfoo.so.1", "v1"),
        TestPackage::new("libfoo", "2.3-1").file("/usr/lib/libfoo.so.2", "v2"),
        TestPackage::new("helper-tools", "1.0-1").executable("/usr/bin/helper", "#!/bin/sh\n"),
        TestPackage::new("editor", "9.0-1").provides("text-editor"),
        TestPackage::new("needs-missing", "1.0-1").requires("does-not-exist"),
        TestPackage::new("kernel-breaker", "1.0-1").conflicts("kernel-core"),
    ]
}

#[test]
fn resolves_versioned_file_and_virtual_dependencies_against_the_base() {
    let fixture = fixture(&repo_packages());
    let mut resolver = resolver(&fixture);
    let arch = host_arch();
    assert_eq!(
        names(&mut resolver, &["strace"]).unwrap(),
        [
            format!("helper-tools-1.0-1.{arch}"),
            format!("libfoo-2.3-1.{arch}"),
            format!("strace-6.1-1.{arch}"),
        ]
    );
    assert_eq!(
        names(&mut resolver, &["text-editor"]).unwrap(),
        [format!("editor-9.0-1.{arch}")]
    );
    assert_eq!(
        names(&mut resolver, &["/usr/bin/helper"]).unwrap(),
        [format!("helper-tools-1.0-1.{arch}")]
    );
    assert_eq!(
        names(&mut resolver, &["libfoo-1.0"]).unwrap(),
        [format!("libfoo-1.0-1.{arch}")]
    );
}

#[test]
fn problems_name_the_request() {
    let fixture = fixture(&repo_packages());
    let mut resolver = resolver(&fixture);

    assert_eq!(
        names(&mut resolver, &["nonesuch"]).unwrap_err(),
        SolveError::NotFound {
            request: "nonesuch".into()
        }
    );
    let SolveError::AlreadyInBase { request, package } =
        names(&mut resolver, &["setup"]).unwrap_err()
    else {
        panic!("expected AlreadyInBase");
    };
    assert_eq!(request, "setup");
    assert!(package.starts_with("setup-2.14-1.testos"), "{package}");

    let err = names(&mut resolver, &["needs-missing"]).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("nothing provides does-not-exist"),
        "{message}"
    );
    assert!(message.contains("needs-missing-1.0-1"), "{message}");

    let message = names(&mut resolver, &["kernel-breaker"])
        .unwrap_err()
        .to_string();
    assert!(message.contains("kernel-breaker-1.0-1"), "{message}");
    assert!(message.contains("kernel-core"), "{message}");
}
