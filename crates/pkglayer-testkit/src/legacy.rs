//! Old-format ("v3 signature") RPMs, as rpm before 4.14 built them and `rpmsign` of that era left
//! them: the signature header holds only the size and the MD5 digest of header and payload (and the
//! archive size), with no SHA-1/SHA-256 header digest, and the main header has no payload digest.
//! rpm 4.18 still installs such packages, so layering must accept them too.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use rpm::{Header, HeaderEntry, IndexData, IndexSignatureTag, IndexTag};

use crate::TestPackage;

/// Main header tags an old rpm never wrote: the payload digests rpm 4.14 introduced (and v6's).
const PAYLOAD_DIGEST_TAGS: [IndexTag; 7] = [
    IndexTag::RPMTAG_PAYLOADSHA256,
    IndexTag::RPMTAG_PAYLOADSHA256ALGO,
    IndexTag::RPMTAG_PAYLOADSHA256ALT,
    IndexTag::RPMTAG_PAYLOAD_SHA512,
    IndexTag::RPMTAG_PAYLOAD_SHA512_ALT,
    IndexTag::RPMTAG_PAYLOAD_SHA3_256,
    IndexTag::RPMTAG_PAYLOAD_SHA3_256_ALT,
];

impl TestPackage {
    /// Builds the package into `dir` in the old format (see the module docs), returning the path
    /// of the `.rpm`. The MD5 digest comes from coreutils' `md5sum`, not from code under test.
    pub fn write_v3_to(&self, dir: &Path) -> Result<PathBuf> {
        let mut package = self.build()?;
        let region = u32::from(IndexTag::RPMTAG_HEADERIMMUTABLE);
        let kept: Vec<HeaderEntry> = package
            .metadata
            .header
            .get_all_entries()?
            .into_iter()
            .filter(|(tag, _)| {
                *tag != region && !PAYLOAD_DIGEST_TAGS.iter().any(|t| u32::from(*t) == *tag)
            })
            .map(|(tag, data)| HeaderEntry::new(tag, data))
            .collect();
        package.metadata.header = Header::from_entries(kept, IndexTag::RPMTAG_HEADERIMMUTABLE);

        // RPMSIGTAG_SIZE and RPMSIGTAG_MD5 cover the main header and the payload as they are in the
        // file; RPMSIGTAG_PAYLOADSIZE is the size of the uncompressed cpio archive.
        let mut signed = package.metadata.header_bytes()?;
        signed.extend_from_slice(&package.payload);
        let mut archive = Vec::new();
        flate2::read::GzDecoder::new(package.payload.as_slice())
            .read_to_end(&mut archive)
            .context("test packages have a gzip payload")?;
        let entries = [
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
                IndexData::Int32(vec![u32::try_from(archive.len())?]),
            ),
        ]
        .map(|(tag, data)| HeaderEntry::new(tag.into(), data));
        package.metadata.signature =
            Header::from_entries(entries, IndexSignatureTag::HEADER_SIGNATURES);

        let path = dir.join(self.file_name());
        package
            .write_file(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// The MD5 digest of `bytes`, by `md5sum`.
fn md5(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running md5sum")?;
    child
        .stdin
        .take()
        .context("md5sum's stdin")?
        .write_all(bytes)?;
    let output = child.wait_with_output()?;
    ensure!(output.status.success(), "md5sum failed: {}", output.status);
    let text = String::from_utf8(output.stdout)?;
    let digest = hex::decode(text.split_whitespace().next().unwrap_or_default())?;
    ensure!(digest.len() == 16, "md5sum printed {text:?}");
    Ok(digest)
}
