//! Repository index files from the network: repomd.xml, metalinks and mirrorlists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkglayer_core::repo::Repomd;
use pkglayer_core::repo::mirrors::{parse_metalink, parse_mirrorlist};

fuzz_target!(|text: &str| {
    if let Ok(repomd) = Repomd::parse(text) {
        for kind in ["primary", "filelists", "updateinfo"] {
            let _ = repomd.record(kind);
        }
    }
    let _ = parse_metalink(text);
    let _ = parse_mirrorlist(text);
});
