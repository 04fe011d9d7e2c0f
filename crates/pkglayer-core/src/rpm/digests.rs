//! An RPM's own digests, checked as rpm 4.18 does at `_pkgverify_level digest`: every digest the
//! file carries must match, and those it lacks are not held against it.
//!
//! Which digests a file carries depends on the rpm that built or signed it: the SHA-256 header
//! digest and the payload digest since rpm 4.14, the SHA-1 header digest since 4.0, and before that
//! (a "v3 signature") only the legacy MD5 digest of header and payload, which later rpms still add.
//! The `rpm` crate checks the header and payload digests but knows nothing of the MD5 one, so that
//! one is checked here, over the bytes of the file.

use std::fmt;

use ostree::glib;

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

/// Checks the digests of `package`, parsed from `bytes` whose parts are at `layout`.
pub fn verify(bytes: &[u8], layout: Layout, package: &::rpm::Package) -> Result<(), DigestError> {
    let report = package
        .check_digests()
        .map_err(|err| DigestError::Mismatch(format!("its digests cannot be read: {err}")))?;
    // Mismatches only; the crate's "no header digest" refusal is ours to make, below.
    report
        .result()
        .map_err(|err| DigestError::Mismatch(err.to_string()))?;
    let md5 = verify_md5(bytes, layout, package)?;
    if !report.has_header_digest() && !md5 {
        return Err(DigestError::Missing);
    }
    Ok(())
}

/// Checks RPMSIGTAG_MD5, over the main header and the payload as they are in the file; returns
/// whether the file carries it.
fn verify_md5(bytes: &[u8], layout: Layout, package: &::rpm::Package) -> Result<bool, DigestError> {
    let tag = ::rpm::IndexSignatureTag::RPMSIGTAG_MD5;
    let signature = &package.metadata.signature;
    if !signature.entry_is_present(tag) {
        return Ok(false);
    }
    // rpm refuses an MD5 entry of another type or length as invalid; so do we.
    let expected = signature
        .get_entry_data_as_binary(tag)
        .ok()
        .filter(|digest| digest.len() == 16)
        .ok_or_else(|| DigestError::Mismatch("its MD5 digest is not 16 bytes".into()))?;
    let expected = hex::encode(expected);
    let actual =
        glib::compute_checksum_for_data(glib::ChecksumType::Md5, &bytes[layout.header_start..])
            .map(|digest| digest.to_string())
            .unwrap_or_default();
    if actual != expected {
        return Err(DigestError::Mismatch(format!(
            "MD5 digest of header and payload: expected {expected}, got {actual}"
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use pkglayer_testkit::TestPackage;

    use super::*;

    fn package() -> TestPackage {
        TestPackage::new("oldtool", "1.0-1").executable("/usr/bin/oldtool", "#!/bin/sh\necho old\n")
    }

    fn check(bytes: &[u8]) -> Result<(), DigestError> {
        let layout = super::super::header_check::check(bytes).unwrap();
        let parsed = ::rpm::Package::parse(&mut Cursor::new(bytes)).unwrap();
        verify(bytes, layout, &parsed)
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
        check(&file(false)).unwrap();
        check(&file(true)).unwrap();
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
