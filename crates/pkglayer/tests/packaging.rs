//! What a host gets from `make install` and the RPM spec: the binary, man pages, completions, the
//! automatic update units and configuration, each read back by the tool that uses it (`man`, bash,
//! zsh, fish, `systemd-analyze verify`, `rpmspec`, `rpmbuild`).
//!
//! The binary installed is the one under test; man pages and completions come from `make assets`
//! (crates/pkglayer-assets). Building the whole RPM compiles a release build, so it is
//! `scripts/build-rpm`, on demand; here the spec is parsed and the `make dist` tarball prepared.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root, where the Makefile is.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err} (run scripts/install-deps)"));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn make(args: &[&str]) -> Output {
    run(Command::new("make").arg("-C").arg(root()).args(args))
}

/// Man pages and completions, generated once for the tests of this file.
fn assets() -> &'static Path {
    static ASSETS: OnceLock<tempfile::TempDir> = OnceLock::new();
    ASSETS
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let assets = format!("ASSETS={}", dir.path().display());
            // The profile the tests are built with: its dependencies are compiled already.
            make(&["assets", "PROFILE=dev", &assets]);
            dir
        })
        .path()
}

/// `make install` of the binary under test into `destdir` (may be empty) with `vars`.
fn install(destdir: &str, vars: &[&str]) {
    let bin = format!("BIN={}", env!("CARGO_BIN_EXE_pkglayer"));
    let assets = format!("ASSETS={}", assets().display());
    let destdir = format!("DESTDIR={destdir}");
    let mut args = vec!["install", &bin, &assets, &destdir];
    args.extend(vars);
    make(&args);
}

/// Every man page and completion file a host gets, relative to the prefix.
const COMPLETIONS: [&str; 3] = [
    "share/bash-completion/completions/pkglayer",
    "share/zsh/site-functions/_pkglayer",
    "share/fish/vendor_completions.d/pkglayer.fish",
];

#[test]
fn make_install_places_everything_under_prefix_and_destdir() {
    let dest = tempfile::tempdir().unwrap();
    install(dest.path().to_str().unwrap(), &["PREFIX=/usr"]);
    let usr = dest.path().join("usr");

    let bin = usr.join("bin/pkglayer");
    let version = run(Command::new(&bin).arg("--version"));
    assert_eq!(
        String::from_utf8(version.stdout).unwrap(),
        format!("pkglayer {}\n", env!("CARGO_PKG_VERSION"))
    );

    // One man page a command, and each reads as one.
    let man1 = usr.join("share/man/man1");
    for command in [
        "pkglayer",
        "pkglayer-install",
        "pkglayer-automatic",
        "pkglayer-db-diff",
        "pkglayer-module-enable",
    ] {
        let page = man1.join(format!("{command}.1"));
        let output = run(Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "100")
            .env_remove("MAN_KEEP_FORMATTING"));
        let text = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.is_empty(), "{command}: {stderr}");
        assert!(text.contains("NAME"), "{command}: {text}");
        assert!(text.contains(command), "{command}: {text}");
    }
    let automatic = String::from_utf8(
        run(Command::new("man")
            .arg("-l")
            .arg(man1.join("pkglayer-automatic.1"))
            .env("MANWIDTH", "200"))
        .stdout,
    )
    .unwrap();
    assert!(automatic.contains("AutomaticUpdatePolicy"), "{automatic}");
    assert!(automatic.contains("--config"), "{automatic}");

    for file in COMPLETIONS {
        assert!(usr.join(file).is_file(), "{file} not installed");
    }
    let units = usr.join("lib/systemd/system");
    let service = std::fs::read_to_string(units.join("pkglayer-automatic.service")).unwrap();
    assert!(
        service.contains("\nExecStart=/usr/bin/pkglayer automatic\n"),
        "{service}"
    );
    assert!(units.join("pkglayer-automatic.timer").is_file());

    // The configuration goes to /etc whatever the prefix, and an edited one stays.
    let conf = dest.path().join("etc/pkglayer/pkglayer.conf");
    let shipped = std::fs::read_to_string(&conf).unwrap();
    assert!(shipped.contains("#AutomaticUpdatePolicy=none"), "{shipped}");
    std::fs::write(&conf, "[Daemon]\nAutomaticUpdatePolicy=stage\n").unwrap();
    install(dest.path().to_str().unwrap(), &["PREFIX=/usr"]);
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "[Daemon]\nAutomaticUpdatePolicy=stage\n"
    );

    // And `make uninstall` takes it all away but the configuration.
    make(&[
        "uninstall",
        &format!("DESTDIR={}", dest.path().display()),
        "PREFIX=/usr",
    ]);
    let left: Vec<_> = walk(&usr).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(conf.is_file());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

/// The installed completions complete pkglayer's commands in each shell.
#[test]
fn the_shells_load_the_completions_and_complete_commands() {
    let dest = tempfile::tempdir().unwrap();
    let prefix = dest.path().join("usr");
    install("", &[&format!("PREFIX={}", prefix.display())]);
    let [bash, zsh, fish] = COMPLETIONS.map(|file| prefix.join(file));

    for (shell, file) in [("bash", &bash), ("zsh", &zsh), ("fish", &fish)] {
        run(Command::new(shell).arg("-n").arg(file));
    }

    // bash: what the completion function offers after `pkglayer ins`, and after `pkglayer db `.
    let complete = |words: &str| {
        let script = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
             _pkglayer pkglayer \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            bash.display()
        );
        String::from_utf8(run(Command::new("bash").args(["-c", &script])).stdout).unwrap()
    };
    let offered = complete("pkglayer ins");
    assert_eq!(offered.trim(), "install", "{offered}");
    let offered = complete("pkglayer db ''");
    assert!(
        offered.lines().any(|w| w == "list") && offered.lines().any(|w| w == "diff"),
        "{offered}"
    );
    let offered = complete("pkglayer automatic --con");
    assert_eq!(offered.trim(), "--config", "{offered}");

    // fish: its own completion engine on the installed file.
    let script = format!(
        "source {}; complete -C 'pkglayer auto'; complete -C 'pkglayer upgrade --ch'",
        fish.display()
    );
    let offered =
        String::from_utf8(run(Command::new("fish").args(["-c", &script])).stdout).unwrap();
    assert!(
        offered.lines().any(|l| l.starts_with("automatic\t")),
        "{offered}"
    );
    assert!(
        offered.lines().any(|l| l.starts_with("--check")),
        "{offered}"
    );

    // zsh: the file defines the completion function compdef names.
    let script = format!(
        "autoload -Uz compinit && compinit -u -D; fpath=({} $fpath); autoload -Uz _pkglayer; \
         whence -w _pkglayer; grep -c automatic {}",
        zsh.parent().unwrap().display(),
        zsh.display()
    );
    let out = String::from_utf8(
        run(Command::new("zsh")
            .args(["-f", "-c", &script])
            .env("HOME", dest.path()))
        .stdout,
    )
    .unwrap();
    assert!(out.starts_with("_pkglayer: function"), "{out}");
}

/// `systemd-analyze verify` accepts the installed units: syntax, the timer's service, the
/// ExecStart binary (the installed pkglayer) and the man page of Documentation=.
#[test]
fn systemd_analyze_verify_accepts_the_installed_units() {
    let dest = tempfile::tempdir().unwrap();
    let prefix = dest.path().join("usr");
    install("", &[&format!("PREFIX={}", prefix.display())]);
    let units = prefix.join("lib/systemd/system");
    let service = std::fs::read_to_string(units.join("pkglayer-automatic.service")).unwrap();
    assert!(
        service.contains(&format!(
            "\nExecStart={}/bin/pkglayer automatic\n",
            prefix.display()
        )),
        "{service}"
    );
    let output = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("pkglayer-automatic.service"))
        .arg(units.join("pkglayer-automatic.timer"))
        .env("MANPATH", prefix.join("share/man"))
        .env("SYSTEMD_LOG_LEVEL", "notice"));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.is_empty(), "{stderr}");

    // The check can fail: a unit naming a binary that is not there is refused.
    std::fs::remove_file(prefix.join("bin/pkglayer")).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("pkglayer-automatic.service"))
        .env("MANPATH", prefix.join("share/man"))
        .output()
        .unwrap();
    assert!(!output.status.success());
}

/// The spec parses, names the workspace's version and every installed file, and prepares the
/// `make dist` tarball (`rpmbuild -bp`: unpacked, the Makefile at its top).
#[test]
fn the_rpm_spec_parses_and_prepares_the_dist_tarball() {
    let spec = root().join("packaging/pkglayer.spec");
    let parsed =
        String::from_utf8(run(Command::new("rpmspec").arg("-P").arg(&spec)).stdout).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        parsed
            .lines()
            .any(|l| l.split_whitespace().eq(["Version:", version])),
        "the spec's Version is not the workspace's {version}"
    );
    let files = &parsed[parsed.find("\n%files").expect("a %files section")..];
    for path in [
        "/usr/bin/pkglayer",
        "/usr/share/man/man1/pkglayer-*.1*",
        "/usr/share/bash-completion/completions/pkglayer",
        "/usr/share/zsh/site-functions/_pkglayer",
        "/usr/share/fish/vendor_completions.d/pkglayer.fish",
        "/usr/lib/systemd/system/pkglayer-automatic.service",
        "/usr/lib/systemd/system/pkglayer-automatic.timer",
        "%config(noreplace) /etc/pkglayer/pkglayer.conf",
    ] {
        assert!(
            files.lines().any(|l| l == path),
            "{path} not in %files:\n{files}"
        );
    }
    assert!(parsed.contains("\nmake install "), "{parsed}");

    let top = tempfile::tempdir().unwrap();
    let target = format!("TARGET_DIR={}", top.path().display());
    make(&["dist", &target]);
    let tarball = top.path().join(format!("pkglayer-{version}.tar.gz"));
    assert!(tarball.is_file());
    run(Command::new("rpmbuild")
        .args(["-bp", "--nodeps"])
        .arg("--define")
        .arg(format!("_topdir {}", top.path().display()))
        .arg("--define")
        .arg(format!("_sourcedir {}", top.path().display()))
        .arg(&spec));
    let unpacked = top.path().join(format!("BUILD/pkglayer-{version}"));
    for file in [
        "Makefile",
        "Cargo.lock",
        "packaging/pkglayer.spec",
        "crates/pkglayer/src/cli.rs",
    ] {
        assert!(unpacked.join(file).is_file(), "{file} not in the tarball");
    }
}
