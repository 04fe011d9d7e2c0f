//! RPM heads (lead, signature, header), as the package cache keeps them: reading the scripts, file
//! triggers and file list of a hostile header gives a package or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkglayer_core::scripts::LayeredPackage;

fuzz_target!(|bytes: &[u8]| {
    let _ = LayeredPackage::from_head(bytes);
});
