//! A real HTTP/1.1 server on 127.0.0.1 serving a directory, for repos in tests.
//!
//! It logs every request path (so tests can prove nothing is downloaded twice) and can be told to
//! misbehave on a path: answer with an error status, or close the connection mid-body. For
//! benchmarks it can serve packages at a fixed rate ([`RepoServer::serve_throttled`]). Files are
//! streamed from disk, so serving a big package takes no memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the server answers a path it was told to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and no body.
    Status(u16),
    /// Send the headers and half the body, then close the connection.
    Truncate,
    /// Like `Truncate`, for the first request only; later ones are served normally.
    TruncateOnce,
    /// Read the request, then say nothing (for a minute), as a hung server does.
    Hang,
}

#[derive(Default)]
struct Shared {
    requests: Vec<String>,
    /// Requests that asked for a byte range: path and the first byte asked for.
    ranges: Vec<(String, u64)>,
    faults: HashMap<String, Fault>,
    /// Bytes per second for the bodies of `.rpm` files, all connections together; `None`: no limit.
    rate: Option<u64>,
    /// When the next chunk of a throttled body may go out.
    next_slot: Option<Instant>,
}

/// How much of a body is written at once (and, throttled, paced as one piece).
const CHUNK: usize = 64 * 1024;

/// Serves `root` on an ephemeral port until dropped.
pub struct RepoServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RepoServer {
    pub fn serve(root: &Path) -> std::io::Result<Self> {
        Self::start(root, None)
    }

    /// Like [`RepoServer::serve`], sending package files (paths ending in `.rpm`) at
    /// `bytes_per_sec` in all, however many connections share it, as a repo behind a fixed-rate
    /// link does. Metadata is not throttled.
    pub fn serve_throttled(root: &Path, bytes_per_sec: u64) -> std::io::Result<Self> {
        Self::start(root, Some(bytes_per_sec))
    }

    /// Changes the rate of package downloads (`None`: as fast as possible) from the next chunk on.
    pub fn set_rate(&self, bytes_per_sec: Option<u64>) {
        let mut shared = self.shared.lock().unwrap();
        shared.rate = bytes_per_sec.filter(|&rate| rate > 0);
        shared.next_slot = None;
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn start(root: &Path, rate: Option<u64>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            rate: rate.filter(|&rate| rate > 0),
            ..Shared::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (root, shared, stop) = (root.to_path_buf(), shared.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (root, shared) = (root.clone(), shared.clone());
                    std::thread::spawn(move || {
                        let _ = handle(stream, &root, &shared);
                    });
                }
            })
        };
        Ok(RepoServer {
            addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Every path requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// Requests that continued a download (`Range: bytes=N-`): path and N.
    pub fn ranges(&self) -> Vec<(String, u64)> {
        self.shared.lock().unwrap().ranges.clone()
    }

    /// How many requests asked for a path ending in `suffix`.
    pub fn count(&self, suffix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|p| p.ends_with(suffix))
            .count()
    }

    /// Makes requests for paths ending in `suffix` fail as `fault` says.
    pub fn break_path(&self, suffix: &str, fault: Fault) {
        self.shared
            .lock()
            .unwrap()
            .faults
            .insert(suffix.to_string(), fault);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().unwrap().faults.clear();
    }
}

impl Drop for RepoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn handle(stream: TcpStream, root: &Path, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        // Read the headers (only Range matters); a GET has no body.
        let mut range_start: Option<u64> = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("range")
            {
                range_start = value
                    .trim()
                    .strip_prefix("bytes=")
                    .and_then(|v| v.strip_suffix('-'))
                    .and_then(|v| v.parse().ok());
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, raw_path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let path = raw_path.split('?').next().unwrap_or("/").to_string();
        let fault = {
            let mut shared = shared.lock().unwrap();
            shared.requests.push(path.clone());
            if let Some(start) = range_start {
                shared.ranges.push((path.clone(), start));
            }
            let hit = shared
                .faults
                .iter()
                .find(|(suffix, _)| path.ends_with(suffix.as_str()))
                .map(|(suffix, fault)| (suffix.clone(), *fault));
            if let Some((suffix, Fault::TruncateOnce)) = &hit {
                shared.faults.remove(suffix);
            }
            hit.map(|(_, fault)| fault)
        };

        if fault == Some(Fault::Hang) {
            std::thread::sleep(std::time::Duration::from_secs(60));
            return Ok(());
        }
        let file = resolve(root, &path);
        if let Some(Fault::Status(code)) = fault {
            respond(&mut stream, code, &[], method)?;
            continue;
        }
        let Some((mut body, len)) = file.and_then(|file| {
            let body = File::open(file).ok()?;
            let len = body.metadata().ok()?.len();
            Some((body, len))
        }) else {
            respond(&mut stream, 404, &[], method)?;
            continue;
        };
        let throttled = path.ends_with(".rpm");
        if matches!(fault, Some(Fault::Truncate | Fault::TruncateOnce)) {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            )?;
            send(&mut stream, &mut body, len / 2, throttled.then_some(shared))?;
            return Ok(());
        }
        match range_start {
            Some(start) if start < len => {
                write!(
                    stream,
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{len}\r\n\r\n",
                    len - start,
                    len - 1,
                )?;
                body.seek(SeekFrom::Start(start))?;
                send(
                    &mut stream,
                    &mut body,
                    len - start,
                    throttled.then_some(shared),
                )?;
            }
            Some(_) => respond(&mut stream, 416, &[], method)?,
            None => {
                write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
                if method != "HEAD" {
                    send(&mut stream, &mut body, len, throttled.then_some(shared))?;
                }
            }
        }
        stream.flush()?;
    }
}

/// Copies `len` bytes of `body` to `stream` in chunks; with `shared` given and a rate set there,
/// each chunk waits for its slot in the server-wide schedule first.
fn send(
    stream: &mut TcpStream,
    body: &mut File,
    len: u64,
    shared: Option<&Mutex<Shared>>,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let got = body.read(&mut buffer[..want])?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(shared) = shared {
            pace(shared, got);
        }
        stream.write_all(&buffer[..got])?;
        left -= got as u64;
    }
    Ok(())
}

/// Waits until `bytes` more may be sent at the server's rate: takes the next slot of the schedule
/// all connections share (a slot lasts `bytes / rate`) and sleeps until it ends. Idle time earns no
/// credit, so the rate is never exceeded.
fn pace(shared: &Mutex<Shared>, bytes: usize) {
    let until = {
        let mut shared = shared.lock().unwrap();
        let Some(rate) = shared.rate else { return };
        let now = Instant::now();
        let start = shared.next_slot.map_or(now, |next| next.max(now));
        let end = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
        shared.next_slot = Some(end);
        end
    };
    let now = Instant::now();
    if until > now {
        std::thread::sleep(until - now);
    }
}

fn respond(stream: &mut TcpStream, code: u16, body: &[u8], method: &str) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Error",
    };
    write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// The file under `root` for a URL path, refusing anything that climbs out of it.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let relative = url_path.trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    let path = root.join(relative);
    path.is_file().then_some(path)
}
