//! `.repo` files: any text gives repos or an error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pkglayer_core::repo::{RepoVars, parse_repo_file};

fuzz_target!(|text: &str| {
    let vars = RepoVars::new("40", "x86_64");
    if let Ok(repos) = parse_repo_file(Path::new("fuzz.repo"), text, &vars) {
        for repo in repos {
            assert!(!repo.id.is_empty());
        }
    }
});
