//! Package repositories: configuration (`*.repo` files) and the rpm-md index (`repomd.xml`);
//! fetching and caching come next.

pub mod config;
pub mod repomd;

pub use config::{RepoConfig, RepoVars, load_repos_dir, parse_repo_file};
pub use repomd::{Checksum, Repomd, RepomdRecord};
