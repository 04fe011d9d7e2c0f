//! An RPM's payload read as a stream, held to its header: the cpio archive (`newc`, or rpm's stripped
//! form for packages with files over 4 GiB) inside gzip, xz, zstd or bzip2 (or none).
//!
//! The header is what the package's digests vouch for and what the rpm database records, so the
//! archive may only carry what it lists: every entry must name a file of the header (once), with
//! the header's type, permission bits and size (or none, for a hardlink member whose bytes another
//! member carries), and every file of the header but ghosts must be in it. Nothing beyond the
//! bytes the header's file list allows is ever decompressed: a payload expanding further (a
//! decompression bomb) stops there. The decoders' memory is bounded too (xz's dictionary).

use std::collections::HashMap;
use std::io::{self, BufRead, Read};

/// Why a payload is refused; `path` is the entry's name as the archive or header gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveError {
    /// The payload does not decompress, or the archive is not a cpio archive rpm writes.
    Malformed(String),
    /// An entry's name is not UTF-8 (shown escaped) or holds a newline.
    BadName(String),
    /// An entry the header does not list.
    Unlisted(String),
    /// An entry that is in the archive twice.
    Duplicate(String),
    /// An entry whose type, permission bits or size differ from the header's.
    Differs {
        /// The entry's path.
        path: String,
        /// What differs, as in "with WHAT than its header declares".
        what: String,
    },
    /// A file of the header (not a ghost) that the archive lacks.
    Missing(String),
    /// The archive goes on past the bytes the header's file list accounts for.
    TooLong(u64),
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveError::Malformed(why) => write!(f, "its payload is malformed: {why}"),
            ArchiveError::BadName(name) => {
                write!(
                    f,
                    "its payload holds {name}, a name that is not UTF-8 or holds a newline"
                )
            }
            ArchiveError::Unlisted(path) => {
                write!(
                    f,
                    "its payload holds {path}, which its header does not list"
                )
            }
            ArchiveError::Duplicate(path) => write!(f, "its payload holds {path} twice"),
            ArchiveError::Differs { path, what } => write!(
                f,
                "its payload holds {path} with {what} than its header declares"
            ),
            ArchiveError::Missing(path) => {
                write!(f, "its payload lacks {path}, which its header lists")
            }
            ArchiveError::TooLong(limit) => write!(
                f,
                "its payload expands beyond the {limit} bytes its header's file list accounts for"
            ),
        }
    }
}

impl std::error::Error for ArchiveError {}

/// What the archive is checked against: one per file of the header, in header order.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Absolute path.
    pub path: String,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
    /// Size in bytes (of a regular file; a symlink's is its target's length, others none).
    pub size: u64,
    /// Symlink target.
    pub link: String,
    /// Ghosts are not in the archive (old rpms put them there anyway; they are skipped).
    pub ghost: bool,
    /// Member of a hardlink set (the inode number the header gives the set): the archive may carry
    /// its bytes with another member.
    pub hardlink: Option<u32>,
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const NEWC_HEADER: u64 = 110;
const STRIPPED_HEADER: u64 = 16;
const TRAILER: &str = "TRAILER!!!";
/// Longest name an entry may have (PATH_MAX).
const MAX_NAME: usize = 4096;
/// Memory the xz decoder may use: xz -9 needs 65 MiB.
const XZ_MEMLIMIT: u64 = 256 << 20;

/// Reads the whole payload `input` against `files`, each entry's data to the end; returns the
/// number of entries. What the import does short of writing, for the fuzz target.
pub fn check(input: &[u8], files: &[Listed]) -> Result<usize, ArchiveError> {
    let mut archive = Archive::new(input, files)?;
    let mut entries = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while archive.next_entry()?.is_some() {
        entries += 1;
        while archive.read(&mut buf)? > 0 {}
    }
    Ok(entries)
}

/// The file list the fuzz target holds payloads to (its seeds are archives of it): directories,
/// a hardlink pair, a regular file, a symlink and a ghost.
pub fn sample_listing() -> Vec<Listed> {
    let entry = |path: &str, mode: u32, size: u64, link: &str| Listed {
        path: path.into(),
        mode,
        size,
        link: link.into(),
        ghost: false,
        hardlink: None,
    };
    let mut ghost = entry("/usr/lib/ghost", 0o100644, 4, "");
    ghost.ghost = true;
    let mut tool = entry("/usr/bin/tool", 0o100755, 10, "");
    tool.hardlink = Some(5);
    let mut tool2 = entry("/usr/bin/tool2", 0o100755, 10, "");
    tool2.hardlink = Some(5);
    vec![
        entry("/usr", 0o40755, 0, ""),
        entry("/usr/bin", 0o40755, 0, ""),
        tool,
        tool2,
        entry("/usr/lib", 0o40755, 0, ""),
        ghost,
        entry("/usr/lib/link", 0o120777, 11, "../bin/tool"),
        entry("/usr/share/data", 0o100644, 300, ""),
    ]
}

/// One entry of the archive, matched to the header: `index` into the header's files, and whether
/// it carries the file's bytes (a hardlink member may not; directories and empty files carry none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Index of the entry's file in the header's file list.
    pub index: usize,
    /// Whether the data that follows is the file's bytes.
    pub carries_bytes: bool,
}

/// A payload being read: [`Archive::next_entry`], then its data with [`Archive::read`].
pub struct Archive<'a> {
    input: Limited<Box<dyn Read + 'a>>,
    files: &'a [Listed],
    by_path: HashMap<&'a str, usize>,
    seen: Vec<bool>,
    /// Bytes of the current entry's data not read yet, then its padding.
    remaining: u64,
    padding: u64,
    done: bool,
}

impl<'a> Archive<'a> {
    /// Reads the compressed payload `input` (the rest of the RPM file after its header), checked
    /// against `files`. The compression is recognised by its magic, as rpm's own tools do.
    pub fn new(mut input: impl BufRead + 'a, files: &'a [Listed]) -> Result<Self, ArchiveError> {
        let head = input
            .fill_buf()
            .map_err(|err| ArchiveError::Malformed(err.to_string()))?;
        let decoder: Box<dyn Read + 'a> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::GzDecoder::new(input))
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
                .map_err(|err| ArchiveError::Malformed(err.to_string()))?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(input, stream))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(
                zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|err| ArchiveError::Malformed(err.to_string()))?,
            )
        } else if head.starts_with(b"BZh") {
            Box::new(bzip2::bufread::BzDecoder::new(input))
        } else if head.starts_with(b"0707") || head.is_empty() {
            Box::new(input)
        } else {
            return Err(ArchiveError::Malformed(
                "compressed in a way pkglayer does not read (it reads gzip, xz, zstd, bzip2 or none)"
                    .into(),
            ));
        };
        // One entry's header and name more than the files need: an entry the header does not list
        // is then refused as that, by its name.
        let limit = bound(files).saturating_add(NEWC_HEADER + MAX_NAME as u64 + 4);
        Ok(Archive {
            input: Limited {
                inner: decoder,
                left: limit,
                limit,
            },
            files,
            by_path: files
                .iter()
                .enumerate()
                .map(|(i, f)| (f.path.as_str(), i))
                .collect(),
            seen: vec![false; files.len()],
            remaining: 0,
            padding: 0,
            done: false,
        })
    }

    /// The next entry, its data to read with [`Archive::read`]; `None` after the trailer, once
    /// every listed file was seen. Unread data of the previous entry is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, ArchiveError> {
        loop {
            if self.done {
                return Ok(None);
            }
            self.skip_rest()?;
            let mut magic = [0u8; 6];
            self.read_exact(&mut magic)?;
            let (index, mode, nlink, size) = match &magic {
                b"070701" | b"070702" => {
                    let mut fields = [0u8; 104];
                    self.read_exact(&mut fields)?;
                    let field = |i: usize| -> Result<u32, ArchiveError> {
                        let text = std::str::from_utf8(&fields[i * 8..i * 8 + 8])
                            .ok()
                            .filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit()))
                            .ok_or_else(|| {
                                ArchiveError::Malformed("a cpio header field is not hex".into())
                            })?;
                        u32::from_str_radix(text, 16)
                            .map_err(|_| ArchiveError::Malformed("bad cpio field".into()))
                    };
                    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
                    // rdevminor, namesize, check
                    let (mode, nlink, size, namesize) =
                        (field(1)?, field(4)?, field(6)?, field(11)?);
                    let namesize = namesize as usize;
                    if namesize == 0 || namesize > MAX_NAME + 3 {
                        return Err(ArchiveError::Malformed(format!(
                            "a cpio name of {namesize} bytes"
                        )));
                    }
                    let mut name = vec![0u8; namesize];
                    self.read_exact(&mut name)?;
                    self.skip_padding(NEWC_HEADER + namesize as u64)?;
                    if name.pop() != Some(0) {
                        return Err(ArchiveError::Malformed(
                            "a cpio name is not NUL-terminated".into(),
                        ));
                    }
                    let name = match String::from_utf8(name) {
                        Ok(name) if !name.contains(['\n', '\0']) => name,
                        Ok(name) => {
                            return Err(ArchiveError::BadName(name.escape_debug().to_string()));
                        }
                        Err(err) => {
                            return Err(ArchiveError::BadName(
                                err.as_bytes().escape_ascii().to_string(),
                            ));
                        }
                    };
                    if name == TRAILER {
                        self.done = true;
                        return self.check_complete().map(|()| None);
                    }
                    let relative = name.strip_prefix("./").unwrap_or(&name);
                    let path = format!("/{}", relative.trim_start_matches('/'));
                    let index = *self
                        .by_path
                        .get(path.as_str())
                        .ok_or(ArchiveError::Unlisted(path))?;
                    (index, Some(mode), nlink, u64::from(size))
                }
                b"07070X" => {
                    let mut index = [0u8; 8];
                    self.read_exact(&mut index)?;
                    self.skip_padding(14)?;
                    let index = std::str::from_utf8(&index)
                        .ok()
                        .filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit()))
                        .and_then(|t| usize::from_str_radix(t, 16).ok())
                        .ok_or_else(|| ArchiveError::Malformed("bad stripped cpio index".into()))?;
                    if index == u32::MAX as usize {
                        self.done = true;
                        return self.check_complete().map(|()| None);
                    }
                    let file = self.files.get(index).ok_or_else(|| {
                        ArchiveError::Malformed(format!("stripped cpio index {index} out of range"))
                    })?;
                    // The stripped form keeps sizes in the header alone; a hardlink member carries
                    // the bytes only when it is the last of its set.
                    let size = if file.hardlink.is_some() && !self.last_of_set(index) {
                        0
                    } else {
                        file.size
                    };
                    (index, None, 2, size)
                }
                _ => {
                    return Err(ArchiveError::Malformed(
                        "no cpio magic where an entry begins".into(),
                    ));
                }
            };
            let name = index;
            let file = &self.files[name];
            if std::mem::replace(&mut self.seen[name], true) {
                return Err(ArchiveError::Duplicate(file.path.clone()));
            }
            self.remaining = size;
            self.padding = pad(size);
            if file.ghost {
                continue;
            }
            if let Some(mode) = mode {
                if mode & S_IFMT != file.mode & S_IFMT {
                    return Err(self.differs(name, "another file type"));
                }
                if mode & 0o7777 != file.mode & 0o7777 {
                    return Err(self.differs(name, "other permission bits"));
                }
            }
            let expected = match file.mode & S_IFMT {
                S_IFREG => file.size,
                S_IFLNK => file.link.len() as u64,
                _ => 0,
            };
            // A hardlink member's bytes may come with another member of its set.
            let hardlink_without_bytes = file.hardlink.is_some() && nlink > 1 && size == 0;
            if size != expected && !hardlink_without_bytes {
                return Err(self.differs(name, &format!("{size} bytes rather")));
            }
            if file.mode & S_IFMT == S_IFLNK {
                let mut target = vec![0u8; size as usize];
                self.read_exact(&mut target)?;
                self.remaining = 0;
                if target != file.link.as_bytes() {
                    return Err(self.differs(name, "another symlink target"));
                }
                return Ok(Some(Entry {
                    index: name,
                    carries_bytes: false,
                }));
            }
            return Ok(Some(Entry {
                index: name,
                carries_bytes: file.mode & S_IFMT == S_IFREG && size > 0,
            }));
        }
    }

    /// Reads the current entry's data.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ArchiveError> {
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.input.read(&mut buf[..want]).map_err(io_error)?;
        if n == 0 {
            return Err(ArchiveError::Malformed("cut short".into()));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    fn differs(&self, index: usize, what: &str) -> ArchiveError {
        ArchiveError::Differs {
            path: self.files[index].path.clone(),
            what: what.to_string(),
        }
    }

    /// Whether no later file of the header is in the hardlink set of `index`: that member carries
    /// the set's bytes.
    fn last_of_set(&self, index: usize) -> bool {
        let set = self.files[index].hardlink;
        !self.files[index + 1..]
            .iter()
            .any(|f| f.hardlink == set && !f.ghost)
    }

    fn check_complete(&self) -> Result<(), ArchiveError> {
        match self
            .files
            .iter()
            .zip(&self.seen)
            .find(|(f, seen)| !f.ghost && !**seen)
        {
            Some((missing, _)) => Err(ArchiveError::Missing(missing.path.clone())),
            None => Ok(()),
        }
    }

    fn skip_rest(&mut self) -> Result<(), ArchiveError> {
        let mut buf = [0u8; 8192];
        while self.remaining > 0 {
            self.read(&mut buf)?;
        }
        let padding = std::mem::take(&mut self.padding);
        self.skip(padding)
    }

    fn skip_padding(&mut self, len: u64) -> Result<(), ArchiveError> {
        self.skip(pad(len))
    }

    fn skip(&mut self, len: u64) -> Result<(), ArchiveError> {
        let mut buf = [0u8; 4];
        self.read_exact(&mut buf[..len as usize])
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ArchiveError> {
        self.input.read_exact(buf).map_err(io_error)
    }
}

/// Bytes of padding after `len` bytes, to the next multiple of 4.
fn pad(len: u64) -> u64 {
    (4 - len % 4) % 4
}

/// The most bytes a cpio archive of `files` can take (rpm's own stay below): each entry with a `newc` header, its name
/// as rpm writes it (`./` + path) and its data (every hardlink member with its bytes), then the
/// trailer.
fn bound(files: &[Listed]) -> u64 {
    let entry = |name: usize, size: u64| {
        let head = NEWC_HEADER + name as u64 + 1;
        (head + pad(head)).max(STRIPPED_HEADER) + size + pad(size)
    };
    files
        .iter()
        .filter(|f| !f.ghost)
        .map(|f| {
            let size = match f.mode & S_IFMT {
                S_IFREG => f.size,
                S_IFLNK => f.link.len() as u64,
                _ => 0,
            };
            entry(f.path.len() + 1, size)
        })
        .fold(entry(TRAILER.len(), 0), u64::saturating_add)
}

fn io_error(err: io::Error) -> ArchiveError {
    match err.get_ref().and_then(|e| e.downcast_ref::<ArchiveError>()) {
        Some(inner) => inner.clone(),
        None if err.kind() == io::ErrorKind::UnexpectedEof => {
            ArchiveError::Malformed("cut short".into())
        }
        None => ArchiveError::Malformed(err.to_string()),
    }
}

/// The decompressed stream, stopped at `limit` bytes.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            return Err(io::Error::other(ArchiveError::TooLong(self.limit)));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: &str, mode: u32, size: u64) -> Listed {
        Listed {
            path: path.into(),
            mode,
            size,
            link: String::new(),
            ghost: false,
            hardlink: None,
        }
    }

    /// A test archive entry: name, mode, nlink, data.
    type TestEntry<'a> = (&'a [u8], u32, u32, &'a [u8]);

    /// A newc archive of `entries` and the trailer.
    pub(super) fn cpio(entries: &[TestEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        let trailer: TestEntry = (TRAILER.as_bytes(), 0, 1, b"");
        for (i, (name, mode, nlink, data)) in entries.iter().chain([&trailer]).enumerate() {
            out.extend(b"070701");
            for value in [
                i as u32 + 1,
                *mode,
                0,
                0,
                *nlink,
                0,
                data.len() as u32,
                0,
                0,
                0,
                0,
                name.len() as u32 + 1,
                0,
            ] {
                out.extend(format!("{value:08x}").as_bytes());
            }
            out.extend(*name);
            out.push(0);
            out.resize(out.len() + pad(out.len() as u64) as usize, 0);
            out.extend(*data);
            out.resize(out.len() + pad(out.len() as u64) as usize, 0);
        }
        out
    }

    fn read_all(bytes: &[u8], files: &[Listed]) -> Result<Vec<(usize, Vec<u8>)>, ArchiveError> {
        let mut archive = Archive::new(bytes, files)?;
        let mut out = Vec::new();
        while let Some(entry) = archive.next_entry()? {
            let mut data = Vec::new();
            let mut buf = [0u8; 3];
            loop {
                let n = archive.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                data.extend(&buf[..n]);
            }
            out.push((entry.index, data));
        }
        Ok(out)
    }

    fn compressed(bytes: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(bytes).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(bytes).unwrap();
        vec![
            ("none", bytes.to_vec()),
            ("gzip", gz.finish().unwrap()),
            ("xz", xz.finish().unwrap()),
            ("zstd", zstd::encode_all(bytes, 3).unwrap()),
            ("bzip2", bz.finish().unwrap()),
        ]
    }

    #[test]
    fn reads_what_the_header_lists_in_every_compression() {
        let files = [listed("/usr/a", 0o100644, 5), listed("/usr", 0o40755, 0)];
        let archive = cpio(&[
            (b"./usr", 0o40755, 2, b""),
            (b"./usr/a", 0o100644, 1, b"hello"),
        ]);
        for (name, bytes) in compressed(&archive) {
            assert_eq!(
                read_all(&bytes, &files),
                Ok(vec![(1, vec![]), (0, b"hello".to_vec())]),
                "{name}"
            );
        }
    }

    #[test]
    fn refuses_what_disagrees_with_the_header() {
        let files = [listed("/usr/a", 0o100644, 5)];
        let cases: [(&[TestEntry], ArchiveError); 6] = [
            (
                &[
                    (b"./usr/a", 0o100644, 1, b"hello"),
                    (b"./usr/b", 0o100644, 1, b""),
                ],
                ArchiveError::Unlisted("/usr/b".into()),
            ),
            (&[], ArchiveError::Missing("/usr/a".into())),
            (
                &[(b"./usr/a", 0o100644, 1, b"hello!")],
                ArchiveError::Differs {
                    path: "/usr/a".into(),
                    what: "6 bytes rather".into(),
                },
            ),
            (
                &[(b"./usr/a", 0o104755, 1, b"hello")],
                ArchiveError::Differs {
                    path: "/usr/a".into(),
                    what: "other permission bits".into(),
                },
            ),
            (
                &[(b"./usr/a", 0o020644, 1, b"")],
                ArchiveError::Differs {
                    path: "/usr/a".into(),
                    what: "another file type".into(),
                },
            ),
            (
                &[(b"./usr/\xffa", 0o100644, 1, b"hello")],
                ArchiveError::BadName("./usr/\\xffa".into()),
            ),
        ];
        for (entries, expected) in cases {
            assert_eq!(read_all(&cpio(entries), &files), Err(expected));
        }
        let twice = cpio(&[
            (b"./usr/a", 0o100644, 1, b"hello"),
            (b"./usr/a", 0o100644, 1, b"hello"),
        ]);
        assert_eq!(
            read_all(&twice, &files),
            Err(ArchiveError::Duplicate("/usr/a".into()))
        );
    }

    #[test]
    fn a_payload_expanding_past_its_header_stops_there() {
        use std::io::Write;
        // The header lists a 5-byte file; the archive's entry holds 256 MiB of zeros, which
        // compress to almost nothing. Refused at the entry's header, before its data is inflated.
        let files = [listed("/usr/a", 0o100644, 5)];
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        let size = 256u32 << 20;
        let mut entry = cpio(&[(b"./usr/a", 0o100644, 1, b"")]);
        entry.truncate(entry.len() - 124); // no trailer
        entry[6 + 6 * 8..6 + 7 * 8].copy_from_slice(format!("{size:08x}").as_bytes());
        encoder.write_all(&entry).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..256 {
            encoder.write_all(&chunk).unwrap();
        }
        let bytes = encoder.finish().unwrap();
        assert!(bytes.len() < 1 << 20);
        assert_eq!(
            read_all(&bytes, &files),
            Err(ArchiveError::Differs {
                path: "/usr/a".into(),
                what: format!("{size} bytes rather"),
            })
        );
        // And the stream never yields more than the header's files account for.
        let mut limited = Limited {
            inner: std::io::repeat(0),
            left: 1000,
            limit: 1000,
        };
        let err = std::io::copy(&mut limited, &mut std::io::sink()).unwrap_err();
        assert_eq!(io_error(err), ArchiveError::TooLong(1000));
    }

    #[test]
    fn hardlink_members_may_leave_their_bytes_to_another() {
        let mut a = listed("/usr/a", 0o100755, 2);
        a.hardlink = Some(7);
        let mut b = listed("/usr/b", 0o100755, 2);
        b.hardlink = Some(7);
        let archive = cpio(&[
            (b"./usr/a", 0o100755, 2, b""),
            (b"./usr/b", 0o100755, 2, b"hi"),
        ]);
        assert_eq!(
            read_all(&archive, &[a, b]),
            Ok(vec![(0, vec![]), (1, b"hi".to_vec())])
        );
    }

    /// The fuzz target's seeds (`fuzz/corpus/payload`): every one reads whole, so the target starts
    /// from payloads that reach every entry; a plain test runs them without libFuzzer.
    #[test]
    fn the_fuzz_seeds_read_whole() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/payload");
        let files = sample_listing();
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(check(&bytes, &files), Ok(7), "{}", path.display());
            seeds += 1;
        }
        assert!(seeds >= 5, "{seeds} seeds in {}", dir.display());
    }

    #[test]
    fn the_stripped_form_takes_sizes_from_the_header() {
        // rpm's form for packages with files over 4 GiB: magic, the header index, data.
        let stripped = |index: u32, data: &[u8]| {
            let mut out = format!("07070X{index:08x}").into_bytes();
            out.resize(out.len() + pad(out.len() as u64) as usize, 0);
            out.extend(data);
            out.resize(out.len() + pad(out.len() as u64) as usize, 0);
            out
        };
        let files = [listed("/usr", 0o40755, 0), listed("/usr/a", 0o100644, 5)];
        let mut archive = stripped(1, b"hello");
        archive.extend(stripped(0, b""));
        archive.extend(stripped(u32::MAX, b""));
        assert_eq!(
            read_all(&archive, &files),
            Ok(vec![(1, b"hello".to_vec()), (0, vec![])])
        );
        let out_of_range = stripped(9, b"");
        assert!(matches!(
            read_all(&out_of_range, &files),
            Err(ArchiveError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let files = [listed("/usr/a", 0o100644, 5)];
        for bytes in [&b""[..], b"070701zz", b"\x1f\x8b\x08garbage", b"PK\x03\x04"] {
            assert!(read_all(bytes, &files).is_err());
        }
    }
}
