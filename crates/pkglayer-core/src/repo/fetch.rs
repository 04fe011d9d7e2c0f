//! Getting bytes from a URL into a file: `file://`, `http://` and `https://` (rustls, the system's CA
//! store), with timeouts and retries of passing failures.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// Attempts per URL for failures that may pass (connection errors, 5xx), before giving up on it.
const ATTEMPTS: u32 = 3;
/// A server silent this long on one read is taken as hung, unless the repo says otherwise.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How to fetch one resource: the repo's settings, and for packages the size they may not exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub(crate) sslverify: bool,
    /// Longest silence from the server before an attempt fails (`timeout=` of the repo).
    pub timeout: Duration,
    /// More bytes than this is an error, not a download (the size the metadata declares).
    pub max_size: Option<u64>,
}

impl Default for Transfer {
    fn default() -> Self {
        Transfer {
            sslverify: true,
            timeout: READ_TIMEOUT,
            max_size: None,
        }
    }
}

impl Transfer {
    /// The settings of `repo`.
    pub fn of(repo: &super::RepoConfig) -> Self {
        Transfer {
            sslverify: repo.sslverify,
            timeout: repo.timeout,
            max_size: None,
        }
    }

    /// The same, refusing more than `bytes`.
    pub fn at_most(self, bytes: u64) -> Self {
        Transfer {
            max_size: Some(bytes),
            ..self
        }
    }
}

/// Downloads files. One per operation; cheap to share between threads.
pub struct Fetcher {
    verifying: ureq::Agent,
    /// For repos with `sslverify=0`.
    non_verifying: ureq::Agent,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetcher {
    pub(crate) fn new() -> Self {
        Fetcher {
            verifying: agent(true),
            non_verifying: agent(false),
        }
    }

    /// Writes the resource at `url` to `dest` (created or truncated). On failure `dest` may hold a
    /// partial file; callers download into scratch space.
    pub fn download(&self, url: &str, dest: &Path, transfer: &Transfer) -> Result<()> {
        let _ = std::fs::remove_file(dest);
        self.download_resuming(url, dest, transfer)
    }

    /// Like [`Fetcher::download`], but a partial `dest` left by an earlier attempt is continued with an
    /// HTTP range request (started over when the server ignores the range).
    pub fn download_resuming(&self, url: &str, dest: &Path, transfer: &Transfer) -> Result<()> {
        if let Some(path) = url.strip_prefix("file://") {
            let size = std::fs::metadata(path)
                .with_context(|| format!("reading {url}"))?
                .len();
            check_size(url, size, transfer)?;
            std::fs::copy(path, dest).with_context(|| format!("copying {url}"))?;
            return Ok(());
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("unsupported URL {url:?} (file://, http:// and https:// are)");
        }
        let agent = if transfer.sslverify {
            &self.verifying
        } else {
            &self.non_verifying
        };
        let mut last_error = None;
        for attempt in 1..=ATTEMPTS {
            match try_download(agent, url, dest, transfer) {
                Ok(()) => return Ok(()),
                Err(Failure::Final(err)) => return Err(err),
                Err(Failure::Passing(err)) => {
                    tracing::debug!("{url}: attempt {attempt} failed: {err:#}");
                    last_error = Some(err);
                    if attempt < ATTEMPTS {
                        std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                    }
                }
            }
        }
        Err(last_error.expect("at least one attempt ran"))
    }

    /// The resource at `url` as text.
    pub fn get_text(&self, url: &str, transfer: &Transfer) -> Result<String> {
        let scratch = tempfile::NamedTempFile::new().context("Creating a scratch file")?;
        self.download(url, scratch.path(), transfer)?;
        std::fs::read_to_string(scratch.path()).with_context(|| format!("{url} is not text"))
    }
}

/// Whether trying again might help.
enum Failure {
    Passing(anyhow::Error),
    Final(anyhow::Error),
}

fn try_download(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    transfer: &Transfer,
) -> Result<(), Failure> {
    let have = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    let mut request = agent
        .get(url)
        .config()
        .timeout_per_read(Some(transfer.timeout))
        .build();
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request
        .call()
        .map_err(|err| Failure::Passing(anyhow!("{url}: {err}")))?;
    let status = response.status().as_u16();
    match status {
        200..=299 => {}
        // The partial file is already whole (or longer than the resource): start over.
        416 if have > 0 => {
            let _ = std::fs::remove_file(dest);
            return Err(Failure::Passing(anyhow!(
                "{url}: HTTP 416 for a resumed download"
            )));
        }
        500..=599 | 408 | 429 => return Err(Failure::Passing(anyhow!("{url}: HTTP {status}"))),
        _ => return Err(Failure::Final(anyhow!("{url}: HTTP {status}"))),
    }
    // 206: the server continues where the partial file ends; 200: it sends everything again.
    let append = status == 206;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(dest)
        .with_context(|| format!("Opening {}", dest.display()))
        .map_err(Failure::Final)?;
    let already = if append { have } else { 0 };
    if let Some(length) = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        check_size(url, already + length, transfer).map_err(Failure::Final)?;
    }
    // Read one byte past the limit, so a server sending more than it should is caught, not trusted.
    let limit = transfer
        .max_size
        .map_or(u64::MAX, |max| (max + 1).saturating_sub(already));
    let mut body = std::io::Read::take(response.into_body().into_reader(), limit);
    let written = std::io::copy(&mut body, &mut file)
        .map_err(|err| Failure::Passing(anyhow!("{url}: transfer failed: {err}")))?;
    check_size(url, already + written, transfer).map_err(Failure::Final)?;
    file.flush()
        .with_context(|| format!("Writing {}", dest.display()))
        .map_err(Failure::Final)
}

/// Refuses a size above the transfer's limit (a final failure: the server or the metadata is wrong,
/// not the network).
fn check_size(url: &str, size: u64, transfer: &Transfer) -> Result<()> {
    match transfer.max_size {
        Some(max) if size > max => {
            bail!("{url} is larger than the {max} bytes the repo metadata declares")
        }
        _ => Ok(()),
    }
}

fn agent(verify: bool) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .disable_verification(!verify)
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .user_agent(concat!("pkglayer/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .into()
}
