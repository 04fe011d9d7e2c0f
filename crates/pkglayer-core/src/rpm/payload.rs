//! An RPM's payload written as an OSTree tree, with the path rules of [`super::placement`] applied.
//!
//! The payload is read from the file as a stream and each file's bytes go into their content object
//! a chunk at a time, so memory stays bounded whatever the package's size. Each file's bytes are
//! checked against the digest the (already verified) header gives it as they pass, so the tree
//! holds what the header vouches for even if the file changed since its digests were checked. In a
//! hardlink set one member carries the bytes and the others none; those take the object the
//! carrier's bytes made (written again only if their owner or mode differ), so no bytes are kept.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use ostree::gio;
use ostree::glib;

use super::Nevra;
use super::placement::{self, Placement};
use crate::commit_metadata::NamedOwner;
use crate::error::UserError;
use crate::tree::FileObject;
use crate::users::{Accounts, Kind};

/// What a refused path's hint says.
const PLACEABLE: &str = "layered packages may only ship files under /usr, /etc, /opt, /boot (and directories or symlinks under /var and /run)";

/// The written tree of a package.
pub(crate) struct PayloadTree {
    pub root: gio::File,
    /// Files and directories not owned by root:root, for compose to give their IDs.
    pub named_owners: Vec<NamedOwner>,
}

/// Writes the files and directories of the RPM at `path` (of `nevra`), whose verified head is
/// `head`, as OSTree objects and returns the written root. The payload is read after `head`, which
/// is used as it is rather than read again. Call inside a repo transaction.
pub(crate) fn write(
    repo: &ostree::Repo,
    path: &Path,
    head: &[u8],
    nevra: &Nevra,
    accounts: &Accounts,
) -> Result<PayloadTree> {
    let mut writer = TreeWriter::new(repo, nevra)?;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("Opening {}", path.display()))?;
    file.seek(SeekFrom::Start(head.len() as u64))?;
    let stream = std::io::Cursor::new(head.to_vec()).chain(std::io::BufReader::new(file));
    let mut reader = ::rpm::PackageReader::parse(std::io::BufReader::new(stream))
        .context("not a readable RPM")?;
    while let Some(mut file) = reader.next_file().context("reading the payload")? {
        writer.add(&mut file, accounts)?;
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
    /// The content object of each file's bytes by file digest, for hardlink members without bytes.
    objects: HashMap<String, (String, FileObject)>,
}

/// A hardlink member whose bytes another member carries.
struct PendingLink {
    parent: ostree::MutableTree,
    name: String,
    path: String,
    digest: String,
    object: FileObject,
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
            objects: HashMap::new(),
        })
    }

    /// The refusal of `path` of this package, saying `why`.
    fn refuse(&self, path: &str, why: &str) -> anyhow::Error {
        UserError::new(format!("package {} ships {path}, {why}", self.nevra))
            .hint(PLACEABLE)
            .into()
    }

    /// Adds one payload entry.
    fn add(&mut self, entry: &mut ::rpm::StreamingRpmFile, accounts: &Accounts) -> Result<()> {
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
                let object = FileObject {
                    uid,
                    gid,
                    mode: libc::S_IFREG | permissions,
                    xattrs: capabilities_xattr(meta.caps())?,
                };
                let algorithm = meta.digest().map(|d| d.algorithm());
                let digest = meta.digest().map(|d| d.as_hex().to_string());
                let size = meta.size() as u64;
                match digest {
                    // In a hardlink set only one member carries the bytes; the others wait for it.
                    Some(digest) if !entry.has_payload() && size > 0 => {
                        self.pending_links.push(PendingLink {
                            parent,
                            name: name.to_string(),
                            path,
                            digest,
                            object,
                        });
                    }
                    digest => {
                        let len = if entry.has_payload() { size } else { 0 };
                        let expected = algorithm.zip(digest.as_deref());
                        let mut checked = CheckedReader::new(entry, expected);
                        let checksum =
                            crate::tree::write_file_object(self.repo, &object, len, &mut checked)
                                .with_context(|| format!("Writing {path}"))?;
                        if len > 0 && !checked.matches() {
                            return Err(UserError::new(format!(
                                "the payload of {} holds {path} with other bytes than its header says",
                                self.nevra
                            ))
                            .hint("nothing was imported; the package file is corrupt or was changed while it was read")
                            .into());
                        }
                        parent.replace_file(name, &checksum)?;
                        if let Some(digest) = digest {
                            self.objects.entry(digest).or_insert((checksum, object));
                        }
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
            let (checksum, object) = self.objects.get(&link.digest).ok_or_else(|| {
                self.refuse(&link.path, "a hardlink whose content is not in the payload")
            })?;
            // Members of a set share an inode, so their owner and mode agree; a header that says
            // otherwise gets objects of their own.
            let checksum = if same_object(object, &link.object) {
                checksum.clone()
            } else {
                crate::tree::copy_file_object(self.repo, checksum, &link.object)?
            };
            link.parent.replace_file(&link.name, &checksum)?;
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

/// A payload file's bytes as they pass, hashed with the algorithm of the digest its header gives.
struct CheckedReader<'r, R> {
    inner: &'r mut R,
    expected: Option<(String, Hasher)>,
}

/// The file digest algorithms rpm writes.
enum Hasher {
    Md5(glib::Checksum),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sha3_256(sha3::Sha3_256),
    Sha3_512(sha3::Sha3_512),
}

impl Hasher {
    fn new(algorithm: ::rpm::DigestAlgorithm) -> Self {
        use ::rpm::DigestAlgorithm as A;
        use sha2::Digest;
        match algorithm {
            A::Md5 => {
                Hasher::Md5(glib::Checksum::new(glib::ChecksumType::Md5).expect("glib has MD5"))
            }
            A::Sha2_224 => Hasher::Sha224(sha2::Sha224::new()),
            A::Sha2_256 => Hasher::Sha256(sha2::Sha256::new()),
            A::Sha2_384 => Hasher::Sha384(sha2::Sha384::new()),
            A::Sha2_512 => Hasher::Sha512(sha2::Sha512::new()),
            A::Sha3_256 => Hasher::Sha3_256(sha3::Sha3_256::new()),
            A::Sha3_512 => Hasher::Sha3_512(sha3::Sha3_512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha224(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
            Hasher::Sha3_256(h) => h.update(bytes),
            Hasher::Sha3_512(h) => h.update(bytes),
        }
    }

    fn hex(self) -> String {
        use sha2::Digest;
        match self {
            Hasher::Md5(h) => h.string().map(|s| s.to_string()).unwrap_or_default(),
            Hasher::Sha224(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
            Hasher::Sha3_256(h) => hex::encode(h.finalize()),
            Hasher::Sha3_512(h) => hex::encode(h.finalize()),
        }
    }
}

impl<'r, R: Read> CheckedReader<'r, R> {
    /// Reads `inner`, checking against `expected` (the header's algorithm and hex digest), if any.
    fn new(inner: &'r mut R, expected: Option<(::rpm::DigestAlgorithm, &str)>) -> Self {
        CheckedReader {
            inner,
            expected: expected
                .map(|(algorithm, hex)| (hex.to_ascii_lowercase(), Hasher::new(algorithm))),
        }
    }

    /// Whether the bytes read match the header's digest (true when it gives none).
    fn matches(self) -> bool {
        match self.expected {
            Some((expected, hasher)) => hasher.hex() == expected,
            None => true,
        }
    }
}

impl<R: Read> Read for CheckedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some((_, hasher)) = &mut self.expected {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Whether two file objects hold the same owner, mode and xattrs.
fn same_object(a: &FileObject, b: &FileObject) -> bool {
    (a.uid, a.gid, a.mode, &a.xattrs) == (b.uid, b.gid, b.mode, &b.xattrs)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ::rpm::DigestAlgorithm;

    fn matches(bytes: &[u8], expected: Option<(DigestAlgorithm, &str)>) -> bool {
        let mut input = bytes;
        let mut checked = CheckedReader::new(&mut input, expected);
        let mut read = Vec::new();
        checked.read_to_end(&mut read).unwrap();
        assert_eq!(read, bytes, "bytes pass unchanged");
        checked.matches()
    }

    #[test]
    fn file_bytes_are_checked_against_the_header_digest() {
        let md5 = glib::compute_checksum_for_data(glib::ChecksumType::Md5, b"hello\n")
            .unwrap()
            .to_string();
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"hello\n"));
        for (algorithm, expected) in [
            (DigestAlgorithm::Md5, md5),
            (DigestAlgorithm::Sha2_256, sha256),
        ] {
            assert!(matches(b"hello\n", Some((algorithm, &expected))));
            assert!(matches(
                b"hello\n",
                Some((algorithm, &expected.to_uppercase()))
            ));
            assert!(!matches(b"hellO\n", Some((algorithm, &expected))));
        }
        assert!(
            matches(b"anything", None),
            "no digest, nothing to hold against it"
        );
    }
}
