//! An RPM's own digests, checked as rpm 4.18 does at `_pkgverify_level digest`: every digest the
//! file carries must match, and those it lacks are not held against it.
//!
//! Which digests a file carries depends on the rpm that built or signed it: the SHA-256 header
//! digest and the payload digest since rpm 4.14, the SHA-1 header digest since 4.0, and before that
//! (a "v3 signature") only the legacy MD5 digest of header and payload, which later rpms still add.
//! The `rpm` crate checks the header and payload digests but knows nothing of the MD5 one, so that
//! one is checked here, over the bytes of the file.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Context;
use ostree::glib;
use sha2::Digest;

use super::header_check::Layout;

/// Why an RPM's digests do not vouch for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestError {
    /// A digest the file carries does not match it: the file changed after it was built.
    Mismatch(String),
    /// No digest covers the header: nothing can tell whether the file is intact.
    Missing,
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::Mismatch(why) => f.write_str(why),
            DigestError::Missing => f.write_str("no digest of its header"),
        }
    }
}

impl std::error::Error for DigestError {}

/// Checks the digests of the RPM file at `path`, whose head (lead, signature and main header, at
/// `layout`) is `head` and parses as `metadata`, reading the file once as a stream; returns the
/// sha256 of the whole file. A failed check is a [`DigestError`] in the chain.
///
/// Header digests are checked over the head; payload digests (of the compressed payload) and the
/// legacy MD5 (of main header and payload) over the file as it streams past. The payload digests of
/// the uncompressed archive (`PAYLOADDIGESTALT`) are not checked: rpm writes them beside the
/// compressed ones, never alone, and those are.
pub fn verify_file(
    path: &Path,
    head: &[u8],
    layout: Layout,
    metadata: &::rpm::PackageMetadata,
) -> anyhow::Result<String> {
    let mut report = metadata
        .check_digests()
        .map_err(|err| DigestError::Mismatch(format!("its digests cannot be read: {err}")))?;
    let header = &metadata.header;
    let expected = |tag: ::rpm::IndexTag| {
        header
            .get_entry_data_as_string(tag)
            .ok()
            .map(str::to_string)
    };
    let mut payload_sha256 =
        expected(::rpm::IndexTag::RPMTAG_PAYLOADSHA256).map(|hex| (hex, sha2::Sha256::new()));
    let mut payload_sha512 =
        expected(::rpm::IndexTag::RPMTAG_PAYLOAD_SHA512).map(|hex| (hex, sha2::Sha512::new()));
    let mut payload_sha3 =
        expected(::rpm::IndexTag::RPMTAG_PAYLOAD_SHA3_256).map(|hex| (hex, sha3::Sha3_256::new()));
    let expected_md5 = expected_md5(metadata)?;
    let mut md5 = glib::Checksum::new(glib::ChecksumType::Md5).expect("glib has MD5");
    let mut file_sha256 = sha2::Sha256::new();

    file_sha256.update(head);
    md5.update(&head[layout.header_start..]);
    let mut file =
        std::fs::File::open(path).with_context(|| format!("Opening {}", path.display()))?;
    file.seek(SeekFrom::Start(head.len() as u64))?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("Reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        let chunk = &buffer[..n];
        file_sha256.update(chunk);
        md5.update(chunk);
        if let Some((_, digest)) = &mut payload_sha256 {
            digest.update(chunk);
        }
        if let Some((_, digest)) = &mut payload_sha512 {
            digest.update(chunk);
        }
        if let Some((_, digest)) = &mut payload_sha3 {
            digest.update(chunk);
        }
    }
    report.payload_sha256 = status(payload_sha256);
    report.payload_sha512 = status(payload_sha512);
    report.payload_sha3_256 = status(payload_sha3);
    // Mismatches only; the crate's "no header digest" refusal is ours to make, below.
    report
        .result()
        .map_err(|err| DigestError::Mismatch(err.to_string()))?;
    let md5_present = match expected_md5 {
        Some(expected) => {
            let actual = md5.string().map(|s| s.to_string()).unwrap_or_default();
            if actual != expected {
                return Err(DigestError::Mismatch(format!(
                    "MD5 digest of header and payload: expected {expected}, got {actual}"
                ))
                .into());
            }
            true
        }
        None => false,
    };
    if !report.has_header_digest() && !md5_present {
        return Err(DigestError::Missing.into());
    }
    Ok(hex::encode(file_sha256.finalize()))
}

/// A digest's status: what the header expects against what the file gave, if the header has one.
fn status<D: Digest>(digest: Option<(String, D)>) -> ::rpm::DigestStatus {
    let Some((expected, digest)) = digest else {
        return ::rpm::DigestStatus::NotPresent;
    };
    let actual = hex::encode(digest.finalize());
    if expected.eq_ignore_ascii_case(&actual) {
        ::rpm::DigestStatus::Verified
    } else {
        ::rpm::DigestStatus::Mismatch { expected, actual }
    }
}

/// The legacy MD5 (RPMSIGTAG_MD5) of main header and payload the signature header carries, as hex.
fn expected_md5(metadata: &::rpm::PackageMetadata) -> Result<Option<String>, DigestError> {
    let tag = ::rpm::IndexSignatureTag::RPMSIGTAG_MD5;
    let signature = &metadata.signature;
    if !signature.entry_is_present(tag) {
        return Ok(None);
    }
    // rpm refuses an MD5 entry of another type or length as invalid; so do we.
    let expected = signature
        .get_entry_data_as_binary(tag)
        .ok()
        .filter(|digest| digest.len() == 16)
        .ok_or_else(|| DigestError::Mismatch("its MD5 digest is not 16 bytes".into()))?;
    Ok(Some(hex::encode(expected)))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use pkglayer_testkit::TestPackage;

    use super::*;

    fn package() -> TestPackage {
        TestPackage::new("oldtool", "1.0-1").executable("/usr/bin/oldtool", "#!/bin/sh\necho old\n")
    }

    /// Checks `bytes` as an RPM file: its sha256, or the digest error.
    fn check(bytes: &[u8]) -> Result<String, DigestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("package.rpm");
        std::fs::write(&path, bytes).unwrap();
        let (head, layout) =
            super::super::header_check::read_head(&mut Cursor::new(bytes)).unwrap();
        let metadata = ::rpm::PackageMetadata::parse(&mut Cursor::new(&head)).unwrap();
        verify_file(&path, &head, layout, &metadata)
            .map_err(|err| err.downcast::<DigestError>().unwrap())
    }

    /// The file of `package`, in the old format or the current one.
    fn file(v3: bool) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = if v3 {
            package().write_v3_to(dir.path())
        } else {
            package().write_to(dir.path())
        };
        std::fs::read(path.unwrap()).unwrap()
    }

    #[test]
    fn an_intact_package_passes_in_either_format() {
        for v3 in [false, true] {
            let bytes = file(v3);
            let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
            assert_eq!(check(&bytes), Ok(sha256), "v3: {v3}");
        }
    }

    #[test]
    fn a_changed_payload_byte_fails_the_payload_digest() {
        let mut bytes = file(false);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        match check(&bytes) {
            Err(DigestError::Mismatch(why)) => assert!(why.contains("payload"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_old_format_package_with_a_changed_byte_fails_its_md5() {
        let intact = file(true);
        let layout = super::super::header_check::check(&intact).unwrap();
        // A letter of the summary in the main header, and a byte of the payload: the MD5 covers
        // both, and it is the only digest such a file has.
        let summary = layout.header_start
            + intact[layout.header_start..]
                .windows(12)
                .position(|w| w == b"test package")
                .unwrap();
        for (at, value) in [
            (summary, b'X'),
            (intact.len() - 40, intact[intact.len() - 40] ^ 0xff),
        ] {
            let mut bytes = intact.clone();
            bytes[at] = value;
            match check(&bytes) {
                Err(DigestError::Mismatch(why)) => assert!(why.contains("MD5"), "{why}"),
                other => panic!("byte {at}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_package_without_any_digest_is_missing_them_not_mismatched() {
        let bytes = file(true);
        let mut parsed = ::rpm::Package::parse(&mut Cursor::new(&bytes)).unwrap();
        parsed.metadata.signature = ::rpm::Header::from_entries(
            [::rpm::HeaderEntry::new(
                ::rpm::IndexSignatureTag::RPMSIGTAG_SIZE.into(),
                ::rpm::IndexData::Int32(vec![1]),
            )],
            ::rpm::IndexSignatureTag::HEADER_SIGNATURES,
        );
        let mut stripped = Vec::new();
        parsed.write(&mut stripped).unwrap();
        assert_eq!(check(&stripped), Err(DigestError::Missing));
    }
}
