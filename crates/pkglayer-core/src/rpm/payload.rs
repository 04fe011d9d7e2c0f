//! An RPM's payload written as an OSTree tree, with the path rules of [`super::placement`] applied.
//!
//! Each file's bytes go straight into a content object. In a hardlink set one member carries the
//! bytes and the others none; those wait until the set's bytes are seen.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use ostree::gio;
use ostree::glib;

use super::Nevra;
use super::placement::{self, Placement};
use crate::commit_metadata::NamedOwner;
use crate::error::UserError;
use crate::users::{Accounts, Kind};

/// What a refused path's hint says.
const PLACEABLE: &str = "layered packages may only ship files under /usr, /etc, /opt, /boot (and directories or symlinks under /var and /run)";

/// The written tree of a package.
pub(crate) struct PayloadTree {
    pub root: gio::File,
    /// Files and directories not owned by root:root, for compose to give their IDs.
    pub named_owners: Vec<NamedOwner>,
}

/// Writes the files and directories of `package` as OSTree objects and returns the written root.
/// Call inside a repo transaction.
pub(crate) fn write(
    repo: &ostree::Repo,
    package: &::rpm::Package,
    nevra: &Nevra,
    accounts: &Accounts,
) -> Result<PayloadTree> {
    let mut writer = TreeWriter::new(repo, nevra)?;
    for entry in package.files()? {
        writer.add(&entry?, accounts)?;
    }
    writer.finish()
}

/// A payload tree being written.
struct TreeWriter<'a> {
    repo: &'a ostree::Repo,
    nevra: &'a Nevra,
    root: ostree::MutableTree,
    dirmeta: DirMetaCache,
    /// tmpfiles.d lines by path: what `/var`, `/run` and relocated paths become.
    tmpfiles: BTreeMap<String, String>,
    named_owners: Vec<NamedOwner>,
    /// Hardlink members without bytes, written once the member with them is seen.
    pending_links: Vec<PendingLink>,
    /// Bytes by file digest, for hardlink members written after the one carrying them. (Every
    /// file's bytes are kept: the payload does not say which files are linked.)
    link_contents: HashMap<String, Vec<u8>>,
}

/// A hardlink member whose bytes another member carries.
struct PendingLink {
    parent: ostree::MutableTree,
    name: String,
    path: String,
    digest: String,
    file: RegularFile,
}

impl<'a> TreeWriter<'a> {
    fn new(repo: &'a ostree::Repo, nevra: &'a Nevra) -> Result<Self> {
        let mut dirmeta = DirMetaCache::default();
        let root = ostree::MutableTree::new();
        root.set_metadata_checksum(&dirmeta.get(repo, 0, 0, 0o755)?);
        Ok(TreeWriter {
            repo,
            nevra,
            root,
            dirmeta,
            tmpfiles: BTreeMap::new(),
            named_owners: Vec::new(),
            pending_links: Vec::new(),
            link_contents: HashMap::new(),
        })
    }

    /// The refusal of `path` of this package, saying `why`.
    fn refuse(&self, path: &str, why: &str) -> anyhow::Error {
        UserError::new(format!("package {} ships {path}, {why}", self.nevra))
            .hint(PLACEABLE)
            .into()
    }

    /// Adds one payload entry.
    fn add(&mut self, entry: &::rpm::RpmFile, accounts: &Accounts) -> Result<()> {
        let meta = &entry.metadata;
        let path = meta.path().to_string_lossy().into_owned();
        if meta.flags().contains(::rpm::FileFlags::GHOST) {
            return Ok(());
        }
        if !placement::is_clean(&path) {
            return Err(self.refuse(
                &path,
                "a path with `..`, `.` or empty parts, or not absolute",
            ));
        }
        let kind = meta.mode().file_type();
        let target = match placement::place(&path) {
            Some(Placement::Tree(target)) => target,
            Some(Placement::Tmpfiles) => {
                let line = self.tmpfiles_line(meta, &path)?;
                self.tmpfiles.insert(path, line);
                return Ok(());
            }
            None => {
                return Err(self.refuse(&path, "outside the directories an OSTree image may hold"));
            }
        };
        if let Some((link, line)) = placement::link_back(&path) {
            self.tmpfiles.insert(link, line);
        }
        if (meta.user(), meta.group()) != ("root", "root")
            && matches!(kind, ::rpm::FileType::Dir | ::rpm::FileType::Regular)
        {
            self.named_owners.push(NamedOwner {
                path: target.clone(),
                user: meta.user().to_string(),
                group: meta.group().to_string(),
            });
        }
        // Owners the base lacks may be created by this package's own sysusers.d file or %pre;
        // compose settles them. Until then the file is root's.
        let uid = accounts.id(Kind::User, meta.user()).unwrap_or(0);
        let gid = accounts.id(Kind::Group, meta.group()).unwrap_or(0);
        let permissions = u32::from(meta.mode().permissions());
        let (parent_path, name) = crate::tree::split_parent(&target);
        let parent = self.ensure_dirs(parent_path)?;
        match kind {
            ::rpm::FileType::Dir => {
                let dir = match crate::tree::mtree_lookup(&parent, name)? {
                    (_, Some(existing)) => existing,
                    _ => parent.ensure_dir(name)?,
                };
                dir.set_metadata_checksum(&self.dirmeta.get(self.repo, uid, gid, permissions)?);
            }
            ::rpm::FileType::Regular => {
                let file = RegularFile {
                    uid,
                    gid,
                    mode: libc::S_IFREG | permissions,
                    xattrs: capabilities_xattr(meta.caps())?,
                };
                let digest = meta.digest().map(|d| d.as_hex().to_string());
                match (entry.content(), digest) {
                    // In a hardlink set only one member carries the bytes; the others wait for it.
                    (None, Some(digest)) if meta.size() > 0 => {
                        self.pending_links.push(PendingLink {
                            parent,
                            name: name.to_string(),
                            path,
                            digest,
                            file,
                        });
                    }
                    (content, digest) => {
                        let content = content.unwrap_or_default();
                        if let Some(digest) = digest {
                            self.link_contents
                                .entry(digest)
                                .or_insert_with(|| content.to_vec());
                        }
                        parent.replace_file(name, &file.write(self.repo, content)?)?;
                    }
                }
            }
            ::rpm::FileType::SymbolicLink => {
                let target = meta.linkto().unwrap_or_default();
                let checksum = self.repo.write_symlink(
                    None,
                    uid,
                    gid,
                    None,
                    target,
                    gio::Cancellable::NONE,
                )?;
                parent.replace_file(name, &checksum)?;
            }
            other => {
                return Err(self.refuse(
                    &path,
                    &format!("a {other:?}, which OSTree trees cannot hold"),
                ));
            }
        }
        Ok(())
    }

    /// The tmpfiles.d line that recreates a directory or symlink of `/var` or `/run` at boot; a
    /// file there is refused.
    fn tmpfiles_line(&self, meta: &::rpm::FileEntry, path: &str) -> Result<String> {
        let permissions = u32::from(meta.mode().permissions());
        match meta.mode().file_type() {
            ::rpm::FileType::Dir => Ok(format!(
                "d {path} {permissions:04o} {} {} - -",
                meta.user(),
                meta.group()
            )),
            ::rpm::FileType::SymbolicLink => Ok(format!(
                "L {path} - - - - {}",
                meta.linkto().unwrap_or_default()
            )),
            _ => Err(self.refuse(
                path,
                "a file in a directory that belongs to the machine, not the image",
            )),
        }
    }

    /// Writes the waiting hardlink members and the tmpfiles.d file, then the tree.
    fn finish(mut self) -> Result<PayloadTree> {
        for link in std::mem::take(&mut self.pending_links) {
            let content = self.link_contents.get(&link.digest).ok_or_else(|| {
                self.refuse(&link.path, "a hardlink whose content is not in the payload")
            })?;
            link.parent
                .replace_file(&link.name, &link.file.write(self.repo, content)?)?;
        }
        if !self.tmpfiles.is_empty() {
            let conf: String = self
                .tmpfiles
                .values()
                .map(|line| format!("{line}\n"))
                .collect();
            let dir = self.ensure_dirs("usr/lib/tmpfiles.d")?;
            let checksum = crate::tree::write_root_file(self.repo, conf.as_bytes())?;
            dir.replace_file(&format!("pkglayer-{}.conf", self.nevra.name), &checksum)?;
        }
        Ok(PayloadTree {
            root: self.repo.write_mtree(&self.root, gio::Cancellable::NONE)?,
            named_owners: self.named_owners,
        })
    }

    /// Walks to `path` (relative, `/`-separated) creating directories owned by root, mode 0755.
    fn ensure_dirs(&mut self, path: &str) -> Result<ostree::MutableTree> {
        let mut dir = self.root.clone();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            dir = match crate::tree::mtree_lookup(&dir, part)? {
                (_, Some(existing)) => existing,
                (Some(_), None) => {
                    return Err(UserError::new(format!(
                        "package {} ships files under /{path}, but {part} is a file, not a directory",
                        self.nevra
                    ))
                    .hint("the package contradicts itself; report it to its packager")
                    .into());
                }
                (None, None) => {
                    let created = dir.ensure_dir(part)?;
                    created.set_metadata_checksum(&self.dirmeta.get(self.repo, 0, 0, 0o755)?);
                    created
                }
            };
        }
        Ok(dir)
    }
}

/// What a regular file becomes in the repo besides its bytes.
struct RegularFile {
    uid: u32,
    gid: u32,
    /// Full `st_mode`.
    mode: u32,
    xattrs: Option<glib::Variant>,
}

impl RegularFile {
    /// Writes the content object; identical files (hardlinks too) get the same object.
    fn write(&self, repo: &ostree::Repo, content: &[u8]) -> Result<String> {
        let checksum = repo.write_regfile_inline(
            None,
            self.uid,
            self.gid,
            self.mode,
            self.xattrs.as_ref(),
            content,
            gio::Cancellable::NONE,
        )?;
        Ok(checksum.to_string())
    }
}

/// `security.capability` xattr from rpm's textual capabilities (`cap_net_raw=ep`).
fn capabilities_xattr(caps: Option<&str>) -> Result<Option<glib::Variant>> {
    let Some(caps) = caps.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let value = super::caps::encode(caps)?;
    let xattrs: Vec<(Vec<u8>, Vec<u8>)> = vec![(b"security.capability\0".to_vec(), value)];
    Ok(Some(glib::Variant::from(xattrs)))
}

/// Directory metadata objects, written once per (uid, gid, mode).
#[derive(Default)]
struct DirMetaCache(HashMap<(u32, u32, u32), String>);

impl DirMetaCache {
    fn get(&mut self, repo: &ostree::Repo, uid: u32, gid: u32, mode: u32) -> Result<String> {
        if let Some(checksum) = self.0.get(&(uid, gid, mode)) {
            return Ok(checksum.clone());
        }
        let checksum = crate::tree::write_dirmeta(repo, uid, gid, mode)?;
        self.0.insert((uid, gid, mode), checksum.clone());
        Ok(checksum)
    }
}
