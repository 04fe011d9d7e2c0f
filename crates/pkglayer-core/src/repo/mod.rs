//! Package repositories: configuration (`*.repo` files); metadata fetching and caching come next.

pub mod config;

pub use config::{RepoConfig, RepoVars, load_repos_dir, parse_repo_file};
