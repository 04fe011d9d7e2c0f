//! Resolution with libsolv against a real base rpmdb (read from a vendor commit) and a real rpm-md
//! repo made by createrepo_c.
//!
//! The obsoletes cases were checked against dnf 4.14 (Debian's python3-dnf, `dnf install` on the
//! same base rpmdb and repo); where dnf 4 and dnf 5 differ, the test says so.

use std::path::PathBuf;
use std::process::Command;

use pkglayer_core::repo::Repomd;
use pkglayer_core::rpmdb;
use pkglayer_core::solver::{
    ProblemKind, RepoSource, Request, Resolution, Resolver, SolveError, UnknownRequest,
};
use pkglayer_testkit::{
    TestPackage, Vendor, base_packages, base_ref, fixtures, host_arch, require_root, run,
};

struct Fixture {
    _dir: tempfile::TempDir,
    base_root: PathBuf,
    primary: PathBuf,
    filelists: PathBuf,
}

/// Base v1 from the test kit, and a repo of `repo_packages`.
fn fixture(repo_packages: &[TestPackage]) -> Fixture {
    fixture_with_base(Vec::new(), repo_packages)
}

/// Base v1 from the test kit with `extra_base` packages, and a repo of `repo_packages`.
fn fixture_with_base(extra_base: Vec<TestPackage>, repo_packages: &[TestPackage]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let vendor = Vendor::create(&dir.path().join("vendor")).unwrap();
    let mut base = base_packages("1");
    base.extend(extra_base);
    let commit = vendor.publish(&base_ref(), "1", &base).unwrap();
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

/// The packages for new requests (which may not be inactive), as NEVRAs; nothing else may come back.
/// A request that matches nothing, with the names it may have meant.
fn unknown(spec: &str, did_you_mean: &[&str]) -> UnknownRequest {
    UnknownRequest {
        in_module_streams: Vec::new(),
        spec: spec.into(),
        did_you_mean: did_you_mean.iter().map(|n| n.to_string()).collect(),
    }
}

fn names(resolver: &mut Resolver, requests: &[&str]) -> Result<Vec<String>, SolveError> {
    let requests: Vec<Request> = requests.iter().map(|s| Request::new(*s, false)).collect();
    let outcome = outcome(resolver, &requests)?;
    assert_eq!(
        (outcome.inactive.as_slice(), outcome.obsoleted.as_slice()),
        (&[][..], &[][..])
    );
    Ok(outcome.packages)
}

/// A [`Resolution`] in strings, to compare whole.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    packages: Vec<String>,
    /// (request, base package)
    inactive: Vec<(String, String)>,
    /// (request, obsoleted by)
    obsoleted: Vec<(String, String)>,
}

impl From<Resolution> for Outcome {
    fn from(resolution: Resolution) -> Self {
        Outcome {
            packages: resolution
                .packages
                .iter()
                .map(|p| p.nevra.to_string())
                .collect(),
            inactive: resolution
                .inactive
                .into_iter()
                .map(|i| (i.request, i.base_package.to_string()))
                .collect(),
            obsoleted: resolution
                .obsoleted
                .into_iter()
                .map(|o| (o.request, o.obsoleted_by.to_string()))
                .collect(),
        }
    }
}

fn outcome(resolver: &mut Resolver, requests: &[Request]) -> Result<Outcome, SolveError> {
    resolver
        .resolve_requests(requests, false)
        .map(Outcome::from)
        .map_err(|e| e.downcast::<SolveError>().unwrap())
}

/// The expected [`Outcome`]; NEVRAs without their arch get the host's.
fn expect(packages: &[&str], inactive: &[(&str, &str)], obsoleted: &[(&str, &str)]) -> Outcome {
    let pairs = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(request, nevra)| (request.to_string(), with_arch(nevra)))
            .collect()
    };
    Outcome {
        packages: packages.iter().map(|n| with_arch(n)).collect(),
        inactive: pairs(inactive),
        obsoleted: pairs(obsoleted),
    }
}

/// `name-version-release` gets the host arch; a NEVRA ending in `.noarch` stays as it is.
fn with_arch(nevra: &str) -> String {
    if nevra.ends_with(".noarch") {
        nevra.to_string()
    } else {
        format!("{nevra}.{}", host_arch())
    }
}

/// A request that was not in the origin before (no `--allow-inactive`).
fn new(spec: &str) -> Request {
    Request::new(spec, false)
}

/// A request that may be inactive: already in the origin, or new with `--allow-inactive`.
fn kept(spec: &str) -> Request {
    Request::new(spec, true)
}

#[test]
fn resolves_versioned_file_and_virtual_dependencies_against_the_base() {
    require_root!();
    let fixture = fixture(&fixtures::resolution_repo());
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
        [format!("vim-minimal-9.0-1.{arch}")]
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
    require_root!();
    let fixture = fixture(&fixtures::resolution_repo());
    let mut resolver = resolver(&fixture);

    assert_eq!(
        names(&mut resolver, &["nonesuch"]).unwrap_err(),
        SolveError::NotFound {
            requests: vec![unknown("nonesuch", &[])]
        }
    );
    // Every unknown request at once, each with the names it may have meant (case aside, or a
    // letter or two off), as dnf's "Maybe you meant".
    let err = names(
        &mut resolver,
        &["Strace", "strace", "vim-minmal", "nonesuch", "strca"],
    )
    .unwrap_err();
    assert_eq!(
        err,
        SolveError::NotFound {
            requests: vec![
                unknown("Strace", &["strace"]),
                unknown("vim-minmal", &["vim-minimal"]),
                unknown("nonesuch", &[]),
                unknown("strca", &["strace"]),
            ]
        }
    );
    assert_eq!(
        err.to_string(),
        r#"no package in the enabled repos provides "Strace", "vim-minmal", "nonesuch" or "strca""#
    );
    assert_eq!(
        err.hint(),
        r#"did you mean strace (for "Strace"), vim-minimal (for "vim-minmal"), strace (for "strca")? Otherwise check whether the repo that has it is enabled (`pkglayer refresh-md` lists the repos)"#
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
    assert_eq!(
        kinds(&err),
        [ProblemKind::NothingProvides("does-not-exist".into())]
    );
    assert!(
        message.ends_with("(requested: needs-missing)"),
        "the problem names the request that pulled the package in: {message}"
    );
    assert!(
        err.hint()
            .starts_with("nothing in the base or the enabled repos provides does-not-exist: the repo that has it may be disabled"),
        "{}",
        err.hint()
    );

    let err = names(&mut resolver, &["kernel-breaker"]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("kernel-breaker-1.0-1"), "{message}");
    assert!(message.contains("kernel-core"), "{message}");
    assert_eq!(kinds(&err), [ProblemKind::ConflictsWithBase]);
    assert!(err.hint().starts_with("base packages cannot be changed"));
}

/// The kinds of the problems of an unsatisfiable request.
fn kinds(err: &SolveError) -> Vec<ProblemKind> {
    let SolveError::Unsatisfiable { problems } = err else {
        panic!("expected Unsatisfiable, got {err:?}");
    };
    problems.iter().map(|p| p.kind.clone()).collect()
}

#[test]
fn each_kind_of_problem_gets_its_own_hint() {
    require_root!();
    let fixture = fixture(&[
        TestPackage::new("left", "1.0-1").conflicts("right"),
        TestPackage::new("right", "1.0-1"),
        TestPackage::new("foreign", "1.0-1").arch("s390x"),
        TestPackage::new("needs-foreign", "1.0-1").requires("foreign"),
    ]);
    let mut resolver = resolver(&fixture);

    let err = names(&mut resolver, &["left", "right"]).unwrap_err();
    assert_eq!(kinds(&err), [ProblemKind::Conflict], "{err}");
    assert!(
        err.to_string().ends_with("(requested: left, right)"),
        "{err}"
    );
    assert_eq!(
        err.hint(),
        "the packages requested conflict with each other: request one of them"
    );

    // A package of another architecture is no provider, and no candidate for a request either.
    let err = names(&mut resolver, &["needs-foreign"]).unwrap_err();
    assert_eq!(
        kinds(&err),
        [ProblemKind::NothingProvides("foreign".into())],
        "{err}"
    );
    assert_eq!(
        names(&mut resolver, &["foreign"]).unwrap_err(),
        SolveError::NotFound {
            requests: vec![unknown("foreign", &[])]
        },
        "a name is no suggestion for itself"
    );
    // A local RPM of another architecture is named, so it is a candidate that cannot be installed.
    let dir = tempfile::tempdir().unwrap();
    let local = TestPackage::new("alien", "1.0-1")
        .arch("s390x")
        .write_to(dir.path())
        .unwrap();
    resolver.add_local_rpms(&[local.as_path()]).unwrap();
    let err = outcome(&mut resolver, &[]).unwrap_err();
    assert_eq!(kinds(&err), [ProblemKind::NotInstallable], "{err}");
    assert_eq!(
        err.hint(),
        "the package is for another architecture, or hidden: a repo's exclude= or includepkgs=, or a module stream that is not enabled (`pkglayer module enable`)"
    );
}

#[test]
fn a_request_the_base_satisfies_is_refused_unless_it_may_be_inactive() {
    require_root!();
    let fixture = fixture(&fixtures::resolution_repo());
    let mut resolver = resolver(&fixture);

    assert_eq!(
        outcome(&mut resolver, &[new("strace"), new("setup")]).unwrap_err(),
        SolveError::AlreadyInBase {
            request: "setup".into(),
            package: "setup-2.14-1.testos.noarch".into(),
        }
    );
    // A path the base provides counts as much as a name.
    assert_eq!(
        outcome(&mut resolver, &[new("/bin/sh")]).unwrap_err(),
        SolveError::AlreadyInBase {
            request: "/bin/sh".into(),
            package: with_arch("busybox-1.35.0-1.testos"),
        }
    );
}

#[test]
fn inactive_requests_are_reported_with_the_base_package_that_satisfies_them() {
    require_root!();
    let fixture = fixture(&fixtures::resolution_repo());
    let mut resolver = resolver(&fixture);

    let requests = [
        kept("setup"),
        new("vim-minimal"),
        kept("/bin/sh"),
        kept("strace"),
    ];
    assert_eq!(
        outcome(&mut resolver, &requests).unwrap(),
        expect(
            &[
                "helper-tools-1.0-1",
                "libfoo-2.3-1",
                "strace-6.1-1",
                "vim-minimal-9.0-1"
            ],
            &[
                ("setup", "setup-2.14-1.testos.noarch"),
                ("/bin/sh", "busybox-1.35.0-1.testos"),
            ],
            &[],
        )
    );
    // Only inactive requests: nothing to layer.
    assert_eq!(
        outcome(&mut resolver, &[kept("kernel-core")]).unwrap(),
        expect(&[], &[("kernel-core", "kernel-core-6.1.0-1.1")], &[])
    );
}

/// The usual rename: bar obsoletes and provides foo.
fn bar_replacing_foo() -> TestPackage {
    TestPackage::new("bar", "2.0-1")
        .obsoletes("foo")
        .provides("foo")
}

#[test]
fn a_request_for_an_obsoleted_package_gets_the_obsoleter_while_the_repo_keeps_it() {
    require_root!();
    let fixture = fixture(&[TestPackage::new("foo", "1.0-1"), bar_replacing_foo()]);
    let mut resolver = resolver(&fixture);

    // dnf install foo: bar-2.0-1 (dnf upgrade with foo installed: bar replaces foo).
    assert_eq!(
        outcome(&mut resolver, &[kept("foo")]).unwrap(),
        expect(&["bar-2.0-1"], &[], &[("foo", "bar-2.0-1")])
    );
    // Before, foo and bar together were unsatisfiable ("bar obsoletes foo"); dnf installs bar.
    assert_eq!(
        outcome(&mut resolver, &[new("foo"), new("bar")]).unwrap(),
        expect(&["bar-2.0-1"], &[], &[("foo", "bar-2.0-1")])
    );
    // A version or an arch asks for foo itself, as in dnf.
    for spec in ["foo-1.0", &format!("foo.{}", host_arch()), "foo-1.0-1"] {
        assert_eq!(
            outcome(&mut resolver, &[new(spec)]).unwrap(),
            expect(&["foo-1.0-1"], &[], &[]),
            "{spec}"
        );
    }
}

#[test]
fn a_request_for_an_obsoleted_package_gets_the_obsoleter_after_the_repo_drops_it() {
    require_root!();
    let fixture = fixture(&[bar_replacing_foo()]);
    let mut resolver = resolver(&fixture);

    // dnf install foo: bar-2.0-1, through its provide. Reported, so that the request can follow.
    assert_eq!(
        outcome(&mut resolver, &[kept("foo")]).unwrap(),
        expect(&["bar-2.0-1"], &[], &[("foo", "bar-2.0-1")])
    );
}

#[test]
fn an_obsoleter_that_does_not_provide_foo_replaces_it_only_while_foo_is_in_the_repos() {
    require_root!();
    let obsoleter = TestPackage::new("bar", "2.0-1").obsoletes("foo");

    // dnf install foo: bar-2.0-1.
    let foo_kept = fixture(&[TestPackage::new("foo", "1.0-1"), obsoleter.clone()]);
    assert_eq!(
        outcome(&mut resolver(&foo_kept), &[kept("foo")]).unwrap(),
        expect(&["bar-2.0-1"], &[], &[("foo", "bar-2.0-1")])
    );

    // dnf install foo: "No match for argument: foo". (dnf upgrade, with foo installed, would move
    // to bar; a request resolved afresh has no installed foo to match the Obsoletes against.)
    let foo_dropped = fixture(&[obsoleter]);
    assert_eq!(
        outcome(&mut resolver(&foo_dropped), &[kept("foo")]).unwrap_err(),
        SolveError::NotFound {
            requests: vec![unknown("foo", &[])]
        }
    );
}

#[test]
fn only_obsoleters_of_the_newest_foo_count() {
    require_root!();
    // bar obsoletes the old foo only. dnf 4 puts every obsoleter of any foo among the candidates and
    // libsolv then picks between foo-2.0 and bar by name order (bar here, foo-2.0 against a "zzz";
    // with bar requested too, bar alone). dnf 5 takes only obsoleters of the newest foo
    // (rhbz#2176263), and so does pkglayer.
    let fixture = fixture(&[
        TestPackage::new("foo", "1.0-1"),
        TestPackage::new("foo", "2.0-1"),
        TestPackage::new("bar", "2.0-1").obsoletes("foo < 2"),
    ]);
    let mut resolver = resolver(&fixture);
    assert_eq!(
        outcome(&mut resolver, &[kept("foo")]).unwrap(),
        expect(&["foo-2.0-1"], &[], &[])
    );
    assert_eq!(
        outcome(&mut resolver, &[kept("foo"), kept("bar")]).unwrap(),
        expect(&["bar-2.0-1", "foo-2.0-1"], &[], &[])
    );
}

#[test]
fn a_versioned_obsoletes_of_the_newest_foo_replaces_it() {
    require_root!();
    // dnf install foo: bar-2.0-1 (dnf 4 and 5 agree).
    let fixture = fixture(&[
        TestPackage::new("foo", "1.0-1"),
        TestPackage::new("bar", "2.0-1").obsoletes("foo < 2"),
    ]);
    assert_eq!(
        outcome(&mut resolver(&fixture), &[kept("foo")]).unwrap(),
        expect(&["bar-2.0-1"], &[], &[("foo", "bar-2.0-1")])
    );
}

#[test]
fn an_obsoleter_is_chosen_by_the_solver_not_by_its_version() {
    require_root!();
    let foreign = if host_arch() == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    };
    let fixture = fixture(&[
        TestPackage::new("foo", "1.0-1"),
        // An old bar obsoletes foo; the newest bar does not. dnf 4 and 5 both install bar-1.0.
        TestPackage::new("bar", "1.0-1")
            .obsoletes("foo")
            .provides("foo"),
        TestPackage::new("bar", "2.0-1"),
        // Cannot be installed here: not for this machine, or needing what nobody provides.
        TestPackage::new("foreign", "1.0-1")
            .arch(foreign)
            .obsoletes("foo"),
        TestPackage::new("broken", "1.0-1")
            .obsoletes("foo")
            .requires("nothing-provides-this"),
    ]);
    let mut resolver = resolver(&fixture);
    assert_eq!(
        outcome(&mut resolver, &[kept("foo")]).unwrap(),
        expect(&["bar-1.0-1"], &[], &[("foo", "bar-1.0-1")])
    );
    // Asking for the newest bar too leaves foo itself (dnf: the same).
    assert_eq!(
        outcome(&mut resolver, &[kept("foo"), kept("bar-2.0")]).unwrap(),
        expect(&["bar-2.0-1", "foo-1.0-1"], &[], &[])
    );
}

#[test]
fn an_obsoleter_that_cannot_be_installed_leaves_foo() {
    require_root!();
    // dnf install foo: foo-1.0-1 in both cases.
    let broken = fixture(&[
        TestPackage::new("foo", "1.0-1"),
        bar_replacing_foo().requires("nothing-provides-this"),
    ]);
    assert_eq!(
        outcome(&mut resolver(&broken), &[kept("foo")]).unwrap(),
        expect(&["foo-1.0-1"], &[], &[])
    );
    let conflicting = fixture(&[
        TestPackage::new("foo", "1.0-1"),
        bar_replacing_foo().conflicts("kernel-core"),
    ]);
    assert_eq!(
        outcome(&mut resolver(&conflicting), &[kept("foo")]).unwrap(),
        expect(&["foo-1.0-1"], &[], &[])
    );
}

#[test]
fn an_obsoleter_for_another_architecture_does_not_count() {
    require_root!();
    let foreign = if host_arch() == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    };
    let other_arch = fixture(&[
        TestPackage::new("foo", "1.0-1"),
        bar_replacing_foo().arch(foreign),
    ]);
    assert_eq!(
        outcome(&mut resolver(&other_arch), &[kept("foo")]).unwrap(),
        expect(&["foo-1.0-1"], &[], &[])
    );
    // A noarch obsoleter does.
    let noarch = fixture(&[
        TestPackage::new("foo", "1.0-1"),
        bar_replacing_foo().arch("noarch"),
    ]);
    assert_eq!(
        outcome(&mut resolver(&noarch), &[kept("foo")]).unwrap(),
        expect(&["bar-2.0-1.noarch"], &[], &[("foo", "bar-2.0-1.noarch")])
    );
}

#[test]
fn a_base_package_that_obsoletes_the_request_makes_it_inactive() {
    require_root!();
    // The vendor's base now ships bar, which obsoletes (and does not provide) foo. dnf install foo:
    // nothing to do. Before, this was unsatisfiable ("installed package bar obsoletes foo").
    let fixture = fixture_with_base(
        vec![TestPackage::new("bar", "2.0-1").obsoletes("foo")],
        &[TestPackage::new("foo", "1.0-1")],
    );
    let mut resolver = resolver(&fixture);
    assert_eq!(
        outcome(&mut resolver, &[kept("foo")]).unwrap(),
        expect(&[], &[("foo", "bar-2.0-1")], &[])
    );
    assert_eq!(
        outcome(&mut resolver, &[new("foo")]).unwrap_err(),
        SolveError::AlreadyInBase {
            request: "foo".into(),
            package: with_arch("bar-2.0-1"),
        }
    );
}

#[test]
fn obsoletes_do_not_change_plain_requests_or_dependencies() {
    require_root!();
    let fixture = fixture(&[
        TestPackage::new("foo", "1.0-1"),
        bar_replacing_foo(),
        TestPackage::new("app", "1.0-1").requires("foo"),
        TestPackage::new("baz", "3.0-1")
            .obsoletes("bar")
            .provides("bar"),
    ]);
    let mut resolver = resolver(&fixture);
    // A dependency on foo was already met by its obsoleter (libsolv prefers it; dnf: the same).
    assert_eq!(
        outcome(&mut resolver, &[new("app")]).unwrap(),
        expect(&["app-1.0-1", "bar-2.0-1"], &[], &[])
    );
    // Only direct obsoleters count: foo gets bar, not baz (dnf: the same); bar gets baz.
    assert_eq!(
        outcome(&mut resolver, &[new("foo")]).unwrap(),
        expect(&["bar-2.0-1"], &[], &[("foo", "bar-2.0-1")])
    );
    assert_eq!(
        outcome(&mut resolver, &[new("bar")]).unwrap(),
        expect(&["baz-3.0-1"], &[], &[("bar", "baz-3.0-1")])
    );
    // With baz requested too, bar cannot be installed, so foo stays foo (dnf: the same).
    assert_eq!(
        outcome(&mut resolver, &[new("foo"), new("baz")]).unwrap(),
        expect(&["baz-3.0-1", "foo-1.0-1"], &[], &[])
    );
}
