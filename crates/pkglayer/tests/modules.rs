//! Modularity: repos with module metadata (written with modifyrepo_c, as distributions publish it)
//! resolve as dnf resolves them, and `module enable/install` live in the origin across a host's
//! operations.

use std::path::{Path, PathBuf};

mod support;

use pkglayer_testkit::{
    RepoServer, TestHost, TestModule, TestPackage, add_modules, base_packages_on_platform,
    create_repo, host_arch, module_defaults, require_root,
};
use serde_json::Value;
use support::{Pkglayer, failure, ok};

const PLATFORM: &str = "platform:el9";

fn package(name: &str, evr: &str) -> TestPackage {
    TestPackage::new(name, evr)
}

/// An AppStream-like repo: non-modular packages beside module streams of the same names.
///
/// - nodejs: non-modular 16; streams 18 (two builds) and 20, none default; a non-modular package
///   that provides `nodejs`.
/// - postgresql: non-modular 13; streams 15 (the default) and 16.
/// - perl-DBI:1.643 (the default) needs perl:5.32, which has no default; non-modular perl-libs 5.30.
/// - ruby:3.1 (the default) has a context for el9 and one for el8.
/// - maven exists only in a stream that is neither enabled nor default.
fn appstream() -> (Vec<TestPackage>, Vec<TestModule>, Vec<String>) {
    let nodejs_16 = package("nodejs", "1:16.20.2-1.el9");
    let npm_8 = package("npm", "1:8.19.4-1.el9").requires("nodejs");
    let nodejs_18_1 = package("nodejs", "1:18.14.2-1.module_el9.18");
    let nodejs_18_2 = package("nodejs", "1:18.16.0-1.module_el9.18");
    let npm_9 = package("npm", "1:9.5.0-1.module_el9.18").requires("nodejs >= 1:18");
    let nodejs_20 = package("nodejs", "1:20.5.0-1.module_el9.20");
    let nodejs_compat = package("nodejs-compat", "1.0-1.el9").provides("nodejs");
    let pg_13 = package("postgresql", "13.11-1.el9");
    let pg_15 = package("postgresql", "15.3-1.module_el9.15");
    let pg_16 = package("postgresql", "16.1-1.module_el9.16");
    let perl_libs_530 = package("perl-libs", "4:5.30.0-1.el9");
    let perl_libs_532 = package("perl-libs", "4:5.32.1-1.module_el9.532");
    let perl_dbi = package("perl-DBI", "1.643-1.module_el9.dbi").requires("perl-libs >= 4:5.32");
    let ruby_el9 = package("ruby", "3.1.2-1.module_el9.31");
    let ruby_el8 = package("ruby", "3.1.4-1.module_el8.31");
    let maven = package("maven", "1:3.8.5-1.module_el9.38");

    let modules = vec![
        TestModule::new("nodejs", "18", 9000020230101)
            .profile("common", &["nodejs", "npm"])
            .artifacts(&[&nodejs_18_1]),
        TestModule::new("nodejs", "18", 9000020230601)
            .profile("common", &["nodejs", "npm"])
            .profile("minimal", &["nodejs"])
            .artifacts(&[&nodejs_18_2, &npm_9]),
        TestModule::new("nodejs", "20", 9000020230901)
            .profile("common", &["nodejs"])
            .artifacts(&[&nodejs_20]),
        TestModule::new("postgresql", "15", 9000020230301)
            .profile("server", &["postgresql"])
            .artifacts(&[&pg_15]),
        TestModule::new("postgresql", "16", 9000020231101)
            .profile("server", &["postgresql"])
            .artifacts(&[&pg_16]),
        TestModule::new("perl", "5.32", 9000020230101).artifacts(&[&perl_libs_532]),
        TestModule::new("perl-DBI", "1.643", 9000020230101)
            .requires("perl", &["5.32"])
            .artifacts(&[&perl_dbi]),
        TestModule::new("ruby", "3.1", 9000020230101)
            .context("el9ctx")
            .artifacts(&[&ruby_el9]),
        // A build for RHEL 8 (with other module dependencies than the el9 one: libdnf tells builds
        // apart by those, not by platform).
        TestModule::new("ruby", "3.1", 8000020230101)
            .context("el8ctx")
            .requires("platform", &["el8"])
            .requires("perl", &["5.26"])
            .artifacts(&[&ruby_el8]),
        TestModule::new("maven", "3.8", 9000020230101).artifacts(&[&maven]),
    ];
    let defaults = vec![
        module_defaults("nodejs", None, &[("18", &["common"]), ("20", &["common"])]),
        module_defaults("postgresql", Some("15"), &[("15", &["server"])]),
        module_defaults("perl-DBI", Some("1.643"), &[]),
        module_defaults("ruby", Some("3.1"), &[]),
    ];
    let packages = vec![
        nodejs_16,
        npm_8,
        nodejs_18_1,
        nodejs_18_2,
        npm_9,
        nodejs_20,
        nodejs_compat,
        pg_13,
        pg_15,
        pg_16,
        perl_libs_530,
        perl_libs_532,
        perl_dbi,
        ruby_el9,
        ruby_el8,
        maven,
    ];
    (packages, modules, defaults)
}

/// A host on a RHEL 9-like base (`PLATFORM_ID="platform:el9"`), the modular repo served, and two
/// repo directories: AppStream alone, and AppStream with a `module_hotfixes=1` repo.
struct ModularHost {
    host: TestHost,
    www: PathBuf,
    server: RepoServer,
    reposdir: PathBuf,
    hotfix_reposdir: PathBuf,
}

impl ModularHost {
    fn new() -> Self {
        let host = TestHost::with_base(&base_packages_on_platform("1", Some(PLATFORM))).unwrap();
        let www = host.dir().join("www");
        let (packages, modules, defaults) = appstream();
        create_repo(&www.join("appstream"), &packages, "gz").unwrap();
        add_modules(&www.join("appstream"), &modules, &defaults).unwrap();
        create_repo(
            &www.join("hotfix"),
            &[package("nodejs", "1:20.99.0-1.hotfix")],
            "gz",
        )
        .unwrap();
        let server = RepoServer::serve(&www).unwrap();
        let appstream = format!(
            "[appstream]\nbaseurl={}\ngpgcheck=0\n",
            server.url("appstream/")
        );
        let reposdir = host.dir().join("repos.d");
        std::fs::create_dir_all(&reposdir).unwrap();
        std::fs::write(reposdir.join("appstream.repo"), &appstream).unwrap();
        let hotfix_reposdir = host.dir().join("repos-hotfix.d");
        std::fs::create_dir_all(&hotfix_reposdir).unwrap();
        std::fs::write(
            hotfix_reposdir.join("appstream.repo"),
            format!(
                "{appstream}\n[hotfix]\nbaseurl={}\ngpgcheck=0\nmodule_hotfixes=1\n",
                server.url("hotfix/")
            ),
        )
        .unwrap();
        ModularHost {
            host,
            www,
            server,
            reposdir,
            hotfix_reposdir,
        }
    }

    /// Runs pkglayer; verbs that read repos get AppStream.
    fn pkglayer(&self, args: &[&str]) -> std::process::Output {
        let command = Pkglayer::new(&self.host.sysroot.path).args(args);
        if matches!(args[0], "status" | "rollback") {
            command.output()
        } else {
            command.reposdir(&self.reposdir).output()
        }
    }

    fn newest(&self) -> PathBuf {
        self.host.sysroot.deployment_dirs().unwrap()[0].clone()
    }

    fn rpm_q(&self, name: &str) -> Option<String> {
        self.host.sysroot.rpm_q(&self.newest(), name)
    }

    /// Sets the host's dnf module state (`/etc/dnf/modules.d`) in its newest deployment and in
    /// dnf's installroot alike: `(module, stream, state)`.
    fn set_module_states(&self, installroot: &Path, states: &[(&str, &str, &str)]) {
        for root in [self.newest().join("etc"), installroot.join("etc")] {
            let dir = root.join("dnf/modules.d");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (module, stream, state) in states {
                std::fs::write(
                    dir.join(format!("{module}.module")),
                    format!(
                        "[{module}]\nname={module}\nstream={stream}\nprofiles=\nstate={state}\n"
                    ),
                )
                .unwrap();
            }
        }
    }

    /// dnf's installroot, on the newest deployment's rpmdb and os-release.
    fn dnf_installroot(&self) -> (PathBuf, PathBuf) {
        support::dnf::installroot(self.host.dir(), &self.newest())
    }
}

/// Our transaction for `specs` as a dry run: packages (`install`), or one `@MODULE` spec
/// (`module install`): sorted NEVRAs, or the error.
fn ours(host: &ModularHost, reposdir: &Path, specs: &[&str]) -> Result<Vec<String>, String> {
    let mut args = match specs {
        [module] if module.starts_with('@') => vec!["module", "install", &module[1..]],
        _ => {
            let mut args = vec!["install"];
            args.extend_from_slice(specs);
            args
        }
    };
    args.extend(["--dry-run", "--json"]);
    support::dnf::planned(
        &Pkglayer::new(&host.host.sysroot.path)
            .args(&args)
            .reposdir(reposdir)
            .output(),
    )
}

/// Specs to resolve, and the packages expected (`None`: an error).
type Scenario<'a> = (&'a [&'a str], Option<&'a [&'a str]>);

/// Runs every scenario against both; returns the disagreements.
fn compare(
    host: &ModularHost,
    installroot: &Path,
    home: &Path,
    reposdir: &Path,
    scenarios: &[Scenario<'_>],
) -> Vec<String> {
    let mut disagreements = Vec::new();
    for (specs, expected) in scenarios {
        let ours = ours(host, reposdir, specs);
        let dnf = support::dnf::transaction(installroot, home, reposdir, specs);
        let agree = match (&ours, &dnf) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        // The scenarios say what they test: a case where both tools go wrong the same way, or the
        // fixture no longer means what it should, fails too.
        let as_expected = match (expected, &ours) {
            (Some(names), Ok(nevras)) => {
                let mut names: Vec<&str> = names.to_vec();
                names.sort();
                nevras.iter().map(String::as_str).collect::<Vec<_>>() == names
            }
            (None, Err(_)) => true,
            _ => false,
        };
        if !agree || !as_expected {
            disagreements.push(format!(
                "{specs:?}:\n  pkglayer: {ours:?}\n  dnf:      {dnf:?}\n  expected: {expected:?}"
            ));
        }
    }
    disagreements
}

#[test]
fn modular_transactions_match_dnf() {
    require_root!();
    let host = ModularHost::new();
    let (installroot, home) = host.dnf_installroot();
    let arch = host_arch();
    let nevra = |text: &str| -> String { text.replace("ARCH", arch) };
    let nodejs_16 = nevra("nodejs-1:16.20.2-1.el9.ARCH");
    let npm_8 = nevra("npm-1:8.19.4-1.el9.ARCH");
    let nodejs_18 = nevra("nodejs-1:18.16.0-1.module_el9.18.ARCH");
    let npm_9 = nevra("npm-1:9.5.0-1.module_el9.18.ARCH");
    let nodejs_20 = nevra("nodejs-1:20.5.0-1.module_el9.20.ARCH");
    let nodejs_hotfix = nevra("nodejs-1:20.99.0-1.hotfix.ARCH");
    let nodejs_compat = nevra("nodejs-compat-1.0-1.el9.ARCH");
    let pg_13 = nevra("postgresql-13.11-1.el9.ARCH");
    let pg_15 = nevra("postgresql-15.3-1.module_el9.15.ARCH");
    let perl_dbi = nevra("perl-DBI-1.643-1.module_el9.dbi.ARCH");
    let perl_libs_532 = nevra("perl-libs-4:5.32.1-1.module_el9.532.ARCH");
    let ruby_el9 = nevra("ruby-3.1.2-1.module_el9.31.ARCH");

    // The host enables no module: defaults decide.
    let mut disagreements = compare(
        &host,
        &installroot,
        &home,
        &host.reposdir,
        &[
            (&["nodejs"], Some(&[&nodejs_16])),
            // dnf's quirk, kept: hidden packages still count as the newest of their name, so the
            // visible nodejs 16 loses to the hidden 20 and another provider of `nodejs` is taken.
            (&["npm"], Some(&[&npm_8, &nodejs_compat])),
            (&["postgresql"], Some(&[&pg_15])),
            (&["perl-DBI"], Some(&[&perl_dbi, &perl_libs_532])),
            (&["ruby"], Some(&[&ruby_el9])),
            (&["maven"], None),
            (&["@nodejs:18/common"], Some(&[&nodejs_18, &npm_9])),
            (&["@nodejs:20"], Some(&[&nodejs_20])),
            (&["@postgresql:15"], Some(&[&pg_15])),
        ],
    );
    // The host enables nodejs:20 and disables postgresql, as `dnf module` records it.
    host.set_module_states(
        &installroot,
        &[("nodejs", "20", "enabled"), ("postgresql", "", "disabled")],
    );
    disagreements.extend(compare(
        &host,
        &installroot,
        &home,
        &host.reposdir,
        &[
            (&["nodejs"], Some(&[&nodejs_20])),
            (&["npm"], Some(&[&npm_8, &nodejs_20])),
            (&["postgresql"], Some(&[&pg_13])),
            (&["nodejs-compat"], None),
        ],
    ));
    // A module_hotfixes=1 repo is never filtered.
    disagreements.extend(compare(
        &host,
        &installroot,
        &home,
        &host.hotfix_reposdir,
        &[(&["nodejs"], Some(&[&nodejs_hotfix]))],
    ));
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn module_requests_live_in_the_origin_across_operations() {
    require_root!();
    let host = ModularHost::new();

    // Install a profile: its packages come from the stream, the origin records it as rpm-ostree did.
    ok(&host.pkglayer(&["module", "install", "nodejs:18/common"]));
    let nodejs_18 = format!("nodejs-18.16.0-1.module_el9.18.{}", host_arch());
    assert_eq!(host.rpm_q("nodejs").as_deref(), Some(nodejs_18.as_str()));
    assert_eq!(
        host.rpm_q("npm"),
        Some(format!("npm-9.5.0-1.module_el9.18.{}", host_arch()))
    );
    let origin = host.host.sysroot.origin(0).unwrap();
    assert!(
        origin.contains("[modules]\ninstall=nodejs:18/common;\n"),
        "{origin}"
    );
    assert!(origin.contains("baserefspec="), "{origin}");
    let status = ok(&host.pkglayer(&["status"]));
    assert!(
        status.contains("LayeredModules: nodejs:18/common"),
        "{status}"
    );
    let json: Value = serde_json::from_str(&ok(&host.pkglayer(&["status", "--json"]))).unwrap();
    assert_eq!(
        json["deployments"][0]["requested-modules"],
        serde_json::json!(["nodejs:18/common"])
    );

    // Plain requests go on beside it, with the default stream of another module.
    ok(&host.pkglayer(&["install", "postgresql"]));
    assert_eq!(
        host.rpm_q("postgresql"),
        Some(format!("postgresql-15.3-1.module_el9.15.{}", host_arch()))
    );
    assert_eq!(host.rpm_q("nodejs").as_deref(), Some(nodejs_18.as_str()));

    // The vendor's repo gains a newer build of the stream: upgrade follows it within the stream.
    let (mut packages, mut modules, defaults) = appstream();
    let nodejs_18_3 = package("nodejs", "1:18.18.2-1.module_el9.18");
    let npm_9_8 = package("npm", "1:9.8.1-1.module_el9.18").requires("nodejs >= 1:18");
    modules.push(
        TestModule::new("nodejs", "18", 9000020231001)
            .profile("common", &["nodejs", "npm"])
            .artifacts(&[&nodejs_18_3, &npm_9_8]),
    );
    packages.extend([nodejs_18_3, npm_9_8]);
    create_repo(&host.www.join("appstream"), &packages, "gz").unwrap();
    add_modules(&host.www.join("appstream"), &modules, &defaults).unwrap();
    ok(&host.pkglayer(&["upgrade"]));
    assert_eq!(
        host.rpm_q("nodejs"),
        Some(format!("nodejs-18.18.2-1.module_el9.18.{}", host_arch()))
    );

    // Uninstalling the profile drops its packages and the [modules] group; postgresql stays.
    ok(&host.pkglayer(&["module", "uninstall", "nodejs:18/common"]));
    assert_eq!(host.rpm_q("nodejs"), None);
    assert_eq!(host.rpm_q("npm"), None);
    assert!(host.rpm_q("postgresql").is_some());
    let origin = host.host.sysroot.origin(0).unwrap();
    assert!(!origin.contains("[modules]"), "{origin}");

    // Enabling a stream changes what a plain request resolves to; disabling it changes it back.
    ok(&host.pkglayer(&["module", "enable", "nodejs:20"]));
    let status = ok(&host.pkglayer(&["status"]));
    assert!(status.contains("EnabledModules: nodejs:20"), "{status}");
    ok(&host.pkglayer(&["install", "nodejs"]));
    assert_eq!(
        host.rpm_q("nodejs"),
        Some(format!("nodejs-20.5.0-1.module_el9.20.{}", host_arch()))
    );
    ok(&host.pkglayer(&["module", "disable", "nodejs:20"]));
    assert_eq!(
        host.rpm_q("nodejs"),
        Some(format!("nodejs-16.20.2-1.el9.{}", host_arch()))
    );
    let origin = host.host.sysroot.origin(0).unwrap();
    assert!(!origin.contains("[modules]"), "{origin}");

    // Rollback brings back the deployment with the stream enabled, origin and all; the next
    // operation builds on it.
    ok(&host.pkglayer(&["rollback"]));
    let origin = host.host.sysroot.origin(0).unwrap();
    assert!(
        origin.contains("[modules]\nenable=nodejs:20;\n"),
        "{origin}"
    );
    ok(&host.pkglayer(&["install", "npm"]));
    assert_eq!(
        host.rpm_q("nodejs"),
        Some(format!("nodejs-20.5.0-1.module_el9.20.{}", host_arch()))
    );
    assert_eq!(
        host.rpm_q("npm"),
        Some(format!("npm-8.19.4-1.el9.{}", host_arch()))
    );
    host.host.sysroot.ostree(&["fsck", "--quiet"]).unwrap();
}

#[test]
fn module_mistakes_are_named_and_change_nothing() {
    require_root!();
    let host = ModularHost::new();
    let before = host.host.sysroot.admin_status().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["module", "enable", "nodejs:99"],
            "error: Planning the transaction: module nodejs has no stream \"99\" in the enabled repos\nhint: its streams: 18, 20\n",
        ),
        (
            &["module", "enable", "nodjs:18"],
            "error: Planning the transaction: no module named \"nodjs\" in the enabled repos\nhint: modules there: maven, nodejs, perl, perl-DBI, postgresql, ruby\n",
        ),
        (
            &["module", "enable", "nodejs:18", "nodejs:20"],
            "error: Planning the transaction: nodejs:18 and nodejs:20 ask for two streams of module nodejs\nhint: a module has one stream enabled at a time: keep one of them\n",
        ),
        (
            &["module", "install", "postgresql:16"],
            "error: Planning the transaction: module stream postgresql:16 has no default profile\nhint: name a profile: postgresql:16/server\n",
        ),
        (
            &["module", "install", "nodejs:18/server"],
            "error: Planning the transaction: module stream nodejs:18 has no profile \"server\"\nhint: its profiles: common, minimal\n",
        ),
        (
            &["module", "install", "nodejs/common"],
            "error: Planning the transaction: module nodejs has no enabled or default stream\nhint: name the stream: nodejs:18, nodejs:20\n",
        ),
        (
            &["install", "maven"],
            "error: Planning the transaction: no package in the enabled repos provides \"maven\"\nhint: \"maven\" is in module streams that are not enabled: maven:3.8; enable one (`pkglayer module enable maven:3.8`) or install a profile of it (`pkglayer module install maven:3.8/PROFILE`)\n",
        ),
        (
            &["module", "disable", "nodejs:18"],
            "error: module nodejs:18 was not enabled with pkglayer on this deployment\nhint: no module is enabled with pkglayer here\n",
        ),
    ];
    for (args, expected) in cases {
        let output = host.pkglayer(args);
        let said = failure(&output);
        let said = said
            .lines()
            .filter(|l| !l.starts_with("  ") || l.starts_with("  hint"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        assert_eq!(&said, expected, "{args:?}");
    }
    assert_eq!(host.host.sysroot.admin_status().unwrap(), before);
    let _ = &host.server;
}
