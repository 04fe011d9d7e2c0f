//! Hand-made RPMs for payloads no packager's tool writes: a [`TestPackage`] is built, then its header
//! and its cpio archive are edited and the file put back together with a digest that matches, so
//! only what the edit breaks is broken. The archive is compressed with the command-line tools
//! (`gzip`, `xz`, `zstd`, `bzip2`) and the MD5 digest taken by `md5sum`: nothing here comes from the
//! code under test.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use rpm::{Header, HeaderEntry, IndexData, IndexSignatureTag, IndexTag};

use crate::TestPackage;

/// How a payload is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Compression {
    pub const ALL: [Compression; 4] = [
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
        Compression::Bzip2,
    ];

    /// The tool, and the name rpm records in `PAYLOADCOMPRESSOR`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// One entry of a `newc` cpio archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioEntry {
    /// As rpm writes it: `./usr/bin/tool`.
    pub name: Vec<u8>,
    pub mode: u32,
    pub nlink: u32,
    /// The size field: the data's length, unless a case says otherwise.
    pub size: u32,
    pub data: Vec<u8>,
}

impl CpioEntry {
    pub fn new(name: &str, mode: u32, data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        CpioEntry {
            name: name.as_bytes().to_vec(),
            mode,
            nlink: 1,
            size: data.len() as u32,
            data,
        }
    }
}

/// Tags of the main header that the edits make stale: the payload digests (their absence is not
/// held against a package; rpm before 4.14 wrote none) and the compressor.
const DROPPED_TAGS: [IndexTag; 8] = [
    IndexTag::RPMTAG_PAYLOADSHA256,
    IndexTag::RPMTAG_PAYLOADSHA256ALGO,
    IndexTag::RPMTAG_PAYLOADSHA256ALT,
    IndexTag::RPMTAG_PAYLOAD_SHA512,
    IndexTag::RPMTAG_PAYLOAD_SHA512_ALT,
    IndexTag::RPMTAG_PAYLOAD_SHA3_256,
    IndexTag::RPMTAG_PAYLOAD_SHA3_256_ALT,
    IndexTag::RPMTAG_PAYLOADCOMPRESSOR,
];

/// A package being edited.
pub struct Crafted {
    package: rpm::Package,
    file_name: String,
    /// The archive, entries without the trailer.
    pub entries: Vec<CpioEntry>,
    /// Bytes after the entries in place of the trailer (none: the trailer), for archives that run on.
    pub tail: Vec<u8>,
    compression: Compression,
    /// Byte replacements (same length) made in the written header and archive.
    patches: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keep the header's `ENCODING` (utf-8) even when patched.
    keep_encoding: bool,
}

impl Crafted {
    /// `package` as the `rpm` crate builds it, ready to edit.
    pub fn new(package: &TestPackage) -> Result<Self> {
        let built = package.build()?;
        let mut archive = Vec::new();
        flate2::read::GzDecoder::new(built.payload.as_slice())
            .read_to_end(&mut archive)
            .context("test packages have a gzip payload")?;
        Ok(Crafted {
            package: built,
            file_name: package.file_name(),
            entries: parse_cpio(&archive)?,
            tail: Vec::new(),
            compression: Compression::Gzip,
            patches: Vec::new(),
            keep_encoding: false,
        })
    }

    /// The entry named `./PATH` for the absolute `path`.
    pub fn entry(&mut self, path: &str) -> &mut CpioEntry {
        let name = format!(".{path}").into_bytes();
        self.entries
            .iter_mut()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no {path} in the archive"))
    }

    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets `tag` of the main header to `data` (added if missing); `None` removes it.
    pub fn set_tag(&mut self, tag: IndexTag, data: Option<IndexData>) -> Result<()> {
        let tag = u32::from(tag);
        let mut entries = self.header_entries()?;
        entries.retain(|(t, _)| *t != tag);
        if let Some(data) = data {
            entries.push((tag, data));
        }
        self.set_header(entries);
        Ok(())
    }

    /// Keeps the header's declaration that its strings are UTF-8 when patching (by default a
    /// patched header declares nothing, as rpm's headers before 4.13 did).
    pub fn keep_encoding(mut self) -> Self {
        self.keep_encoding = true;
        self
    }

    /// Index of the absolute `path` in the header's file list.
    fn file_index(&self, path: &str) -> Result<usize> {
        let header = &self.package.metadata.header;
        let basenames = header.get_entry_data_as_string_array(IndexTag::RPMTAG_BASENAMES)?;
        let dirnames = header.get_entry_data_as_string_array(IndexTag::RPMTAG_DIRNAMES)?;
        let dirindexes = header.get_entry_data_as_u32_array(IndexTag::RPMTAG_DIRINDEXES)?;
        (0..basenames.len())
            .find(|&i| format!("{}{}", dirnames[dirindexes[i] as usize], basenames[i]) == path)
            .with_context(|| format!("no {path} in the header"))
    }

    /// Sets the header's mode (type and permission bits) of the file at `path`.
    pub fn set_header_mode(&mut self, path: &str, mode: u32) -> Result<()> {
        let index = self.file_index(path)?;
        let mut modes = self
            .package
            .metadata
            .header
            .get_entry_data_as_u16_array(IndexTag::RPMTAG_FILEMODES)?;
        modes[index] = u16::try_from(mode)?;
        self.set_tag(IndexTag::RPMTAG_FILEMODES, Some(IndexData::Int16(modes)))
    }

    /// Sets the header's size of the file at `path` (as 64-bit sizes, as rpm writes them for files
    /// over 4 GiB).
    pub fn set_header_size(&mut self, path: &str, size: u64) -> Result<()> {
        let index = self.file_index(path)?;
        let header = &self.package.metadata.header;
        let mut sizes: Vec<u64> =
            match header.get_entry_data_as_u64_array(IndexTag::RPMTAG_LONGFILESIZES) {
                Ok(sizes) => sizes,
                Err(_) => header
                    .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILESIZES)?
                    .into_iter()
                    .map(u64::from)
                    .collect(),
            };
        sizes[index] = size;
        self.set_tag(IndexTag::RPMTAG_FILESIZES, None)?;
        self.set_tag(
            IndexTag::RPMTAG_LONGFILESIZES,
            Some(IndexData::Int64(sizes)),
        )
    }

    /// Replaces `from` with `to` (the same length) in the header and archive as written: for bytes
    /// the header's types cannot hold, such as names that are not UTF-8.
    pub fn patch(mut self, from: &[u8], to: &[u8]) -> Self {
        assert_eq!(from.len(), to.len(), "a patch keeps the length");
        self.patches.push((from.to_vec(), to.to_vec()));
        self
    }

    fn header_entries(&self) -> Result<Vec<(u32, IndexData)>> {
        let region = u32::from(IndexTag::RPMTAG_HEADERIMMUTABLE);
        Ok(self
            .package
            .metadata
            .header
            .get_all_entries()?
            .into_iter()
            .filter(|(tag, _)| *tag != region)
            .collect())
    }

    fn set_header(&mut self, entries: Vec<(u32, IndexData)>) {
        self.package.metadata.header = Header::from_entries(
            entries.into_iter().map(|(t, d)| HeaderEntry::new(t, d)),
            IndexTag::RPMTAG_HEADERIMMUTABLE,
        );
    }

    /// Writes the package into `dir` (its usual file name), returning the path.
    pub fn write_to(mut self, dir: &Path) -> Result<PathBuf> {
        let mut entries = self.header_entries()?;
        entries.retain(|(tag, _)| !DROPPED_TAGS.iter().any(|t| u32::from(*t) == *tag));
        if !self.patches.is_empty() && !self.keep_encoding {
            // A header declaring UTF-8 makes readers refuse what is not; rpm's own headers before
            // 4.14 declared nothing.
            entries.retain(|(tag, _)| *tag != u32::from(IndexTag::RPMTAG_ENCODING));
        }
        entries.push((
            IndexTag::RPMTAG_PAYLOADCOMPRESSOR.into(),
            IndexData::StringTag(self.compression.name().to_string()),
        ));
        self.set_header(entries);

        let mut archive = write_cpio(&self.entries, self.tail.is_empty());
        archive.extend(&self.tail);
        let mut header = self.package.metadata.header_bytes()?;
        for (from, to) in &self.patches {
            replace_all(&mut archive, from, to);
            replace_all(&mut header, from, to);
        }
        let payload = compress(self.compression, &archive)?;
        let mut signed = header.clone();
        signed.extend(&payload);
        let signature = [
            (
                IndexSignatureTag::RPMSIGTAG_SIZE,
                IndexData::Int32(vec![u32::try_from(signed.len())?]),
            ),
            (
                IndexSignatureTag::RPMSIGTAG_MD5,
                IndexData::Bin(md5(&signed)?),
            ),
            (
                IndexSignatureTag::RPMSIGTAG_PAYLOADSIZE,
                IndexData::Int32(vec![archive.len() as u32]),
            ),
        ]
        .map(|(tag, data)| HeaderEntry::new(tag.into(), data));
        self.package.metadata.signature =
            Header::from_entries(signature, IndexSignatureTag::HEADER_SIGNATURES);
        self.package.payload = payload;
        let mut bytes = Vec::new();
        self.package.write(&mut bytes)?;
        for (from, to) in &self.patches {
            replace_all(&mut bytes, from, to);
        }
        let path = dir.join(&self.file_name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// Replaces every `from` in `bytes` with `to` (of the same length).
fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(from.len()).position(|w| w == from) {
        let start = at + found;
        bytes[start..start + from.len()].copy_from_slice(to);
        at = start + from.len();
    }
}

fn pad(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// The entries of a `newc` archive, up to its trailer.
pub fn parse_cpio(bytes: &[u8]) -> Result<Vec<CpioEntry>> {
    let mut entries = Vec::new();
    let mut at = 0;
    loop {
        ensure!(bytes.len() >= at + 110, "cpio cut short");
        ensure!(&bytes[at..at + 6] == b"070701", "not a newc archive");
        let field = |i: usize| -> Result<u32> {
            let text = std::str::from_utf8(&bytes[at + 6 + i * 8..at + 14 + i * 8])?;
            Ok(u32::from_str_radix(text, 16)?)
        };
        let (mode, nlink, size, namesize) = (field(1)?, field(4)?, field(6)?, field(11)? as usize);
        let name_start = at + 110;
        let name = bytes[name_start..name_start + namesize - 1].to_vec();
        let data_start = name_start + namesize + pad(110 + namesize);
        if name == b"TRAILER!!!" {
            return Ok(entries);
        }
        let data = bytes[data_start..data_start + size as usize].to_vec();
        at = data_start + size as usize + pad(size as usize);
        entries.push(CpioEntry {
            name,
            mode,
            nlink,
            size,
            data,
        });
    }
}

/// A `newc` archive of `entries`, with its trailer if `trailer`.
pub fn write_cpio(entries: &[CpioEntry], trailer: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let end = CpioEntry::new("TRAILER!!!", 0, Vec::new());
    let all: Vec<&CpioEntry> = entries.iter().chain(trailer.then_some(&end)).collect();
    for (ino, entry) in all.into_iter().enumerate() {
        out.extend(b"070701");
        let fields = [
            ino as u32 + 1,
            entry.mode,
            0,
            0,
            entry.nlink,
            0,
            entry.size,
            0,
            0,
            0,
            0,
            entry.name.len() as u32 + 1,
            0,
        ];
        for value in fields {
            out.extend(format!("{value:08x}").as_bytes());
        }
        out.extend(&entry.name);
        out.push(0);
        out.resize(out.len() + pad(out.len()), 0);
        out.extend(&entry.data);
        out.resize(out.len() + pad(out.len()), 0);
    }
    out
}

/// `bytes` compressed by the command-line tool of `compression`.
pub fn compress(compression: Compression, bytes: &[u8]) -> Result<Vec<u8>> {
    filter(Command::new(compression.name()).arg("-c"), bytes)
}

/// The MD5 digest of `bytes`, by `md5sum`.
fn md5(bytes: &[u8]) -> Result<Vec<u8>> {
    let text = String::from_utf8(filter(&mut Command::new("md5sum"), bytes)?)?;
    let digest = hex::decode(text.split_whitespace().next().unwrap_or_default())?;
    ensure!(digest.len() == 16, "md5sum printed {text:?}");
    Ok(digest)
}

/// What `command` prints with `input` on its stdin.
fn filter(command: &mut Command, input: &[u8]) -> Result<Vec<u8>> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {command:?}"))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output()?;
    writer.join().expect("the writer thread")?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", output.status);
    }
    Ok(output.stdout)
}
