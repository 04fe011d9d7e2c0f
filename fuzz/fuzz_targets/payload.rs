//! RPM payloads (a cpio archive, compressed with gzip, xz, zstd or bzip2, or not), held to a fixed
//! header file list: reading a hostile payload gives its entries or an error, never a panic, and
//! never more data than the list accounts for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkglayer_core::rpm::archive::{check, sample_listing};

fuzz_target!(|bytes: &[u8]| {
    let files = sample_listing();
    if let Ok(entries) = check(bytes, &files) {
        // Every file but the ghost, each once.
        assert_eq!(entries, files.iter().filter(|f| !f.ghost).count());
    }
});
