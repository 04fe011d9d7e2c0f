//! Repos and resolution end to end: `install --dry-run` and `refresh-md` against rpm-md repos made by
//! createrepo_c and served over HTTP on 127.0.0.1, on a test-kit sysroot whose base rpmdb is real.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use pkglayer_testkit::{
    Fault, RepoServer, TestHost, TestPackage, create_repo, fixtures, host_arch, require_root,
};
use serde_json::Value;
use support::{Pkglayer, Redactions, failure, ok, pkglayer};

/// The packages the vendor does not ship: requests of every kind, and some that cannot be met.
fn repo_packages() -> Vec<TestPackage> {
    let mut packages = fixtures::resolution_repo();
    // Obsoletes a base package.
    packages.push(TestPackage::new("setup-ng", "3.0-1").obsoletes("setup"));
    packages
}

/// A test host, and a web root served on 127.0.0.1 holding one repo at `1/<arch>/` (base version 1).
struct Scenario {
    host: TestHost,
    www: PathBuf,
    server: RepoServer,
}

impl Scenario {
    fn new(compression: &str) -> Self {
        let host = TestHost::new().unwrap();
        let www = host.dir().join("www");
        create_repo(
            &www.join(format!("1/{}", host_arch())),
            &repo_packages(),
            compression,
        )
        .unwrap();
        let server = RepoServer::serve(&www).unwrap();
        Scenario { host, www, server }
    }

    /// Writes `text` as `test.repo` in a fresh repos directory and returns it.
    fn reposdir(&self, text: &str) -> PathBuf {
        let dir = self.host.dir().join("repos.d");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("test.repo"), text).unwrap();
        dir
    }

    /// `[test]` pointing at the served repo through `$releasever/$basearch`.
    fn standard_repo(&self) -> String {
        format!(
            "[test]\nname=Test\nbaseurl={}\ngpgcheck=0\n",
            self.server.url("$releasever/$basearch/")
        )
    }

    /// `pkglayer ARGS --reposdir REPOSDIR` on the host.
    fn run(&self, reposdir: &Path, args: &[&str]) -> Output {
        Pkglayer::new(&self.host.sysroot.path)
            .args(args)
            .reposdir(reposdir)
            .output()
    }
}

fn nevras(json: &Value) -> Vec<String> {
    json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nevra"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn dry_run_resolves_over_http_with_the_deployments_repo_files() {
    require_root!();
    let scenario = Scenario::new("zstd");
    let host = &scenario.host;
    // The repo file lives where a host keeps it: the current deployment's /etc/yum.repos.d.
    let deployment = host.sysroot.deployment_dirs().unwrap()[0].clone();
    let repos_d = deployment.join("etc/yum.repos.d");
    std::fs::create_dir_all(&repos_d).unwrap();
    std::fs::write(repos_d.join("test.repo"), scenario.standard_repo()).unwrap();
    let before = (
        host.sysroot.admin_status().unwrap(),
        host.sysroot.origin(0).unwrap(),
    );

    let output = pkglayer(
        &host.sysroot.path,
        &["install", "--dry-run", "--json", "strace"],
    );
    let json: Value = serde_json::from_str(&ok(&output)).unwrap();
    let arch = host_arch();
    assert_eq!(
        nevras(&json),
        [
            format!("helper-tools-1.0-1.{arch}"),
            format!("libfoo-2.3-1.{arch}"),
            format!("strace-6.1-1.{arch}")
        ]
    );
    assert_eq!(json["requested-packages"], serde_json::json!(["strace"]));
    assert_eq!(json["base-checksum"], host.base_v1.as_str());
    let strace = &json["packages"][2];
    assert_eq!(strace["repo"], "test");
    assert!(strace["download-size"].as_u64().unwrap() > 0);
    assert!(strace["install-size"].as_u64().unwrap() > 0);
    assert_eq!(json["repos"][0]["fetched"], true);
    // $releasever came from the base's os-release (VERSION_ID=1), $basearch from the machine.
    assert!(
        scenario
            .server
            .requests()
            .contains(&format!("/1/{arch}/repodata/repomd.xml")),
        "{:?}",
        scenario.server.requests()
    );

    // Nothing changed: same deployments, same origin.
    let after = (
        host.sysroot.admin_status().unwrap(),
        host.sysroot.origin(0).unwrap(),
    );
    assert_eq!(before, after);

    // Messages name the file as the host sees it, not by the deployment's directory.
    std::fs::write(
        repos_d.join("broken.repo"),
        "[broken]\nbaseurl=\nenabled=1\n",
    )
    .unwrap();
    let err = failure(&pkglayer(
        &host.sysroot.path,
        &["install", "--dry-run", "strace"],
    ));
    assert!(err.contains("/etc/yum.repos.d/broken.repo"), "{err}");
    assert!(!err.contains("ostree/deploy"), "{err}");
    std::fs::remove_file(repos_d.join("broken.repo")).unwrap();

    // The human form: one line a package, then the totals.
    let text = ok(&pkglayer(
        &host.sysroot.path,
        &["install", "--dry-run", "strace"],
    ));
    insta::with_settings!({filters => Redactions::new().filters()}, {
        insta::assert_snapshot!("dry_run_strace", text);
    });
    assert_eq!(
        scenario.server.count("repomd.xml"),
        1,
        "fresh metadata is reused"
    );
}

#[test]
fn virtual_provides_file_paths_and_versions_select_packages() {
    require_root!();
    let scenario = Scenario::new("xz");
    let reposdir = scenario.reposdir(&scenario.standard_repo());
    let arch = host_arch();
    for (request, expected) in [
        ("text-editor", format!("vim-minimal-9.0-1.{arch}")),
        ("/usr/bin/helper", format!("helper-tools-1.0-1.{arch}")),
        ("libfoo-1.0", format!("libfoo-1.0-1.{arch}")),
        ("libfoo < 2", format!("libfoo-1.0-1.{arch}")),
        // Paths only filelists knows (primary lists /usr/bin and /etc): loaded on demand.
        ("/usr/lib64/libfoo.so.1", format!("libfoo-1.0-1.{arch}")),
    ] {
        let output = scenario.run(&reposdir, &["install", "--dry-run", "--json", request]);
        let json: Value = serde_json::from_str(&ok(&output)).unwrap();
        assert_eq!(nevras(&json), [expected], "{request}");
    }
    let output = scenario.run(
        &reposdir,
        &["install", "--dry-run", "--json", "manual-reader"],
    );
    let json: Value = serde_json::from_str(&ok(&output)).unwrap();
    assert_eq!(
        nevras(&json),
        [
            format!("helper-tools-1.0-1.{arch}"),
            format!("manual-reader-1.0-1.{arch}")
        ]
    );
}

#[test]
fn unsatisfiable_requests_say_which_and_why() {
    require_root!();
    let scenario = Scenario::new("gz");
    let reposdir = scenario.reposdir(&scenario.standard_repo());

    let err = failure(&scenario.run(&reposdir, &["install", "--dry-run", "needs-missing"]));
    assert!(
        err.contains("nothing provides does-not-exist needed by needs-missing-1.0-1"),
        "{err}"
    );

    let err = failure(&scenario.run(&reposdir, &["install", "--dry-run", "kernel-breaker"]));
    assert!(err.contains("kernel-breaker-1.0-1"), "{err}");
    assert!(err.contains("conflicts with kernel-core"), "{err}");
    assert!(
        err.contains("hint: base packages cannot be changed"),
        "{err}"
    );
    insta::with_settings!({filters => Redactions::new().filters()}, {
        insta::assert_snapshot!("conflict_with_the_base", err);
    });

    // Obsoleting a base package would remove it: refused like a conflict.
    let err = failure(&scenario.run(&reposdir, &["install", "--dry-run", "setup-ng"]));
    assert!(err.contains("setup-ng-3.0-1"), "{err}");
    assert!(err.contains("setup-2.14-1.testos"), "{err}");

    let err = failure(&scenario.run(&reposdir, &["install", "--dry-run", "nonesuch"]));
    assert!(
        err.contains(
            "error: Planning the transaction: no package in the enabled repos provides \"nonesuch\""
        ),
        "{err}"
    );

    let err = failure(&scenario.run(&reposdir, &["install", "--dry-run", "setup"]));
    assert!(
        err.contains(
            "\"setup\" is already provided by the base package setup-2.14-1.testos.noarch"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: it is part of the base image already"),
        "{err}"
    );
}

#[test]
fn a_corrupt_primary_is_refused_and_the_cache_kept() {
    require_root!();
    let scenario = Scenario::new("zstd");
    let reposdir = scenario.reposdir(&scenario.standard_repo());
    ok(&scenario.run(&reposdir, &["refresh-md"]));
    let cached_dir = support::repo_cache_dir(&scenario.host.sysroot.path, "test");
    let cached_repomd = std::fs::read(cached_dir.join("repomd.xml")).unwrap();

    // The vendor republishes with one more package, and the primary gets damaged on the way.
    let repo_dir = scenario.www.join(format!("1/{}", host_arch()));
    let mut more = repo_packages();
    more.push(TestPackage::new("extra", "1.0-1"));
    create_repo(&repo_dir, &more, "zstd").unwrap();
    let primary = std::fs::read_dir(repo_dir.join("repodata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("primary.xml"))
        .unwrap();
    let mut bytes = std::fs::read(&primary).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&primary, bytes).unwrap();

    let err = failure(&scenario.run(&reposdir, &["refresh-md", "--force"]));
    assert!(
        err.contains("error: cannot fetch metadata of repo test"),
        "{err}"
    );
    assert!(err.contains("checksum mismatch for"), "{err}");
    assert!(
        err.contains("primary metadata of repo test from http://127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.contains("hint: check the network and the repo's URLs in"),
        "{err}"
    );

    assert_eq!(
        std::fs::read(cached_dir.join("repomd.xml")).unwrap(),
        cached_repomd
    );
    let leftovers: Vec<_> = std::fs::read_dir(cached_dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with(".staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The old metadata still answers: it resolves strace (whose packages are not in the cache,
    // which --cache-only then says).
    let err = failure(&scenario.run(
        &reposdir,
        &["install", "--dry-run", "--cache-only", "strace"],
    ));
    assert!(
        err.contains("--cache-only: not in the package cache: ")
            && err.contains(&format!("strace-6.1-1.{}", host_arch())),
        "{err}"
    );
}

#[test]
fn an_unreachable_mirror_falls_through_to_the_next() {
    require_root!();
    let scenario = Scenario::new("gz");
    // Port 9 on loopback: nothing listens there, the connection is refused at once.
    let reposdir = scenario.reposdir(&format!(
        "[test]\nbaseurl=http://127.0.0.1:9/$releasever/$basearch/\n        {}\n",
        scenario.server.url("$releasever/$basearch/")
    ));
    let output = scenario.run(
        &reposdir,
        &["install", "--dry-run", "--json", "helper-tools"],
    );
    let json: Value = serde_json::from_str(&ok(&output)).unwrap();
    assert_eq!(
        nevras(&json),
        [format!("helper-tools-1.0-1.{}", host_arch())]
    );
}

#[test]
fn server_errors_are_retried_then_reported_with_the_url() {
    require_root!();
    let scenario = Scenario::new("gz");
    let reposdir = scenario.reposdir(&scenario.standard_repo());
    scenario.server.break_path("repomd.xml", Fault::Status(500));
    let err = failure(&scenario.run(&reposdir, &["refresh-md"]));
    assert!(
        err.contains("error: cannot fetch metadata of repo test"),
        "{err}"
    );
    assert!(err.contains("repodata/repomd.xml: HTTP 500"), "{err}");
    assert_eq!(scenario.server.count("repomd.xml"), 3, "three attempts");

    // A 404 is final: one attempt.
    scenario.server.break_path("repomd.xml", Fault::Status(404));
    failure(&scenario.run(&reposdir, &["refresh-md"]));
    assert_eq!(scenario.server.count("repomd.xml"), 4);

    // A connection dropped mid-file is retried and then succeeds once the server behaves.
    scenario.server.clear_faults();
    scenario
        .server
        .break_path("primary.xml.gz", Fault::Truncate);
    failure(&scenario.run(&reposdir, &["refresh-md"]));
    scenario.server.clear_faults();
    ok(&scenario.run(&reposdir, &["refresh-md"]));
}

#[test]
fn cache_only_works_with_the_server_gone() {
    require_root!();
    let Scenario { host, server, www } = Scenario::new("zstd");
    let scenario_repo = format!("[test]\nbaseurl={}\n", server.url("$releasever/$basearch/"));
    let reposdir = host.dir().join("repos.d");
    std::fs::create_dir_all(&reposdir).unwrap();
    std::fs::write(reposdir.join("test.repo"), &scenario_repo).unwrap();
    let run = |args: &[&str]| {
        Pkglayer::new(&host.sysroot.path)
            .args(args)
            .reposdir(&reposdir)
            .output()
    };

    // Nothing cached yet: --cache-only says so.
    let err = failure(&run(&["install", "--dry-run", "--cache-only", "strace"]));
    assert!(
        err.contains("error: Planning the transaction: repo test has no cached metadata"),
        "{err}"
    );

    ok(&run(&["refresh-md"]));
    drop(server);
    drop(www);
    // The cached metadata resolves strace; its packages were never fetched, which -C then says.
    let err = failure(&run(&["install", "--dry-run", "--cache-only", "strace"]));
    let arch = host_arch();
    assert!(
        err.contains(&format!(
            "--cache-only: not in the package cache: helper-tools-1.0-1.{arch}, libfoo-2.3-1.{arch}, strace-6.1-1.{arch}"
        )),
        "{err}"
    );
}

#[test]
fn a_broken_repo_with_skip_if_unavailable_is_skipped_with_a_warning() {
    require_root!();
    let scenario = Scenario::new("gz");
    let reposdir = scenario.reposdir(&format!(
        "{}\n[broken]\nbaseurl={}\nskip_if_unavailable=1\n",
        scenario.standard_repo(),
        scenario.server.url("nothing-here/")
    ));
    let output = scenario.run(&reposdir, &["install", "--dry-run", "helper-tools"]);
    ok(&output);
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.contains("warning: skipped repo broken (skip_if_unavailable=1)"),
        "{err}"
    );

    // Without the flag the same repo is fatal, and named.
    let reposdir = scenario.reposdir(&format!(
        "{}\n[broken]\nbaseurl={}\n",
        scenario.standard_repo(),
        scenario.server.url("nothing-here/")
    ));
    let err = failure(&scenario.run(&reposdir, &["install", "--dry-run", "helper-tools"]));
    assert!(
        err.contains("cannot fetch metadata of repo broken"),
        "{err}"
    );
    assert!(
        err.contains("nothing-here/repodata/repomd.xml: HTTP 404"),
        "{err}"
    );
}

#[test]
fn repos_with_xz_and_zstd_metadata_work_together() {
    require_root!();
    let scenario = Scenario::new("zstd");
    let other = scenario.www.join("other");
    create_repo(
        &other,
        &[TestPackage::new("lonely", "1.0-1").requires("libfoo")],
        "xz",
    )
    .unwrap();
    let reposdir = scenario.reposdir(&format!(
        "{}\n[other]\nbaseurl={}\n",
        scenario.standard_repo(),
        scenario.server.url("other/")
    ));
    let output = scenario.run(&reposdir, &["install", "--dry-run", "--json", "lonely"]);
    let json: Value = serde_json::from_str(&ok(&output)).unwrap();
    let arch = host_arch();
    assert_eq!(
        nevras(&json),
        [
            format!("libfoo-2.3-1.{arch}"),
            format!("lonely-1.0-1.{arch}")
        ]
    );
    let repos: Vec<&str> = json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["repo"].as_str().unwrap())
        .collect();
    assert_eq!(repos, ["test", "other"]);
}

#[test]
fn a_metalink_gives_mirrors_and_the_repomd_hash() {
    require_root!();
    let scenario = Scenario::new("gz");
    let arch = host_arch();
    let repomd = scenario.www.join(format!("1/{arch}/repodata/repomd.xml"));
    let sha256 = pkglayer_testkit::run(Command::new("sha256sum").arg(&repomd)).unwrap();
    let sha256 = sha256.split_whitespace().next().unwrap().to_string();
    let metalink = |hash: &str| {
        format!(
            r#"<?xml version="1.0"?><metalink version="3.0" xmlns="http://www.metalinker.org/"><files>
<file name="repomd.xml"><verification><hash type="sha256">{hash}</hash></verification>
<resources><url protocol="http" preference="100">{}</url></resources></file></files></metalink>"#,
            scenario
                .server
                .url(&format!("1/{arch}/repodata/repomd.xml"))
        )
    };
    std::fs::write(scenario.www.join("metalink"), metalink(&sha256)).unwrap();
    let reposdir = scenario.reposdir(&format!(
        "[test]\nmetalink={}\n",
        scenario
            .server
            .url("metalink?repo=test-$releasever&arch=$basearch")
    ));
    ok(&scenario.run(&reposdir, &["install", "--dry-run", "strace"]));

    // A repomd.xml that does not match the metalink's hash is refused.
    std::fs::write(scenario.www.join("metalink"), metalink(&"0".repeat(64))).unwrap();
    let err = failure(&scenario.run(&reposdir, &["refresh-md", "--force"]));
    assert!(
        err.contains("repomd.xml does not match the metalink"),
        "{err}"
    );
}

#[test]
fn exclude_and_includepkgs_hide_packages() {
    require_root!();
    let scenario = Scenario::new("gz");
    let arch = host_arch();
    let reposdir = scenario.reposdir(&format!(
        "{}exclude=libfoo-2* kernel-breaker\n",
        scenario.standard_repo()
    ));
    let output = scenario.run(&reposdir, &["install", "--dry-run", "--json", "libfoo"]);
    let json: Value = serde_json::from_str(&ok(&output)).unwrap();
    assert_eq!(nevras(&json), [format!("libfoo-1.0-1.{arch}")]);
    let err = failure(&scenario.run(&reposdir, &["install", "--dry-run", "strace"]));
    assert!(
        err.contains(&format!(
            "package libfoo-2.3-1.{arch} is hidden (a repo's exclude= or includepkgs=, or module filtering) (requested: strace)"
        )),
        "{err}"
    );
    let err = failure(&scenario.run(&reposdir, &["install", "--dry-run", "kernel-breaker"]));
    assert!(
        err.contains("no package in the enabled repos provides \"kernel-breaker\""),
        "{err}"
    );

    let reposdir = scenario.reposdir(&format!(
        "{}includepkgs=helper-*\n",
        scenario.standard_repo()
    ));
    ok(&scenario.run(&reposdir, &["install", "--dry-run", "helper-tools"]));
    let err = failure(&scenario.run(&reposdir, &["install", "--dry-run", "vim-minimal"]));
    assert!(
        err.contains("no package in the enabled repos provides \"vim-minimal\""),
        "{err}"
    );
}
