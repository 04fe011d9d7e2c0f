//! Users and groups that layered packages create, with IDs that never change on this machine.
//!
//! Two ways create them: `sysusers.d` fragments of layered packages (read here, before any script,
//! as rpm's `%sysusers` does) and `useradd`/`groupadd` in `%pre` scripts (the tree's own tools, run
//! through small wrappers in the sandbox's `PATH` that add `-u`/`-g`). Either way the ID comes from
//! the machine's allocation file (`var/lib/pkglayer/ids` in the stateroot) when the name was seen
//! before, else it is a free one no other name ever had here. So a user keeps its ID across every
//! re-layering and base upgrade, and after its package is uninstalled and installed again: files it
//! owns in `/var` stay its own.
//!
//! Entries go to the file the base keeps its accounts in: `usr/lib/passwd` (nss-altfiles) when the
//! base has one, else `usr/etc/passwd`; likewise for `group`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ostree::gio;

use crate::scripts::sandbox::SupportFile;

/// The allocation file's name in the stateroot's state directory.
pub const ALLOCATIONS_FILE: &str = "ids";
/// System IDs are handed out downwards from here, as useradd and systemd-sysusers do.
const SYSTEM_ID_MAX: u32 = 999;
const SYSTEM_ID_MIN: u32 = 201;
/// Regular IDs upwards from here.
const REGULAR_ID_MIN: u32 = 1000;
/// How many free regular IDs the sandbox's useradd gets to pick from.
const REGULAR_IDS_OFFERED: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    fn letter(self) -> &'static str {
        match self {
            Kind::User => "u",
            Kind::Group => "g",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Kind::User => "passwd",
            Kind::Group => "group",
        }
    }
}

/// The IDs this machine gave out, by name; kept in a small text file (`u NAME ID` / `g NAME ID`).
#[derive(Debug, Clone, Default)]
pub struct Allocations {
    path: PathBuf,
    ids: BTreeMap<(Kind, String), u32>,
    /// Whether anything was recorded since loading (only then is the file written).
    changed: bool,
}

impl Allocations {
    pub fn load(path: &Path) -> Result<Self> {
        let mut ids = BTreeMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (number, line) in text.lines().enumerate() {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let (kind, name, id) = match fields[..] {
                        ["u", name, id] => (Kind::User, name, id),
                        ["g", name, id] => (Kind::Group, name, id),
                        [] => continue,
                        _ => bail!(
                            "{}:{}: expected `u NAME ID` or `g NAME ID`",
                            path.display(),
                            number + 1
                        ),
                    };
                    let id = id.parse().with_context(|| {
                        format!("{}:{}: {id} is not an ID", path.display(), number + 1)
                    })?;
                    ids.insert((kind, name.to_string()), id);
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("Reading {}", path.display())),
        }
        Ok(Allocations {
            path: path.to_path_buf(),
            ids,
            changed: false,
        })
    }

    pub fn get(&self, kind: Kind, name: &str) -> Option<u32> {
        self.ids.get(&(kind, name.to_string())).copied()
    }

    /// IDs given to names of `kind`.
    fn taken(&self, kind: Kind) -> BTreeSet<u32> {
        ids_of(&self.ids, kind)
    }

    /// Records `name` = `id` unless the name has an ID already.
    fn record(&mut self, kind: Kind, name: &str, id: u32) {
        if let std::collections::btree_map::Entry::Vacant(entry) =
            self.ids.entry((kind, name.to_string()))
        {
            entry.insert(id);
            self.changed = true;
        }
    }

    /// The file's text: `u NAME ID` / `g NAME ID` lines.
    fn text(&self) -> String {
        self.ids
            .iter()
            .map(|((kind, name), id)| format!("{} {name} {id}\n", kind.letter()))
            .collect()
    }

    /// Writes the file atomically (a temporary file renamed over it), if anything was recorded.
    pub fn save(&self) -> Result<()> {
        if !self.changed {
            return Ok(());
        }
        let dir = self
            .path
            .parent()
            .context("the allocation file has a folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("Creating {}", dir.display()))?;
        let temporary = self.path.with_extension("tmp");
        std::fs::write(&temporary, self.text())
            .with_context(|| format!("Writing {}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path)
            .with_context(|| format!("Writing {}", self.path.display()))?;
        Ok(())
    }
}

/// The IDs of the names of `kind` in a name → ID map.
fn ids_of(ids: &BTreeMap<(Kind, String), u32>, kind: Kind) -> BTreeSet<u32> {
    ids.iter()
        .filter(|((k, _), _)| *k == kind)
        .map(|(_, id)| *id)
        .collect()
}

/// The accounts of a tree being composed: every `name:x:id:` entry of `usr/etc` and `usr/lib`.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// Where new entries go: `usr/lib` (nss-altfiles) or `usr/etc`.
    home: &'static str,
    ids: BTreeMap<(Kind, String), u32>,
}

impl Accounts {
    pub fn read(repo: &ostree::Repo, tree: &ostree::MutableTree) -> Result<Self> {
        let mut ids = BTreeMap::new();
        let mut home = "usr/etc";
        for dir in ["usr/etc", "usr/lib"] {
            for kind in [Kind::User, Kind::Group] {
                let path = format!("{dir}/{}", kind.file());
                let Some(text) = crate::tree::mtree_read_file(repo, tree, &path)? else {
                    continue;
                };
                if dir == "usr/lib" && kind == Kind::User {
                    home = "usr/lib";
                }
                for line in String::from_utf8_lossy(&text).lines() {
                    let mut fields = line.split(':');
                    let (name, id) = (fields.next(), fields.nth(1));
                    if let (Some(name), Some(Ok(id))) = (name, id.map(str::parse)) {
                        ids.entry((kind, name.to_string())).or_insert(id);
                    }
                }
            }
        }
        Ok(Accounts { home, ids })
    }

    pub fn id(&self, kind: Kind, name: &str) -> Option<u32> {
        if name == "root" {
            return Some(0);
        }
        self.ids.get(&(kind, name.to_string())).copied()
    }

    fn used(&self, kind: Kind) -> BTreeSet<u32> {
        ids_of(&self.ids, kind)
    }

    /// Names of `kind` that `self` has and `before` did not.
    fn added_since(&self, before: &Accounts) -> Vec<(Kind, String, u32)> {
        self.ids
            .iter()
            .filter(|(key, _)| !before.ids.contains_key(key))
            .map(|((kind, name), id)| (*kind, name.clone(), *id))
            .collect()
    }
}

/// The `sysusers.d` files among `files` (paths as rpm names them) with their text, read from `tree`.
pub fn sysusers_fragments<'a>(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    files: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<(String, String)>> {
    let mut fragments = Vec::new();
    for file in files {
        let Some(relative) = file.strip_prefix("/usr/lib/sysusers.d/") else {
            continue;
        };
        if !relative.ends_with(".conf") {
            continue;
        }
        if let Some(text) = crate::tree::mtree_read_file(repo, tree, &file[1..])? {
            fragments.push((file.clone(), String::from_utf8_lossy(&text).into_owned()));
        }
    }
    Ok(fragments)
}

/// Creates the users and groups of `fragments` (`(path, text)` of `sysusers.d` files) that the tree
/// lacks, with IDs from `allocations` or new ones recorded there.
pub fn apply_sysusers(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    fragments: &[(String, String)],
    allocations: &mut Allocations,
) -> Result<()> {
    let mut accounts = Accounts::read(repo, tree)?;
    let mut new_lines: BTreeMap<Kind, String> = BTreeMap::new();
    for (path, text) in fragments {
        for (number, line) in text.lines().enumerate() {
            let entry = match parse_sysusers_line(line) {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(why) => bail!("{path}:{}: {why}", number + 1),
            };
            match entry {
                SysusersEntry::Group { name, id } => {
                    if let (gid, true) = ensure(Kind::Group, &name, id, &mut accounts, allocations)
                    {
                        new_lines
                            .entry(Kind::Group)
                            .or_default()
                            .push_str(&format!("{name}:x:{gid}:\n"));
                    }
                }
                SysusersEntry::User {
                    name,
                    id,
                    gecos,
                    home,
                    shell,
                } => {
                    if accounts.id(Kind::User, &name).is_some() {
                        continue;
                    }
                    // Like systemd-sysusers: the user's group has its name and, if free, its ID.
                    let (gid, new_group) =
                        ensure(Kind::Group, &name, id, &mut accounts, allocations);
                    if new_group {
                        new_lines
                            .entry(Kind::Group)
                            .or_default()
                            .push_str(&format!("{name}:x:{gid}:\n"));
                    }
                    let (uid, _) = ensure(
                        Kind::User,
                        &name,
                        id.or(Some(gid)),
                        &mut accounts,
                        allocations,
                    );
                    new_lines
                        .entry(Kind::User)
                        .or_default()
                        .push_str(&format!("{name}:x:{uid}:{gid}:{gecos}:{home}:{shell}\n"));
                }
            }
        }
    }
    for (kind, lines) in new_lines {
        if !lines.is_empty() {
            append_tree_file(
                repo,
                tree,
                &format!("{}/{}", accounts.home, kind.file()),
                &lines,
            )?;
        }
    }
    Ok(())
}

/// The ID of `name`, given one (and recorded) if the tree lacks it; true when it was created.
fn ensure(
    kind: Kind,
    name: &str,
    wanted: Option<u32>,
    accounts: &mut Accounts,
    allocations: &mut Allocations,
) -> (u32, bool) {
    if let Some(id) = accounts.id(kind, name) {
        return (id, false);
    }
    let id = allocate(kind, name, wanted, accounts, allocations, true);
    accounts.ids.insert((kind, name.to_string()), id);
    allocations.record(kind, name, id);
    (id, true)
}

/// An ID for a new `name`: the one this machine gave it before, else `wanted` if nobody has or had
/// it, else the highest free system ID (or lowest free regular one).
fn allocate(
    kind: Kind,
    name: &str,
    wanted: Option<u32>,
    accounts: &Accounts,
    allocations: &Allocations,
    system: bool,
) -> u32 {
    if let Some(id) = allocations.get(kind, name) {
        return id;
    }
    let used = accounts.used(kind);
    let taken = allocations.taken(kind);
    let free = |id: &u32| !used.contains(id) && !taken.contains(id);
    if let Some(id) = wanted.filter(free) {
        return id;
    }
    free_ids(kind, accounts, allocations, system)
        .into_iter()
        .next()
        .unwrap_or(SYSTEM_ID_MIN)
}

/// IDs nobody on this tree or machine has, in the order they are handed out.
fn free_ids(kind: Kind, accounts: &Accounts, allocations: &Allocations, system: bool) -> Vec<u32> {
    let used = accounts.used(kind);
    let taken = allocations.taken(kind);
    let free = |id: &u32| !used.contains(id) && !taken.contains(id);
    if system {
        (SYSTEM_ID_MIN..=SYSTEM_ID_MAX).rev().filter(free).collect()
    } else {
        (REGULAR_ID_MIN..u32::MAX)
            .filter(free)
            .take(REGULAR_IDS_OFFERED)
            .collect()
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SysusersEntry {
    User {
        name: String,
        id: Option<u32>,
        gecos: String,
        home: String,
        shell: String,
    },
    Group {
        name: String,
        id: Option<u32>,
    },
}

/// One line of a sysusers.d file: `u`/`g` entries; `m` and `r` lines and comments give `None`.
fn parse_sysusers_line(line: &str) -> Result<Option<SysusersEntry>, String> {
    let fields = split_quoted(line.trim());
    let field = |i: usize| fields.get(i).map(String::as_str).filter(|f| *f != "-");
    let numeric = |text: Option<&str>| text.and_then(|t| t.split(':').next()?.parse().ok());
    match fields.first().map(String::as_str) {
        None => Ok(None),
        Some(comment) if comment.starts_with('#') => Ok(None),
        Some("u" | "u!") => {
            let name = field(1).ok_or("a `u` line needs a name")?.to_string();
            Ok(Some(SysusersEntry::User {
                id: numeric(field(2)),
                gecos: field(3).unwrap_or("").to_string(),
                home: field(4).unwrap_or("/").to_string(),
                shell: field(5).unwrap_or("/usr/sbin/nologin").to_string(),
                name,
            }))
        }
        Some("g") => {
            let name = field(1).ok_or("a `g` line needs a name")?.to_string();
            Ok(Some(SysusersEntry::Group {
                name,
                id: numeric(field(2)),
            }))
        }
        Some("m" | "r") => Ok(None),
        Some(other) => Err(format!("unknown sysusers line type {other:?}")),
    }
}

/// Splits on whitespace, keeping "double quoted" fields whole.
fn split_quoted(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    fields.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        fields.push(current);
    }
    fields
}

/// The files the sandbox needs so `useradd`/`groupadd` in scripts hand out stable IDs: wrappers
/// ahead of the tree's tools in `PATH`, the machine's allocations, and the free IDs to pick from.
pub fn sandbox_support(accounts: &Accounts, allocations: &Allocations) -> Vec<SupportFile> {
    let list = |kind: Kind, system: bool| -> String {
        free_ids(kind, accounts, allocations, system)
            .iter()
            .map(|id| format!("{id}\n"))
            .collect()
    };
    let mut files = vec![
        SupportFile {
            path: "ids".into(),
            contents: allocations.text(),
        },
        SupportFile {
            path: "bin/useradd".into(),
            contents: USERADD.into(),
        },
        SupportFile {
            path: "bin/groupadd".into(),
            contents: GROUPADD.into(),
        },
        SupportFile {
            path: "accounts.sh".into(),
            contents: ACCOUNTS_SH.into(),
        },
    ];
    for (kind, system, name) in [
        (Kind::User, true, "free-u-system"),
        (Kind::User, false, "free-u-regular"),
        (Kind::Group, true, "free-g-system"),
        (Kind::Group, false, "free-g-regular"),
    ] {
        files.push(SupportFile {
            path: name.into(),
            contents: list(kind, system),
        });
    }
    files
}

/// Shell functions the wrappers share (POSIX sh, no external tools: any tree's shell runs them).
const ACCOUNTS_SH: &str = r#"# Written by pkglayer: ID lookups for the useradd/groupadd wrappers.
IN=/run/pkglayer/in
# has_name FILE NAME: whether an entry NAME exists in FILE (passwd or group format)
has_name() {
    [ -r "$1" ] || return 1
    while IFS=: read -r entry _; do [ "$entry" = "$2" ] && return 0; done <"$1"
    return 1
}
# has_id FILE ID: whether any entry of FILE has ID
has_id() {
    [ -r "$1" ] || return 1
    while IFS=: read -r _ _ entry _; do [ "$entry" = "$2" ] && return 0; done <"$1"
    return 1
}
# known KIND NAME: whether the tree has the user (u) or group (g) NAME
known() {
    if [ "$1" = u ]; then has_name /etc/passwd "$2" || has_name /usr/lib/passwd "$2"
    else has_name /etc/group "$2" || has_name /usr/lib/group "$2"; fi
}
# pick KIND NAME SYSTEM: the ID this machine gave NAME before, else the first free one
pick() {
    while read -r kind name id; do
        [ "$kind" = "$1" ] && [ "$name" = "$2" ] && { echo "$id"; return 0; }
    done <"$IN/ids"
    if [ "$1" = u ]; then files="/etc/passwd /usr/lib/passwd"; else files="/etc/group /usr/lib/group"; fi
    range=regular; [ -n "$3" ] && range=system
    while read -r id; do
        in_use=
        for file in $files; do has_id "$file" "$id" && in_use=1; done
        [ -z "$in_use" ] && { echo "$id"; return 0; }
    done <"$IN/free-$1-$range"
    echo "pkglayer: no free ID left for $2" >&2
    return 1
}
"#;

const USERADD: &str = r#"#!/bin/sh
# Written by pkglayer: the tree's useradd, with the ID this machine gave the user before (or one it
# never gave out) unless the script names one.
. /run/pkglayer/in/accounts.sh
name= system= uid_given= group_given=
for arg in "$@"; do
    case $arg in
        -r|--system) system=1 ;;
        -u|--uid|--uid=*|-o|--non-unique) uid_given=1 ;;
        -g|--gid|--gid=*|-N|--no-user-group|-U|--user-group) group_given=1 ;;
    esac
    name=$arg
done
if [ -n "$name" ] && ! known u "$name"; then
    if [ -z "$uid_given" ]; then
        uid=$(pick u "$name" "$system") || exit 1
        set -- -u "$uid" "$@"
    fi
    if [ -z "$group_given" ]; then
        known g "$name" || groupadd ${system:+-r} "$name" || exit 1
        set -- -g "$name" "$@"
    fi
fi
exec /usr/sbin/useradd "$@"
"#;

const GROUPADD: &str = r#"#!/bin/sh
# Written by pkglayer: the tree's groupadd, with the ID this machine gave the group before (or one it
# never gave out) unless the script names one.
. /run/pkglayer/in/accounts.sh
name= system= gid_given=
for arg in "$@"; do
    case $arg in
        -r|--system) system=1 ;;
        -g|--gid|--gid=*|-o|--non-unique) gid_given=1 ;;
    esac
    name=$arg
done
if [ -n "$name" ] && [ -z "$gid_given" ] && ! known g "$name"; then
    gid=$(pick g "$name" "$system") || exit 1
    set -- -g "$gid" "$@"
fi
exec /usr/sbin/groupadd "$@"
"#;

/// Records the accounts scripts created (present in `after`, absent `before`) in `allocations`.
pub fn record_created(after: &Accounts, before: &Accounts, allocations: &mut Allocations) {
    for (kind, name, id) in after.added_since(before) {
        allocations.record(kind, &name, id);
    }
}

/// Appends `text` to the regular file at `path` (created, root 0644, if missing).
fn append_tree_file(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    path: &str,
    text: &str,
) -> Result<()> {
    let (parent, name) = crate::tree::split_parent(path);
    let dir = crate::tree::mtree_dir(tree, parent)?
        .with_context(|| format!("{path}: its directory is not in the tree"))?;
    let mut contents = crate::tree::mtree_read_file(repo, tree, path)?.unwrap_or_default();
    if !contents.is_empty() && !contents.ends_with(b"\n") {
        contents.push(b'\n');
    }
    contents.extend_from_slice(text.as_bytes());
    let checksum = repo.write_regfile_inline(
        None,
        0,
        0,
        libc::S_IFREG | 0o644,
        None,
        &contents,
        gio::Cancellable::NONE,
    )?;
    dir.replace_file(name, &checksum)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysusers_lines() {
        assert_eq!(
            parse_sysusers_line(r#"u chrony - "chrony system user" /var/lib/chrony"#),
            Ok(Some(SysusersEntry::User {
                name: "chrony".into(),
                id: None,
                gecos: "chrony system user".into(),
                home: "/var/lib/chrony".into(),
                shell: "/usr/sbin/nologin".into(),
            }))
        );
        assert_eq!(
            parse_sysusers_line("g  tss 59"),
            Ok(Some(SysusersEntry::Group {
                name: "tss".into(),
                id: Some(59)
            }))
        );
        assert_eq!(parse_sysusers_line("# comment"), Ok(None));
        assert_eq!(parse_sysusers_line("m chrony wheel"), Ok(None));
        assert!(parse_sysusers_line("x what").is_err());
    }

    #[test]
    fn ids_come_back_and_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        let mut allocations = Allocations::load(&path).unwrap();
        let accounts = Accounts {
            home: "usr/etc",
            ids: BTreeMap::from([
                ((Kind::User, "root".into()), 0),
                ((Kind::User, "a".into()), 999),
            ]),
        };
        let first = allocate(Kind::User, "alice", None, &accounts, &allocations, true);
        assert_eq!(first, 998);
        allocations.record(Kind::User, "alice", first);
        allocations.save().unwrap();

        let allocations = Allocations::load(&path).unwrap();
        assert_eq!(
            allocate(Kind::User, "alice", None, &accounts, &allocations, true),
            998
        );
        // Another name never gets alice's ID, even when alice is not in the tree.
        assert_eq!(
            allocate(Kind::User, "bob", Some(998), &accounts, &allocations, true),
            997
        );
        assert_eq!(
            allocate(
                Kind::User,
                "carol",
                Some(500),
                &accounts,
                &allocations,
                true
            ),
            500
        );
    }
}
