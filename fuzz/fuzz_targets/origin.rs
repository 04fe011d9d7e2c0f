//! Origin files: any text either fails to parse or gives an origin that survives a write and a
//! read unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkglayer_core::Origin;

fuzz_target!(|text: &str| {
    let Ok(origin) = Origin::parse(text) else {
        return;
    };
    let written = origin.to_text();
    let again = Origin::parse(&written).expect("an origin pkglayer wrote parses");
    assert_eq!(again.refspec, origin.refspec);
    assert_eq!(again.requested, origin.requested);
    assert_eq!(again.requested_local, origin.requested_local);
    assert_eq!(again.skip_scripts, origin.skip_scripts);
    assert_eq!(again.to_text(), written, "writing is stable");
});
