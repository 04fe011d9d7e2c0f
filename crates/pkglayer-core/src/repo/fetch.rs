//! Getting bytes from a URL into a file: `file://`, `http://` and `https://` (rustls, the system's CA
//! store), with timeouts and retries of passing failures.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// Attempts per URL for failures that may pass (connection errors, 5xx), before giving up on it.
const ATTEMPTS: u32 = 3;
/// A server silent this long on one read is taken as hung.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

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
    pub fn new() -> Self {
        Fetcher {
            verifying: agent(true),
            non_verifying: agent(false),
        }
    }

    /// Writes the resource at `url` to `dest` (created or truncated). On failure `dest` may hold a
    /// partial file; callers download into scratch space.
    pub fn download(&self, url: &str, dest: &Path, sslverify: bool) -> Result<()> {
        let _ = std::fs::remove_file(dest);
        self.download_resuming(url, dest, sslverify)
    }

    /// Like [`Fetcher::download`], but a partial `dest` left by an earlier attempt is continued with an
    /// HTTP range request (started over when the server ignores the range).
    pub fn download_resuming(&self, url: &str, dest: &Path, sslverify: bool) -> Result<()> {
        if let Some(path) = url.strip_prefix("file://") {
            std::fs::copy(path, dest).with_context(|| format!("copying {url}"))?;
            return Ok(());
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("unsupported URL {url:?} (file://, http:// and https:// are)");
        }
        let agent = if sslverify {
            &self.verifying
        } else {
            &self.non_verifying
        };
        let mut last_error = None;
        for attempt in 1..=ATTEMPTS {
            match try_download(agent, url, dest) {
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
    pub fn get_text(&self, url: &str, sslverify: bool) -> Result<String> {
        let scratch = tempfile::NamedTempFile::new().context("Creating a scratch file")?;
        self.download(url, scratch.path(), sslverify)?;
        std::fs::read_to_string(scratch.path()).with_context(|| format!("{url} is not text"))
    }
}

/// Whether trying again might help.
enum Failure {
    Passing(anyhow::Error),
    Final(anyhow::Error),
}

fn try_download(agent: &ureq::Agent, url: &str, dest: &Path) -> Result<(), Failure> {
    let have = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
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
    let mut body = response.into_body().into_reader();
    std::io::copy(&mut body, &mut file)
        .map_err(|err| Failure::Passing(anyhow!("{url}: transfer failed: {err}")))?;
    file.flush()
        .with_context(|| format!("Writing {}", dest.display()))
        .map_err(Failure::Final)
}

fn agent(verify: bool) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .disable_verification(!verify)
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .user_agent(concat!("pkglayer/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .into()
}
