//! A tree's passwd and group files: the accounts it has, and appending new ones.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};

use super::{Kind, ids_of};

/// The accounts of a tree being composed: every `name:x:id:` entry of `usr/etc` and `usr/lib`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Accounts {
    /// Where new entries go: `usr/lib` (nss-altfiles) or `usr/etc`.
    home: &'static str,
    ids: BTreeMap<(Kind, String), u32>,
}

impl Accounts {
    /// Reads the passwd and group files of `tree`; for a name in both, `usr/etc` wins, as in the
    /// usual nsswitch order (`files` before `altfiles`).
    pub(crate) fn read(repo: &ostree::Repo, tree: &ostree::MutableTree) -> Result<Self> {
        Self::read_with(|path| crate::tree::mtree_read_file(repo, tree, path))
    }

    /// Like [`Accounts::read`], from the tree of `commit`.
    pub(crate) fn of_commit(repo: &ostree::Repo, commit: &str) -> Result<Self> {
        Self::read_with(|path| crate::tree::read_file(repo, commit, path))
    }

    /// Reads the accounts files through `read_file` (a relative path to its bytes, if it exists).
    fn read_with(read_file: impl Fn(&str) -> Result<Option<Vec<u8>>>) -> Result<Self> {
        let mut ids = BTreeMap::new();
        let mut home = "usr/etc";
        for dir in ["usr/etc", "usr/lib"] {
            for kind in [Kind::User, Kind::Group] {
                let Some(text) = read_file(&format!("{dir}/{}", kind.file()))? else {
                    continue;
                };
                if dir == "usr/lib" && kind == Kind::User {
                    home = "usr/lib";
                }
                for (name, id) in parse_id_lines(&String::from_utf8_lossy(&text)) {
                    ids.entry((kind, name.to_string())).or_insert(id);
                }
            }
        }
        Ok(Accounts { home, ids })
    }

    /// Accounts with these IDs, new entries going to `usr/etc`.
    #[cfg(test)]
    pub(super) fn with_ids<'a>(ids: impl IntoIterator<Item = (Kind, &'a str, u32)>) -> Self {
        Accounts {
            home: "usr/etc",
            ids: ids
                .into_iter()
                .map(|(kind, name, id)| ((kind, name.to_string()), id))
                .collect(),
        }
    }

    /// The ID of `name`; root is 0 even in a tree without passwd (packages may own files as root).
    pub(crate) fn id(&self, kind: Kind, name: &str) -> Option<u32> {
        if name == "root" {
            return Some(0);
        }
        self.ids.get(&(kind, name.to_string())).copied()
    }

    /// IDs the tree's names of `kind` have.
    pub(super) fn used(&self, kind: Kind) -> BTreeSet<u32> {
        ids_of(&self.ids, kind)
    }

    /// Notes that `name` now has `id` (its entry is written separately, see [`Accounts::append`]).
    pub(super) fn insert(&mut self, kind: Kind, name: &str, id: u32) {
        self.ids.insert((kind, name.to_string()), id);
    }

    /// Names of `kind` that `self` has and `before` did not.
    pub(super) fn added_since(&self, before: &Accounts) -> Vec<(Kind, String, u32)> {
        self.ids
            .iter()
            .filter(|(key, _)| !before.ids.contains_key(key))
            .map(|((kind, name), id)| (*kind, name.clone(), *id))
            .collect()
    }

    /// Appends `lines` (whole passwd or group entries) to the tree's file of `kind` where the base
    /// keeps its accounts.
    pub(super) fn append(
        &self,
        repo: &ostree::Repo,
        tree: &ostree::MutableTree,
        kind: Kind,
        lines: &str,
    ) -> Result<()> {
        append_tree_file(repo, tree, &format!("{}/{}", self.home, kind.file()), lines)
    }
}

/// The `passwd` and `group` of `usr/etc` and `usr/lib` as they were before the scripts, which see
/// them merged in `usr/etc` (see [`Accounts::open_for_scripts`]).
pub(crate) struct EtcAccounts {
    /// Per kind: the text of its `usr/etc` and `usr/lib` files before (empty if missing).
    files: Vec<(Kind, String, String)>,
}

impl Accounts {
    /// On a base keeping its system accounts in `usr/lib` (nss-altfiles), makes `usr/etc/passwd`
    /// and `group` hold those too, for the scripts: `useradd`, `groupadd` and `usermod` read and
    /// write only `/etc`, and must see every account (a user's group of the base, IDs in use).
    /// `None` on other bases. [`EtcAccounts::settle`] puts every account back, new ones in
    /// `usr/lib`.
    pub(crate) fn open_for_scripts(
        &self,
        repo: &ostree::Repo,
        tree: &ostree::MutableTree,
    ) -> Result<Option<EtcAccounts>> {
        if self.home != "usr/lib" {
            return Ok(None);
        }
        let mut files = Vec::new();
        for kind in [Kind::User, Kind::Group] {
            let read = |dir: &str| -> Result<String> {
                Ok(
                    crate::tree::mtree_read_file(repo, tree, &format!("{dir}/{}", kind.file()))?
                        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                        .unwrap_or_default(),
                )
            };
            let (etc, lib) = (read("usr/etc")?, read("usr/lib")?);
            let in_etc: BTreeSet<&str> = etc.lines().filter_map(entry_name).collect();
            let mut merged = with_newline(etc.clone());
            for line in lib.lines() {
                if entry_name(line).is_some_and(|name| !in_etc.contains(name)) {
                    merged.push_str(line);
                    merged.push('\n');
                }
            }
            replace_tree_file(
                repo,
                tree,
                &format!("usr/etc/{}", kind.file()),
                merged.as_bytes(),
            )?;
            files.push((kind, etc, lib));
        }
        Ok(Some(EtcAccounts { files }))
    }
}

impl EtcAccounts {
    /// After the scripts, splits the merged files back (see [`split_accounts`]): new entries go
    /// to `usr/lib`, as rpm-ostree does.
    pub(crate) fn settle(self, repo: &ostree::Repo, tree: &ostree::MutableTree) -> Result<()> {
        for (kind, etc_before, lib_before) in self.files {
            let etc_path = format!("usr/etc/{}", kind.file());
            let now = crate::tree::mtree_read_file(repo, tree, &etc_path)?.unwrap_or_default();
            let (etc, lib) =
                split_accounts(&etc_before, &lib_before, &String::from_utf8_lossy(&now));
            replace_tree_file(repo, tree, &etc_path, etc.as_bytes())?;
            replace_tree_file(
                repo,
                tree,
                &format!("usr/lib/{}", kind.file()),
                lib.as_bytes(),
            )?;
        }
        Ok(())
    }
}

/// The `usr/etc` and `usr/lib` files after the scripts changed `now`, the merge of `etc_before`
/// and `lib_before`. `usr/etc` keeps the entries of its names (as the scripts left them) and its
/// lines that are no entry; `usr/lib` keeps its lines in order, an entry of its own as the scripts
/// left it (dropped if they removed it), and gets every entry of a name neither file had.
fn split_accounts(etc_before: &str, lib_before: &str, now: &str) -> (String, String) {
    let in_etc: BTreeSet<&str> = etc_before.lines().filter_map(entry_name).collect();
    let in_lib: BTreeSet<&str> = lib_before.lines().filter_map(entry_name).collect();
    let now_entries: BTreeMap<&str, &str> = now
        .lines()
        .filter_map(|line| entry_name(line).map(|name| (name, line)))
        .collect();
    let mut etc = String::new();
    for line in now.lines() {
        if entry_name(line).is_none_or(|name| in_etc.contains(name)) {
            etc.push_str(line);
            etc.push('\n');
        }
    }
    let mut lib = String::new();
    for line in lib_before.lines() {
        let line = match entry_name(line) {
            Some(name) if !in_etc.contains(name) => match now_entries.get(name) {
                Some(now_line) => now_line,
                None => continue,
            },
            _ => line,
        };
        lib.push_str(line);
        lib.push('\n');
    }
    for line in now.lines() {
        if entry_name(line).is_some_and(|name| !in_etc.contains(name) && !in_lib.contains(name)) {
            lib.push_str(line);
            lib.push('\n');
        }
    }
    (etc, lib)
}

/// The name of a passwd or group entry (`name:…`), if `line` is one.
fn entry_name(line: &str) -> Option<&str> {
    let (name, rest) = line.split_once(':')?;
    (!name.is_empty() && !name.starts_with('#') && !rest.is_empty()).then_some(name)
}

fn with_newline(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Sets the regular file at `path` to `text` (root, 0644).
fn replace_tree_file(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    path: &str,
    contents: &[u8],
) -> Result<()> {
    let (parent, name) = crate::tree::split_parent(path);
    let dir = crate::tree::mtree_dir(tree, parent)?
        .with_context(|| format!("{path}: its directory is not in the tree"))?;
    let checksum = crate::tree::write_root_file(repo, contents)?;
    dir.replace_file(name, &checksum)?;
    Ok(())
}

/// The `(name, id)` of each `name:x:id:…` line of a passwd or group file, in order. Lines without
/// a numeric third field (blank lines, comments, damaged entries) are skipped.
fn parse_id_lines(text: &str) -> impl Iterator<Item = (&str, u32)> {
    text.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse().ok()?;
        Some((name, id))
    })
}

/// Appends `text` to the regular file at `path` (created, root 0644, if missing).
fn append_tree_file(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    path: &str,
    text: &str,
) -> Result<()> {
    let mut contents = crate::tree::mtree_read_file(repo, tree, path)?.unwrap_or_default();
    // An entry glued to a last line without its newline would corrupt both.
    if !contents.is_empty() && !contents.ends_with(b"\n") {
        contents.push(b'\n');
    }
    contents.extend_from_slice(text.as_bytes());
    replace_tree_file(repo, tree, path, &contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lines_skip_what_is_not_an_entry() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    \n\
                    # a comment\n\
                    broken\n\
                    short:x\n\
                    words:x:many:\n\
                    negative:x:-1:\n\
                    tss:x:59:\n\
                    nobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin";
        assert_eq!(
            parse_id_lines(text).collect::<Vec<_>>(),
            [("root", 0), ("tss", 59), ("nobody", 65534)]
        );
        assert_eq!(parse_id_lines("").count(), 0);
    }

    #[test]
    fn accounts_scripts_add_go_to_usr_lib_and_the_rest_stays() {
        let etc = "root:x:0:0:root:/root:/bin/sh\n";
        let lib = "# base accounts\nbin:x:1:1::/:/sbin/nologin\ndialout:x:18:\nroot:x:0:0:shadowed:/:/bin/sh\n";
        // Scripts saw the merge; they added a user and a group, put the user into a base group,
        // and changed root's shell.
        let now = "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:/sbin/nologin\n\
                   dialout:x:18:svc\nsvc:x:999:999::/:/sbin/nologin\n";
        let (etc, lib) = split_accounts(etc, lib, now);
        assert_eq!(etc, "root:x:0:0:root:/root:/bin/bash\n");
        assert_eq!(
            lib,
            "# base accounts\nbin:x:1:1::/:/sbin/nologin\ndialout:x:18:svc\n\
             root:x:0:0:shadowed:/:/bin/sh\nsvc:x:999:999::/:/sbin/nologin\n"
        );
    }

    #[test]
    fn knows_root_and_what_was_added() {
        let before = Accounts::with_ids([(Kind::User, "a", 999)]);
        let mut after = before.clone();
        after.insert(Kind::Group, "a", 999);
        assert_eq!(after.id(Kind::User, "root"), Some(0));
        assert_eq!(after.id(Kind::Group, "a"), Some(999));
        assert_eq!(after.id(Kind::User, "b"), None);
        assert_eq!(
            after.added_since(&before),
            [(Kind::Group, "a".to_string(), 999)]
        );
    }
}
