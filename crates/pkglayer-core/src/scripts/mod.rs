//! Package scripts: which ones a layering runs, in what order, with which arguments.
//!
//! Layering is a fresh install of the layered packages onto the base, so rpm's install slots apply:
//! `%pre` and `%post` of each layered package (`$1` = 1), then `%filetriggerin` of base and layered
//! packages whose prefix matches files of a layered package (`$1` = `$2` = 1, the matching paths on
//! stdin, once per triggering package), then `%posttrans` (`$1` = 0), then `%transfiletriggerin`
//! (no arguments, every matching path on stdin, once). Triggers of one slot run by descending
//! priority. `%preun`/`%postun` never run: nothing is erased in place. The package files are already
//! in the tree when `%pre` runs (they are composed before any script), as in rpm-ostree.
//!
//! All of a transaction's scripts run in one sandbox (`sandbox`); their effects under `/usr` and
//! `/etc` become part of the layered commit. The result is kept under a ref keyed by everything the
//! scripts can see (tree, scripts, sandbox inputs), so the same layering on this machine does not
//! pay for its scripts twice (e.g. uninstall then install again, or a retry after a failed deploy).

pub(crate) mod lower;
pub(crate) mod sandbox;
mod seccomp;
pub(crate) mod triggers;

use std::collections::BTreeSet;
use std::fmt;
use std::io::Cursor;

use anyhow::{Context, Result};
use ostree::gio;
use ostree::gio::prelude::*;
use sha2::Digest;

use crate::progress::{Phase, PhaseGuard, Progress};
use crate::rpm::Nevra;
pub(crate) use lower::Checkout;
use sandbox::SupportFile;
pub(crate) use triggers::FileTrigger;

/// Bumped when what goes into a result changes, so older results are not reused.
const RESULT_FORMAT: &str = "pkglayer script result v2";
/// The `systemctl` scripts find first in `PATH`: offline unit-file work, nothing that needs a
/// running manager.
const SYSTEMCTL: &str = include_str!("systemctl");

/// The interpreter rpm uses when a script names none.
const DEFAULT_INTERPRETER: &str = "/bin/sh";
/// How rpm marks a Lua script's interpreter.
pub(crate) const LUA_INTERPRETER: &str = "<lua>";

/// When a script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Slot {
    Pre,
    Post,
    FileTriggerIn,
    PostTrans,
    TransFileTriggerIn,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::Pre => "%pre",
            Slot::Post => "%post",
            Slot::FileTriggerIn => "%filetriggerin",
            Slot::PostTrans => "%posttrans",
            Slot::TransFileTriggerIn => "%transfiletriggerin",
        })
    }
}

/// One script to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Script {
    /// The package that carries the script.
    pub package: String,
    pub slot: Slot,
    /// Interpreter and its arguments, e.g. `["/bin/sh"]` or `["<lua>"]`.
    pub interpreter: Vec<String>,
    pub body: String,
    /// Arguments after the script (`$1`, `$2`).
    pub args: Vec<String>,
    /// Paths fed on stdin (file triggers).
    pub stdin: Vec<String>,
    /// rpm's `-e` (`RPMSCRIPT_FLAG_EXPAND`): the body's macros are expanded before it runs.
    pub expand: bool,
}

impl Script {
    pub fn is_lua(&self) -> bool {
        self.interpreter.first().map(String::as_str) == Some(LUA_INTERPRETER)
    }
}

/// A script of a package's header: interpreter, body, and whether its macros are expanded.
type Body = (Vec<String>, String, bool);

/// What a layered package brings to the script run, read from its RPM header.
#[derive(Debug, Clone)]
pub struct LayeredPackage {
    pub(crate) nevra: Nevra,
    pre: Option<Body>,
    post: Option<Body>,
    posttrans: Option<Body>,
    pub(crate) triggers: Vec<FileTrigger>,
    /// Every path the package ships, as rpm names it (`/etc/…`, not `/usr/etc/…`).
    pub(crate) files: Vec<String>,
}

impl LayeredPackage {
    /// Reads the scripts, file triggers and file list of an RPM head (lead, signature, header).
    pub fn from_head(head: &[u8]) -> Result<Self> {
        crate::rpm::header_check::check(head).context("reading a cached RPM header")?;
        let metadata = ::rpm::PackageMetadata::parse(&mut Cursor::new(head))
            .context("reading a cached RPM header")?;
        let nevra = Nevra::of_header(&metadata)?;
        let script = |found: Result<::rpm::Scriptlet, ::rpm::Error>| {
            found.ok().map(|s| {
                let interpreter = s
                    .program
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| vec![DEFAULT_INTERPRETER.to_string()]);
                let expand = s
                    .flags
                    .is_some_and(|f| f.contains(::rpm::ScriptletFlags::EXPAND));
                (interpreter, s.script, expand)
            })
        };
        let priorities = |tag| {
            metadata
                .header
                .get_entry_data_as_u32_array(tag)
                .unwrap_or_default()
        };
        let package = nevra.to_string();
        let mut triggers = FileTrigger::from_rpm_list(
            &package,
            metadata.get_file_triggers()?,
            &priorities(::rpm::IndexTag::RPMTAG_FILETRIGGERPRIORITIES),
            false,
        );
        triggers.extend(FileTrigger::from_rpm_list(
            &package,
            metadata.get_trans_file_triggers()?,
            &priorities(::rpm::IndexTag::RPMTAG_TRANSFILETRIGGERPRIORITIES),
            true,
        ));
        let files = metadata
            .get_file_paths()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        Ok(LayeredPackage {
            pre: script(metadata.get_pre_install_script()),
            post: script(metadata.get_post_install_script()),
            posttrans: script(metadata.get_post_trans_script()),
            nevra,
            triggers,
            files,
        })
    }
}

/// The scripts of a layering, in the order they run. Packages named in `skip` contribute none
/// (neither their scripts nor their triggers); their files still fire other packages' triggers.
/// `base_files` (every path of the base's packages) are what layered packages' own triggers see
/// besides the layered files; base triggers fire for layered files only.
pub(crate) fn plan_scripts(
    layered: &[LayeredPackage],
    base_triggers: &[FileTrigger],
    base_files: &[String],
    skip: &BTreeSet<String>,
) -> Vec<Script> {
    let runs = |p: &LayeredPackage| !skip.contains(&p.nevra.name);
    let mut scripts = Vec::new();
    let own = |package: &LayeredPackage, slot: Slot, found: &Option<Body>, args: &[&str]| {
        found.as_ref().map(|(interpreter, body, expand)| Script {
            package: package.nevra.to_string(),
            slot,
            interpreter: interpreter.clone(),
            body: body.clone(),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: Vec::new(),
            expand: *expand,
        })
    };
    for package in layered.iter().filter(|p| runs(p)) {
        scripts.extend(own(package, Slot::Pre, &package.pre, &["1"]));
        scripts.extend(own(package, Slot::Post, &package.post, &["1"]));
    }

    // (trigger, whether a layered package carries it)
    let mut all_triggers: Vec<(&FileTrigger, bool)> = base_triggers
        .iter()
        .map(|t| (t, false))
        .chain(
            layered
                .iter()
                .filter(|p| runs(p))
                .flat_map(|p| p.triggers.iter().map(|t| (t, true))),
        )
        .collect();
    // Higher priority first; the sort is stable, so equal priorities keep base-then-layered order.
    all_triggers.sort_by_key(|(t, _)| std::cmp::Reverse(t.priority));
    let layered_files = || layered.iter().flat_map(|p| p.files.iter());
    // A newly installed trigger fires for everything it matches, old files and new.
    let seen_by = |trigger: &FileTrigger, new: bool| {
        if new {
            trigger.matching(base_files.iter().chain(layered_files()))
        } else {
            trigger.matching(layered_files())
        }
    };

    for (trigger, new) in all_triggers.iter().filter(|(t, _)| !t.transaction) {
        if *new {
            let matching = seen_by(trigger, true);
            if !matching.is_empty() {
                scripts.push(trigger.script(Slot::FileTriggerIn, &["1", "1"], matching));
            }
            continue;
        }
        for package in layered {
            let matching = trigger.matching(&package.files);
            if !matching.is_empty() {
                scripts.push(trigger.script(Slot::FileTriggerIn, &["1", "1"], matching));
            }
        }
    }
    for package in layered.iter().filter(|p| runs(p)) {
        scripts.extend(own(package, Slot::PostTrans, &package.posttrans, &["0"]));
    }
    for (trigger, new) in all_triggers.iter().filter(|(t, _)| t.transaction) {
        let matching = seen_by(trigger, *new);
        if !matching.is_empty() {
            scripts.push(trigger.script(Slot::TransFileTriggerIn, &[], matching));
        }
    }
    scripts
}

/// Runs `scripts` on `tree` (base + layered files) and returns the tree with their effects, from an
/// earlier identical run when there is one. Call inside a repo transaction; it is committed and
/// reopened around the sandbox, which reads the tree from commits: what it adds to the checkout of
/// `checkouts` it differs least from (`lower`). `dbpath`'s directory is left as it was: the rpm
/// database is written after the scripts. `owners` lists the paths packages own (as rpm names them)
/// with their owners, for a script that deletes something. The scripts see `source_date_epoch` as
/// `SOURCE_DATE_EPOCH`, so tools that honour it (byte-compilers, archivers) write the same bytes
/// wherever and whenever the layer is built.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    scripts: &[Script],
    support: &[SupportFile],
    dbpath: &str,
    owners: &dyn Fn() -> Result<Vec<(String, String)>>,
    checkouts: &[Checkout],
    source_date_epoch: u64,
    progress: &dyn Progress,
) -> Result<ostree::MutableTree> {
    let mut support = support.to_vec();
    support.push(SupportFile {
        path: "bin/systemctl".into(),
        contents: SYSTEMCTL.into(),
    });
    let support = &support[..];
    let root = repo.write_mtree(tree, gio::Cancellable::NONE)?;
    let root = root
        .downcast::<ostree::RepoFile>()
        .expect("write_mtree returns a RepoFile");
    let result_ref = crate::layout::refs::script_result(&result_key(
        &root,
        scripts,
        support,
        source_date_epoch,
    )?);
    if let Some(earlier) = repo.resolve_rev(&result_ref, true)? {
        tracing::info!(
            "the {} scripts ran on this very tree before; reusing their result",
            scripts.len()
        );
        return Ok(ostree::MutableTree::from_commit(repo, &earlier)?);
    }
    let mut phase = PhaseGuard::start(progress, Phase::Scripts);
    phase.detail(format!("({} run)", scripts.len()));

    let ignore = |path: &str| {
        path == dbpath
            || path.starts_with(&format!("{dbpath}/"))
            // Lock and backup files of the shadow tools.
            || matches!(
                path,
                "usr/etc/.pwd.lock"
                    | "usr/etc/passwd-"
                    | "usr/etc/group-"
                    | "usr/etc/shadow-"
                    | "usr/etc/gshadow-"
            )
    };
    let lower = lower::prepare(repo, &root, checkouts)?;
    repo.commit_transaction(gio::Cancellable::NONE)?;
    let effects = sandbox::run(
        repo,
        tree,
        &lower,
        scripts,
        support,
        source_date_epoch,
        &sandbox::Protected {
            root: root.upcast_ref(),
            ignore: &ignore,
            owners,
        },
    )?;
    for (index, output) in &effects.outputs {
        let script = &scripts[*index];
        for line in output.lines() {
            tracing::info!("{} of {}: {line}", script.slot, script.package);
        }
    }
    repo.prepare_transaction(gio::Cancellable::NONE)?;
    crate::failpoint::hit("after-scripts");
    let usr = crate::tree::mtree_lookup(tree, "usr")?
        .1
        .context("the tree has no usr directory")?;
    let changed = sandbox::apply_changes(repo, &effects.upper(), &usr, &ignore)?;
    tracing::debug!("scripts changed {}", changed.join(", "));

    let after = repo.write_mtree(tree, gio::Cancellable::NONE)?;
    let after = after
        .downcast::<ostree::RepoFile>()
        .expect("write_mtree returns a RepoFile");
    let result = repo.write_commit(
        None,
        Some("pkglayer: tree after scripts"),
        None,
        None,
        &after,
        gio::Cancellable::NONE,
    )?;
    repo.transaction_set_ref(None, &result_ref, Some(&result));
    Ok(tree.clone())
}

/// sha256 over everything the scripts can see: the tree, the scripts, the sandbox's inputs.
fn result_key(
    root: &ostree::RepoFile,
    scripts: &[Script],
    support: &[SupportFile],
    source_date_epoch: u64,
) -> Result<String> {
    root.ensure_resolved()?;
    let mut hasher = sha2::Sha256::new();
    hasher.update(RESULT_FORMAT);
    hasher.update(source_date_epoch.to_string());
    hasher.update(root.tree_get_contents_checksum().unwrap_or_default());
    hasher.update(root.tree_get_metadata_checksum().unwrap_or_default());
    for script in scripts {
        hasher.update(format!("\0{script:?}"));
    }
    for file in support {
        hasher.update(format!("\0{file:?}"));
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, files: &[&str]) -> LayeredPackage {
        LayeredPackage {
            nevra: Nevra {
                name: name.into(),
                epoch: 0,
                version: "1".into(),
                release: "1".into(),
                arch: "x86_64".into(),
            },
            pre: Some((vec!["/bin/sh".into()], "echo pre".into(), false)),
            post: None,
            posttrans: Some((vec!["<lua>".into()], "print(1)".into(), false)),
            triggers: Vec::new(),
            files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn trigger(prefix: &str, transaction: bool, priority: u32) -> FileTrigger {
        FileTrigger {
            package: format!("owner-{prefix}"),
            interpreter: vec!["/bin/sh".into()],
            body: "cat".into(),
            prefixes: vec![prefix.into()],
            transaction,
            priority,
        }
    }

    #[test]
    fn slots_follow_rpm_install_order() {
        let layered = [
            package("a", &["/usr/lib64/liba.so"]),
            package("b", &["/usr/bin/b"]),
        ];
        let base = [
            trigger("/usr/lib64", true, 1_000_000),
            trigger("/usr/bin", false, 10),
            trigger("/usr/share", true, 1_000_000),
        ];
        let scripts = plan_scripts(&layered, &base, &[], &BTreeSet::new());
        let order: Vec<(String, Slot, Vec<String>)> = scripts
            .iter()
            .map(|s| (s.package.clone(), s.slot, s.args.clone()))
            .collect();
        let one = vec!["1".to_string()];
        assert_eq!(
            order,
            vec![
                ("a-1-1.x86_64".into(), Slot::Pre, one.clone()),
                ("b-1-1.x86_64".into(), Slot::Pre, one.clone()),
                (
                    "owner-/usr/bin".into(),
                    Slot::FileTriggerIn,
                    vec!["1".into(), "1".into()]
                ),
                ("a-1-1.x86_64".into(), Slot::PostTrans, vec!["0".into()]),
                ("b-1-1.x86_64".into(), Slot::PostTrans, vec!["0".into()]),
                ("owner-/usr/lib64".into(), Slot::TransFileTriggerIn, vec![]),
            ]
        );
        assert_eq!(scripts[2].stdin, vec!["/usr/bin/b".to_string()]);
        assert_eq!(scripts[5].stdin, vec!["/usr/lib64/liba.so".to_string()]);
        assert!(scripts[3].is_lua());
    }

    #[test]
    fn skipped_packages_run_nothing_but_still_fire_triggers() {
        let layered = [package("a", &["/usr/bin/a"])];
        let base = [trigger("/usr/bin", true, 1)];
        let skip = BTreeSet::from(["a".to_string()]);
        let scripts = plan_scripts(&layered, &base, &[], &skip);
        assert_eq!(scripts.len(), 1);
        assert_eq!(scripts[0].slot, Slot::TransFileTriggerIn);
    }
}
