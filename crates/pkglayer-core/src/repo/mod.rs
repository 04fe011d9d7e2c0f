//! Package repositories: configuration (`*.repo` files), mirrors, fetching, and the metadata cache.

pub mod config;
pub mod fetch;
pub mod filelists;
pub mod metadata;
pub mod mirrors;
pub mod repomd;
pub mod signature;

pub use config::{RepoConfig, RepoVars, load_repos_dir, parse_repo_file};
pub use fetch::{Fetcher, Transfer};
pub use metadata::{Freshness, RepoMetadata, SyncReport, sync_repos};
pub use repomd::{Checksum, Repomd, RepomdRecord};
