//! Package repositories: configuration (`*.repo` files), mirrors, fetching, the metadata cache, and
//! the repos of a host.

pub mod config;
pub mod fetch;
pub mod filelists;
pub mod host;
pub mod metadata;
pub mod mirrors;
pub mod repomd;
pub mod signature;

pub use config::{RepoConfig, RepoVars, load_repos_dir, parse_repo_file};
pub use fetch::{Fetcher, Transfer};
pub use host::RepoOptions;
pub use metadata::{Freshness, RepoMetadata, SkippedRepo, SyncReport, sync_repos};
pub use repomd::{Checksum, Repomd, RepomdRecord};
