//! Writes pkglayer's man pages and shell completions from its command-line definitions
//! (`crates/pkglayer/src/cli.rs`, compiled in here as is), so they never drift from `--help`.
//!
//! `pkglayer-assets DIR` writes `DIR/man/pkglayer*.1` (one page a command and subcommand) and
//! `DIR/completions/{pkglayer.bash,_pkglayer,pkglayer.fish}`. `make` runs it; `make install` copies
//! the results where man and the shells look for them.
//!
//! A program rather than a build script of `pkglayer`: its output has a path `make install` can name
//! (a build script may write only into a hashed `OUT_DIR`), and `cargo build`/`cargo test` of the
//! binary do not compile the generators.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

#[allow(dead_code)] // the binary reads the parsed values; here only the definitions matter
#[path = "../../pkglayer/src/cli.rs"]
mod cli;

/// The shells completions are written for, and each file's name.
const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "pkglayer.bash"),
    (Shell::Zsh, "_pkglayer"),
    (Shell::Fish, "pkglayer.fish"),
];

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: pkglayer-assets DIR");
        return std::process::ExitCode::from(2);
    };
    match write_assets(Path::new(&dir)) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: writing into {}: {err}", Path::new(&dir).display());
            std::process::ExitCode::from(1)
        }
    }
}

/// Writes the man pages and completions under `dir`; returns the files written.
fn write_assets(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    for folder in [&man, &completions] {
        // Pages of commands that no longer exist must not linger.
        if folder.exists() {
            std::fs::remove_dir_all(folder)?;
        }
        std::fs::create_dir_all(folder)?;
    }
    clap_mangen::generate_to(cli::Cli::command(), &man)?;
    for (shell, name) in COMPLETIONS {
        let mut file = std::fs::File::create(completions.join(name))?;
        clap_complete::generate(shell, &mut cli::Cli::command(), "pkglayer", &mut file);
    }
    let mut written = Vec::new();
    for folder in [&man, &completions] {
        for entry in std::fs::read_dir(folder)? {
            written.push(entry?.path());
        }
    }
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pkglayer-install`, `pkglayer-db-list`, …: the man page name of every visible command.
    fn page_names(command: &clap::Command, prefix: &str, names: &mut Vec<String>) {
        let name = format!("{prefix}{}", command.get_name());
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            page_names(sub, &format!("{name}-"), names);
        }
        names.push(format!("{name}.1"));
    }

    #[test]
    fn every_command_gets_a_page_and_every_shell_its_completions() {
        let dir = std::env::temp_dir().join(format!("pkglayer-assets-{}", std::process::id()));
        let written = write_assets(&dir).unwrap();
        let mut expected = Vec::new();
        page_names(&cli::Cli::command(), "", &mut expected);
        assert!(expected.contains(&"pkglayer-db-list.1".to_string()));
        assert!(expected.contains(&"pkglayer-module-install.1".to_string()));
        for page in &expected {
            let path = dir.join("man").join(page);
            assert!(written.contains(&path), "{page} not written: {written:?}");
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{page}: {text}");
            assert!(text.contains(".SH NAME"), "{page}");
        }
        let install = std::fs::read_to_string(dir.join("man/pkglayer-install.1")).unwrap();
        assert!(install.contains("allow\\-inactive"), "{install}");
        assert_eq!(written.len(), expected.len() + COMPLETIONS.len());
        for (_, name) in COMPLETIONS {
            let text = std::fs::read_to_string(dir.join("completions").join(name)).unwrap();
            for word in [
                "install",
                "rollback",
                "refresh-md",
                "sysroot",
                "allow-inactive",
            ] {
                assert!(text.contains(word), "{name} lacks {word}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
