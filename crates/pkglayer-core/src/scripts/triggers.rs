//! File triggers (`%filetriggerin`, `%transfiletriggerin`): of layered packages from their headers, of
//! base packages from the base's rpm database with the real `rpm`.

use std::path::Path;

use anyhow::{Context, Result};

use super::{DEFAULT_INTERPRETER, Script, Slot};
use crate::command::CommandExt;
use crate::rpm::tools::rpm_in_root;

/// rpm's priority for a file trigger that gives none (`-P`).
const DEFAULT_PRIORITY: u32 = 1_000_000;
/// `RPMSENSE_TRIGGERIN`: the condition fires on install.
const TRIGGER_IN: u32 = 1 << 16;

/// An install file trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTrigger {
    /// NEVRA of the package that carries it.
    pub package: String,
    pub interpreter: Vec<String>,
    pub body: String,
    /// Path prefixes it watches.
    pub prefixes: Vec<String>,
    /// `%transfiletriggerin` (once per transaction) rather than `%filetriggerin` (once per package).
    pub transaction: bool,
    /// Higher runs first.
    pub priority: u32,
}

impl FileTrigger {
    /// The `in` triggers of a header's trigger list (`rpm` crate order: by script index, which is
    /// also the order of the priorities tag).
    pub fn from_rpm_list(
        package: &str,
        triggers: Vec<::rpm::Trigger>,
        priorities: &[u32],
        transaction: bool,
    ) -> Vec<FileTrigger> {
        triggers
            .into_iter()
            .enumerate()
            .filter_map(|(index, trigger)| {
                let prefixes: Vec<String> = trigger
                    .conditions
                    .iter()
                    .filter(|c| c.flags.bits() & TRIGGER_IN != 0)
                    .map(|c| c.name.clone())
                    .collect();
                (!prefixes.is_empty()).then(|| FileTrigger {
                    package: package.to_string(),
                    interpreter: interpreter_or_default(trigger.program),
                    body: trigger.script,
                    prefixes,
                    transaction,
                    priority: priorities.get(index).copied().unwrap_or(DEFAULT_PRIORITY),
                })
            })
            .collect()
    }

    /// The paths among `files` under one of the trigger's prefixes. A prefix matches itself and
    /// what lies below it (`/usr/lib` matches `/usr/lib/x`, not `/usr/lib64/x`).
    pub fn matching<'a>(&self, files: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        files
            .into_iter()
            .filter(|file| {
                self.prefixes.iter().any(|prefix| {
                    let prefix = prefix.trim_end_matches('/');
                    file.as_str() == prefix
                        || file
                            .strip_prefix(prefix)
                            .is_some_and(|rest| rest.starts_with('/'))
                })
            })
            .cloned()
            .collect()
    }

    pub(super) fn script(&self, slot: Slot, args: &[&str], stdin: Vec<String>) -> Script {
        Script {
            package: self.package.clone(),
            slot,
            interpreter: self.interpreter.clone(),
            body: self.body.clone(),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin,
            // File triggers' own flags are not read: rpm's trigger slots are never `-e`.
            expand: false,
        }
    }
}

fn interpreter_or_default(program: Vec<String>) -> Vec<String> {
    let program: Vec<String> = program.into_iter().filter(|p| !p.is_empty()).collect();
    if program.is_empty() {
        vec![DEFAULT_INTERPRETER.to_string()]
    } else {
        program
    }
}

// Separators for `rpm --qf` output that scripts cannot reasonably contain.
const PACKAGE_END: char = '\u{1e}';
const FIELD_END: char = '\u{1f}';
const ITEM_END: char = '\u{1d}';

/// The install file triggers of every package in the rpm database at `root`/`dbpath`.
pub fn installed_triggers(root: &Path, dbpath: &str) -> Result<Vec<FileTrigger>> {
    let mut format = String::from("%{NEVRA}");
    format.push(FIELD_END);
    for kind in ["FILETRIGGER", "TRANSFILETRIGGER"] {
        for tag in [
            "SCRIPTS",
            "SCRIPTPROG",
            "NAME",
            "INDEX",
            "FLAGS",
            "PRIORITIES",
        ] {
            format.push_str(&format!("[%{{{kind}{tag}}}{ITEM_END}]{FIELD_END}"));
        }
    }
    format.push(PACKAGE_END);
    let output = rpm_in_root(root, dbpath)
        .args(["-qa", "--qf", &format])
        .run_capture()
        .context("Reading the base packages' file triggers")?;
    Ok(parse_query(&output))
}

/// Every path the packages in the rpm database at `root`/`dbpath` own.
pub fn installed_files(root: &Path, dbpath: &str) -> Result<Vec<String>> {
    let output = rpm_in_root(root, dbpath)
        .args(["-qa", "--qf", "[%{FILENAMES}\n]"])
        .run_capture()
        .context("Listing the base packages' files")?;
    Ok(output.lines().map(str::to_string).collect())
}

/// Every path the packages in the rpm database at `root`/`dbpath` own, with its owner's NEVRA.
pub fn installed_owners(root: &Path, dbpath: &str) -> Result<Vec<(String, String)>> {
    let output = rpm_in_root(root, dbpath)
        .args(["-qa", "--qf", "[%{FILENAMES}\t%{=NEVRA}\n]"])
        .run_capture()
        .context("Listing the base packages' files")?;
    Ok(output
        .lines()
        .filter_map(|line| line.rsplit_once('\t'))
        .map(|(path, owner)| (path.to_string(), owner.to_string()))
        .collect())
}

fn parse_query(output: &str) -> Vec<FileTrigger> {
    let mut triggers = Vec::new();
    for record in output.split(PACKAGE_END) {
        let fields: Vec<Vec<&str>> = record
            .split(FIELD_END)
            .map(|field| {
                field
                    .split(ITEM_END)
                    .filter(|item| !item.is_empty() && *item != "(none)")
                    .collect()
            })
            .collect();
        let [nevra, rest @ ..] = fields.as_slice() else {
            continue;
        };
        let Some(nevra) = nevra.first() else { continue };
        for (kind, transaction) in [(0, false), (6, true)] {
            let Some([scripts, programs, names, indexes, flags, priorities]) =
                rest.get(kind..kind + 6)
            else {
                continue;
            };
            for (index, script) in scripts.iter().enumerate() {
                let prefixes: Vec<String> = names
                    .iter()
                    .zip(indexes.iter().zip(flags))
                    .filter(|(_, (i, f))| {
                        i.parse::<usize>().ok() == Some(index)
                            && f.parse::<u32>().unwrap_or(0) & TRIGGER_IN != 0
                    })
                    .map(|(name, _)| name.to_string())
                    .collect();
                if prefixes.is_empty() {
                    continue;
                }
                let program = programs.get(index).map(|p| p.to_string());
                triggers.push(FileTrigger {
                    package: nevra.to_string(),
                    interpreter: interpreter_or_default(program.into_iter().collect()),
                    body: script.to_string(),
                    prefixes,
                    transaction,
                    priority: priorities
                        .get(index)
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(DEFAULT_PRIORITY),
                });
            }
        }
    }
    triggers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_path_components() {
        let trigger = FileTrigger {
            package: "glibc".into(),
            interpreter: vec!["/bin/sh".into()],
            body: String::new(),
            prefixes: vec!["/usr/lib/".into()],
            transaction: true,
            priority: 1,
        };
        let files: Vec<String> = [
            "/usr/lib/libx.so",
            "/usr/lib64/liby.so",
            "/usr/lib",
            "/usr/libexec/z",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            trigger.matching(&files),
            vec!["/usr/lib/libx.so", "/usr/lib"]
        );
    }

    #[test]
    fn parses_rpm_query_output() {
        let f = FIELD_END;
        let i = ITEM_END;
        let p = PACKAGE_END;
        let in_flag = TRIGGER_IN;
        let output = format!(
            "plain-1-1.noarch{f}{f}{f}{f}{f}{f}{f}{f}{f}{f}{f}{f}{f}{p}\
             glibc-2-1.x86_64{f}{f}{f}{f}{f}{f}{f}\
             /sbin/ldconfig{i}echo un{i}{f}/bin/sh{i}/bin/sh{i}{f}/usr/lib64{i}/usr/lib{i}/usr/lib64{i}{f}\
             0{i}0{i}1{i}{f}{in_flag}{i}{in_flag}{i}{}{i}{f}2000000{i}100{i}{f}{p}",
            1 << 17
        );
        let triggers = parse_query(&output);
        assert_eq!(
            triggers,
            vec![FileTrigger {
                package: "glibc-2-1.x86_64".into(),
                interpreter: vec!["/bin/sh".into()],
                body: "/sbin/ldconfig".into(),
                prefixes: vec!["/usr/lib64".into(), "/usr/lib".into()],
                transaction: true,
                priority: 2_000_000,
            }]
        );
    }
}
