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
        .push(TestPackage::new("hostonly", "1.0-1").file("/usr/share/hostonly/readme", "mine\n"));
    // What a reproducible build tool sees of the clock.
    packages.push(
        TestPackage::new("clockreader", "1.0-1")
            .file("/usr/share/clockreader/readme", "when\n")
            .script(
                Script::Post,
                "echo \"$SOURCE_DATE_EPOCH\" > /usr/share/clockreader/epoch\n",
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
        .command(&["install", "strace", "clockreader"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output());
    let commit = &h.deployments()[0];
    let log = h.host.sysroot.ostree(&["log", commit]).unwrap();
    assert!(log.contains("2023-11-14"), "{log}");
    // The scripts see it too.
    let epoch = h.newest().join("usr/share/clockreader/epoch");
    assert_eq!(std::fs::read_to_string(&epoch).unwrap(), "1700000000\n");

    // Unset, the scripts see the base commit's time (the layered commit's).
    ok(&h.pkglayer(&["uninstall", "strace"]));
    let epoch = std::fs::read_to_string(h.newest().join("usr/share/clockreader/epoch")).unwrap();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S", "-d"])
        .arg(format!("@{}", epoch.trim()))
        .output()
        .unwrap();
    let date = String::from_utf8(date.stdout).unwrap();
    let shown = h.host.sysroot.ostree(&["show", &h.host.base_v1]).unwrap();
    assert!(
        shown.contains(date.trim()),
        "{epoch} is not the base's time: {shown}"
    );

    let bad = h
        .command(&["install", "postwriter"])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output();
    let err = failure(&bad);
    assert!(err.contains("SOURCE_DATE_EPOCH=yesterday"), "{err}");
}

/// `pkglayer lock` on `h`, written to a file beside the sysroot; the file's path and its JSON.
fn lock(h: &Host) -> (PathBuf, serde_json::Value) {
    let path = h.host.dir().join("layer.lock.json");
    ok(&h.pkglayer(&["lock", "--output", path.to_str().unwrap()]));
    let json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, json)
}

#[test]
fn a_lockfile_layers_the_same_packages_and_commit_on_another_host() {
    require_root!();
    let h = Host::serving(packages());
    let other = Other::of(&h);
    ok(&h.pkglayer(&["install", "strace"]));
    let (path, json) = lock(&h);
    assert_eq!(json["lockfile-version"], 1);
    assert_eq!(json["base"]["commit"], h.host.base_v1.as_str());
    assert_eq!(json["requested"], serde_json::json!(["strace"]));
    let locked = json["packages"].as_array().unwrap();
    assert_eq!(locked.len(), 3, "{json}");
    for package in locked {
        assert_eq!(package["repo"], "test", "{package}");
        assert_eq!(package["sha256"].as_str().unwrap().len(), 64, "{package}");
    }
    // stdout gives the same document.
    let printed: serde_json::Value = serde_json::from_str(&ok(&h.pkglayer(&["lock"]))).unwrap();
    assert_eq!(printed, json);

    // Meanwhile the repo gains a newer libfoo: plain resolution would take it, the lockfile not.
    let mut newer = packages_with_newer_libfoo();
    newer.extend(packages());
    republish(&h, &newer);
    ok(&other.pkglayer(&["install", "--lockfile", path.to_str().unwrap()]));
    assert_eq!(
        other.deployments()[0],
        h.deployments()[0],
        "the same commit"
    );
    assert_eq!(
        rpm_qa(&other.sysroot, &other.newest()),
        rpm_qa(&h.host.sysroot, &h.newest())
    );
    let origin = other.sysroot.origin(0).unwrap();
    assert!(origin.contains("requested=strace;"), "{origin}");
}

/// The test repo of `h` made again with `packages` alone.
fn republish(h: &Host, packages: &[TestPackage]) {
    let dir = h.host.dir().join("www/repo");
    std::fs::remove_dir_all(&dir).unwrap();
    pkglayer_testkit::create_repo(&dir, packages, "gz").unwrap();
}

/// [`packages`] with strace built again under the same NEVRA: another file, another sha256.
fn packages_with_strace_rebuilt() -> Vec<TestPackage> {
    packages()
        .into_iter()
        .map(|p| {
            if p.nevra().starts_with("strace-") {
                p.description("rebuilt")
            } else {
                p
            }
        })
        .collect()
}

/// A libfoo newer than the fixtures' 2.3.
fn packages_with_newer_libfoo() -> Vec<TestPackage> {
    vec![TestPackage::new("libfoo", "2.4-1").file("/usr/lib64/libfoo.so.2", "libfoo 2.4\n")]
}

#[test]
fn a_lockfile_naming_what_the_repos_no_longer_have_is_refused() {
    require_root!();
    let h = Host::serving(packages());
    let other = Other::of(&h);
    ok(&h.pkglayer(&["install", "strace"]));
    let (path, _) = lock(&h);
    let before = other.deployments();

    // strace gone from the repo.
    let without: Vec<TestPackage> = packages()
        .into_iter()
        .filter(|p| !p.nevra().starts_with("strace-"))
        .collect();
    republish(&h, &without);
    let err = failure(&other.pkglayer(&["install", "--lockfile", path.to_str().unwrap()]));
    assert!(err.contains("no longer have"), "{err}");
    assert!(err.contains("strace-"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(other.deployments(), before, "nothing deployed");

    // strace rebuilt under the same NEVRA: another sha256.
    republish(&h, &packages_with_strace_rebuilt());
    ok(&other.pkglayer(&["refresh-md", "--force"]));
    let err = failure(&other.pkglayer(&["install", "--lockfile", path.to_str().unwrap()]));
    assert!(err.contains("another build"), "{err}");
    assert_eq!(other.deployments(), before, "nothing deployed");

    // A file that is no lockfile.
    let bogus = h.host.dir().join("bogus.json");
    std::fs::write(&bogus, "{\"lockfile-version\": 7}").unwrap();
    let err = failure(&other.pkglayer(&["install", "--lockfile", bogus.to_str().unwrap()]));
    assert!(err.contains("format version 7"), "{err}");
}

#[test]
fn upgrade_with_a_lockfile_moves_to_its_base_and_layer() {
    require_root!();
    let h = Host::serving(packages());
    let other = Other::of(&h);
    let v2 = h.host.upgrade_base("2").unwrap();
    ok(&h.pkglayer(&["install", "strace"]));
    let (path, json) = lock(&h);
    assert_eq!(json["base"]["commit"], v2.as_str());
    assert_eq!(json["base"]["version"], "2");

    let err = failure(&other.pkglayer(&["install", "--lockfile", path.to_str().unwrap()]));
    assert!(err.contains("upgrade --lockfile"), "{err}");
    ok(&other.pkglayer(&["upgrade", "--lockfile", path.to_str().unwrap()]));
    assert_eq!(
        other.deployments()[0],
        h.deployments()[0],
        "the same commit"
    );
}

/// The fleet's ref in the vendor's repo.
fn fleet_ref() -> String {
    base_ref().replace("/stable", "/fleet")
}

/// `pkglayer compose` on the build machine: `args` after the common ones, into the vendor's repo.
fn compose(h: &Host, args: &[&str]) -> Output {
    let workdir = h.host.dir().join("build");
    Pkglayer::new(&h.host.sysroot.path)
        .args([
            "compose",
            "--repo",
            h.host.vendor.repo().to_str().unwrap(),
            "--base",
            &base_ref(),
            "--ref",
            &fleet_ref(),
            "--workdir",
            workdir.to_str().unwrap(),
        ])
        .args(args)
        .reposdir(&h.reposdir)
        .output()
}

fn vendor_ostree(h: &Host, args: &[&str]) -> String {
    let repo = format!("--repo={}", h.host.vendor.repo().display());
    pkglayer_testkit::run(std::process::Command::new("ostree").arg(repo).args(args)).unwrap()
}

#[test]
fn a_composed_layer_is_the_commit_a_host_would_make_and_hosts_upgrade_to_it() {
    require_root!();
    let h = Host::serving(packages());
    let out = ok(&compose(&h, &["strace"]));
    assert!(out.contains("Summary updated."), "{out}");
    let fleet = vendor_ostree(&h, &["rev-parse", &fleet_ref()])
        .trim()
        .to_string();
    assert!(out.contains(&format!("Committed {fleet}")), "{out}");
    let deltas = vendor_ostree(&h, &["static-delta", "list"]);
    assert!(
        deltas.contains(&format!("{}-{fleet}", h.host.base_v1)),
        "{deltas}"
    );
    assert!(h.host.vendor.repo().join("summary").exists());
    let refs = vendor_ostree(&h, &["refs"]);
    assert!(
        !refs.contains("pkglayer/"),
        "no package cache refs in the repo: {refs}"
    );
    // Nothing changed: nothing written.
    let again = ok(&compose(&h, &["strace"]));
    assert!(again.contains("No change"), "{again}");

    // The build machine made the commit this host makes by itself.
    ok(&h.pkglayer(&["install", "strace"]));
    assert_eq!(
        h.deployments()[0],
        fleet,
        "compose and on-host layering agree"
    );

    // A host following the fleet ref.
    let dir = h.host.dir().join("fleet-host");
    let host = TestSysroot::create(&dir, &h.host.vendor, &fleet_ref()).unwrap();
    let status = ok(&Pkglayer::new(&dir).arg("status").output());
    assert!(status.contains("ImagePackages:"), "{status}");
    assert!(status.contains("strace-6.1-1"), "{status}");
    assert!(!status.contains("LayeredPackages"), "{status}");

    // The fleet's layer grows; the host upgrades to it without any repo of its own.
    ok(&compose(&h, &["strace", "postwriter"]));
    let fleet2 = vendor_ostree(&h, &["rev-parse", &fleet_ref()])
        .trim()
        .to_string();
    assert_ne!(fleet2, fleet);
    let out = ok(&Pkglayer::new(&dir).arg("upgrade").output());
    assert!(out.contains("Deployed"), "{out}");
    let deployed: Vec<String> = host
        .admin_status()
        .unwrap()
        .into_iter()
        .map(|e| e.checksum)
        .collect();
    assert_eq!(deployed[0], fleet2);
    let newest = host.deployment_dirs().unwrap()[0].clone();
    assert!(newest.join("usr/share/postwriter/output").exists());

    // And layers a package of its own on top.
    ok(&Pkglayer::new(&dir)
        .args(["install", "hostonly"])
        .reposdir(&h.reposdir)
        .output());
    let newest = host.deployment_dirs().unwrap()[0].clone();
    let packages = rpm_qa(&host, &newest);
    for name in ["strace-6.1-1", "postwriter-1.0-1", "hostonly-1.0-1"] {
        assert!(
            packages.iter().any(|p| p.starts_with(name)),
            "{name}: {packages:?}"
        );
    }
    let status = ok(&Pkglayer::new(&dir).args(["status", "--json"]).output());
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    let default = &json["deployments"][0];
    assert_eq!(default["base-checksum"], fleet2.as_str(), "{default}");
    assert_eq!(default["packages"], serde_json::json!(["hostonly"]));
    let image = default["image-packages"].to_string();
    assert!(
        image.contains("strace-6.1-1") && !image.contains("hostonly"),
        "{image}"
    );
}

/// `status --json`'s default deployment at the sysroot `dir`.
fn default_deployment(dir: &Path) -> serde_json::Value {
    let status = ok(&Pkglayer::new(dir).args(["status", "--json"]).output());
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    json["deployments"][0].clone()
}

#[test]
fn hosts_rebase_between_the_vendors_ref_and_the_fleets_both_ways() {
    require_root!();
    let h = Host::serving(packages());
    ok(&compose(&h, &["strace"]));
    let fleet = vendor_ostree(&h, &["rev-parse", &fleet_ref()])
        .trim()
        .to_string();
    let sysroot = &h.host.sysroot;
    let has = |name: &str| sysroot.rpm_q(&h.newest(), name).is_some();
    ok(&h.pkglayer(&["install", "hostonly"]));

    // Onto the fleet's image: its packages come with it, the host's own layer stays on top.
    let out = ok(&h.pkglayer(&["rebase", &fleet_ref()]));
    assert!(out.contains(&format!("vendor:{}", fleet_ref())), "{out}");
    let d = default_deployment(&sysroot.path);
    assert_eq!(d["base-checksum"], fleet.as_str(), "{d}");
    assert_eq!(d["origin"], format!("vendor:{}", fleet_ref()), "{d}");
    assert_eq!(d["packages"], serde_json::json!(["hostonly"]), "{d}");
    assert!(
        d["image-packages"].to_string().contains("strace-6.1-1"),
        "{d}"
    );
    assert!(has("strace") && has("hostonly"));

    // The fleet image moves on; the host follows it, keeping its layer.
    ok(&compose(&h, &["strace", "postwriter"]));
    let fleet2 = vendor_ostree(&h, &["rev-parse", &fleet_ref()])
        .trim()
        .to_string();
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(
        default_deployment(&sysroot.path)["base-checksum"],
        fleet2.as_str()
    );
    assert!(has("postwriter") && has("hostonly"));

    // And back to the vendor's own tree: the image's packages go, the host's layer stays.
    ok(&h.pkglayer(&["rebase", &base_ref()]));
    let d = default_deployment(&sysroot.path);
    assert_eq!(d["base-checksum"], h.host.base_v1.as_str(), "{d}");
    assert_eq!(d["origin"], format!("vendor:{}", base_ref()), "{d}");
    assert_eq!(d["packages"], serde_json::json!(["hostonly"]), "{d}");
    assert!(!has("strace") && !has("postwriter") && has("hostonly"));
    assert!(!h.newest().join("usr/share/postwriter/output").exists());
}

/// A build machine's own archive repo (`ostree init --mode=archive`) with the vendor's repo as
/// its remote `vendor`, and nothing pulled yet.
fn build_machine_repo(h: &Host) -> PathBuf {
    let repo = h.host.dir().join("build-repo");
    let ostree = |args: &[&str]| {
        pkglayer_testkit::run(
            std::process::Command::new("ostree")
                .arg(format!("--repo={}", repo.display()))
                .args(args),
        )
        .unwrap()
    };
    ostree(&["init", "--mode=archive"]);
    let url = format!("file://{}", h.host.vendor.repo().display());
    ostree(&["remote", "add", "--no-gpg-verify", "vendor", &url]);
    repo
}

/// `pkglayer compose` into `repo` from `base`: `args` after the common ones.
fn compose_into(h: &Host, repo: &Path, base: &str, refname: &str, args: &[&str]) -> Output {
    Pkglayer::new(&h.host.sysroot.path)
        .arg("compose")
        .arg("--repo")
        .arg(repo)
        .args(["--base", base, "--ref", refname, "--workdir"])
        .arg(h.host.dir().join("build-work"))
        .args(args)
        .reposdir(&h.reposdir)
        .output()
}

#[test]
fn compose_pulls_a_base_only_a_remote_has_and_takes_local_rpms_and_their_lockfile() {
    require_root!();
    let h = Host::serving(packages());
    let local_dir = h.host.dir().join("local");
    std::fs::create_dir_all(&local_dir).unwrap();
    let hello = TestPackage::new("hello-local", "1.0-1")
        .file("/usr/share/hello-local/readme", "hi\n")
        .write_to(&local_dir)
        .unwrap();
    let hello = hello.to_str().unwrap();
    ok(&h.pkglayer(&["install", "strace", hello]));
    let layered = h.deployments()[0].clone();
    let (lockfile, json) = lock(&h);
    assert!(
        json["packages"].to_string().contains("@commandline"),
        "{json}"
    );

    let repo = build_machine_repo(&h);
    let remote_base = format!("vendor:{}", base_ref());
    let rev = |refname: &str| {
        pkglayer_testkit::run(
            std::process::Command::new("ostree")
                .arg(format!("--repo={}", repo.display()))
                .args(["rev-parse", refname]),
        )
        .unwrap()
        .trim()
        .to_string()
    };
    // A remote the repo lacks is named.
    let err = failure(&compose_into(
        &h,
        &repo,
        "elsewhere:os/stable",
        "fleet/a",
        &["strace"],
    ));
    assert!(err.contains("no remote elsewhere"), "{err}");

    // The base is pulled from the remote; the local RPM is requested as on a host.
    ok(&compose_into(
        &h,
        &repo,
        &remote_base,
        "fleet/a",
        &["strace", hello],
    ));
    assert_eq!(rev(&remote_base), h.host.base_v1);
    assert_eq!(rev("fleet/a"), layered, "the commit the host made");

    // The lockfile with its local RPM gives that commit too; without the file it says what lacks.
    let lockfile = lockfile.to_str().unwrap();
    std::fs::remove_dir_all(h.host.dir().join("build-work")).unwrap();
    let err = failure(&compose_into(
        &h,
        &repo,
        &remote_base,
        "fleet/b",
        &["--lockfile", lockfile],
    ));
    assert!(err.contains("hello-local-1.0-1"), "{err}");
    ok(&compose_into(
        &h,
        &repo,
        &remote_base,
        "fleet/b",
        &["--lockfile", lockfile, hello],
    ));
    assert_eq!(rev("fleet/b"), layered);
}

/// The test repo of `h` made again with `packages`, listing sha512 checksums (as some vendors'
/// repos do) instead of sha256.
fn republish_with_sha512(h: &Host, packages: &[TestPackage]) {
    republish(h, packages);
    let dir = h.host.dir().join("www/repo");
    pkglayer_testkit::run(
        std::process::Command::new("createrepo_c")
            .args(["--quiet", "--no-database", "--checksum", "sha512"])
            .arg(&dir),
    )
    .unwrap();
}

#[test]
fn a_lockfile_checks_builds_a_repo_lists_with_another_checksum_once_fetched() {
    require_root!();
    let h = Host::serving(packages());
    republish_with_sha512(&h, &packages());
    ok(&h.pkglayer(&["install", "strace"]));
    let (path, _) = lock(&h);
    let path = path.to_str().unwrap();
    let other = Other::of(&h);
    ok(&other.pkglayer(&["install", "--lockfile", path]));
    assert_eq!(
        other.deployments()[0],
        h.deployments()[0],
        "the same commit"
    );

    // strace rebuilt under the same NEVRA: the metadata's sha512 cannot tell the lockfile's
    // sha256 apart, the fetched file can.
    republish_with_sha512(&h, &packages_with_strace_rebuilt());
    let dir = h.host.dir().join("third");
    std::fs::create_dir_all(&dir).unwrap();
    let third = TestSysroot::create(&dir, &h.host.vendor, &base_ref()).unwrap();
    let err = failure(
        &Pkglayer::new(&dir)
            .args(["install", "--lockfile", path])
            .reposdir(&h.reposdir)
            .output(),
    );
    assert!(err.contains("not the lockfile's builds"), "{err}");
    assert!(err.contains("strace-6.1-1"), "{err}");
    assert_eq!(third.admin_status().unwrap().len(), 1, "nothing deployed");
}
