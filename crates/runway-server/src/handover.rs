//! Listening sockets that outlive a server process: systemd socket activation, and the
//! handover from a running server to its successor.
//!
//! runway is in its services' request path. If its listeners closed whenever the process
//! did, an upgrade or a crash would refuse every connection until the new process had
//! bound them again. A listening socket, though, is only closed when its last descriptor
//! is: while any process holds one, the kernel completes connections into its backlog and
//! they wait there for whoever accepts next.
//!
//! * **systemd** ([`from_systemd`]): `runway.socket` binds the API's and the services'
//!   addresses and passes them to every start of `runway.service` (`LISTEN_FDS`, names in
//!   `LISTEN_FDNAMES`: `api`, `metrics`, anything else a service's, matched by address). A
//!   crashed server's sockets stay open in systemd; the restarted one accepts what queued.
//! * **Upgrade** ([`take_over`], [`offer`]): a running server listens on `handover.sock` in
//!   its state dir (mode 0600 in a 0700 directory, and the peer's uid is checked). A new
//!   `runway server` on the same state dir finds the state locked, asks for the listeners,
//!   receives duplicates of them (`SCM_RIGHTS`), and waits for the lock. The old server then
//!   stops accepting, finishes its in-flight requests and exits without stopping its
//!   replicas; the new one adopts them as after a restart and accepts what queued meanwhile.
//!
//! The protocol is frames of `[u32 big-endian length][JSON {"names": [...], "more": bool}]`,
//! the descriptors of a frame attached to its first bytes, at most [`FDS_PER_FRAME`] a frame,
//! each acknowledged by the receiver with `ok\n` before the next is sent. It is versioned by
//! its request line, so that an old server and a new binary understand each other.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The handover socket's name in the state dir.
pub const SOCKET: &str = "handover.sock";
/// The request a successor sends.
const REQUEST: &[u8] = b"runway-handover v1\n";
/// Descriptors per frame (the kernel takes at most 253 in one message).
const FDS_PER_FRAME: usize = 200;
/// The longest a frame may be.
const MAX_FRAME: usize = 1 << 20;
/// How long either side waits for the other.
const PATIENCE: Duration = Duration::from_secs(10);

/// Listening sockets bound by someone else, by what they are for.
#[derive(Default)]
pub struct Listeners {
    pub api: Option<TcpListener>,
    pub metrics: Option<TcpListener>,
    /// Services' listeners (each router takes the one with its `listen` address).
    pub services: Vec<TcpListener>,
}

impl Listeners {
    fn add(&mut self, name: &str, listener: TcpListener) {
        match name {
            "api" => self.api = Some(listener),
            "metrics" => self.metrics = Some(listener),
            _ => self.services.push(listener),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.api.is_none() && self.metrics.is_none() && self.services.is_empty()
    }
}

/// The sockets systemd passed this process (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`,
/// as `sd_listen_fds_with_names(3)` reads them), or none. The variables are removed, so
/// that no replica started later takes them for its own.
pub fn from_systemd() -> Result<Listeners> {
    let mut listeners = Listeners::default();
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<i32>().ok())
        .unwrap_or(0);
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    for variable in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // Called once at start, before anything else reads the environment.
        std::env::remove_var(variable);
    }
    if !for_us || count <= 0 {
        return Ok(listeners);
    }
    let names: Vec<&str> = names.split(':').collect();
    for i in 0..count {
        let fd: RawFd = 3 + i;
        // Not for the replicas this server starts.
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .with_context(|| format!("systemd's socket {fd} (LISTEN_FDS={count})"))?;
        // SAFETY: systemd passes descriptors 3..3+LISTEN_FDS to this process, which owns
        // them from now on; nothing else in it uses these numbers.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        let name = names.get(i as usize).copied().unwrap_or("");
        let addr = listener.local_addr().with_context(|| {
            format!(
                "systemd's socket {fd} ({name}) is not a TCP socket: runway.socket takes \
                 ListenStream= lines of IP addresses and ports"
            )
        })?;
        tracing::info!(%addr, name, "listening socket from systemd");
        listeners.add(name, listener);
    }
    Ok(listeners)
}

#[derive(Debug, Serialize, Deserialize)]
struct Frame {
    names: Vec<String>,
    more: bool,
}

/// [`take_over`], once `check` accepts the running server's API address (from its
/// server.json): a server that would refuse to serve there must not take it over.
pub async fn take_over_checked(
    state_dir: &Path,
    check: impl FnOnce(std::net::SocketAddr) -> Result<()>,
) -> Result<Option<Listeners>> {
    if let Some(api) = crate::state_dir::read_server_file(state_dir)
        .and_then(|f| f.api.parse::<std::net::SocketAddr>().ok())
    {
        check(api)?;
    }
    take_over(state_dir).await
}

/// Asks the server that holds `state_dir` for its listeners; they are this process's
/// once this returns. `Ok(None)` when no server offers them (an older runway, or one that
/// is stopping).
pub async fn take_over(state_dir: &Path) -> Result<Option<Listeners>> {
    let path = state_dir.join(SOCKET);
    tokio::task::spawn_blocking(move || {
        let mut stream = match UnixStream::connect(&path) {
            Ok(stream) => stream,
            // Nobody offers (no socket, a stale one, a path too long for a unix socket): the
            // caller says who holds the state dir.
            Err(e) => {
                tracing::debug!("no handover from {}: {e}", path.display());
                return Ok(None);
            }
        };
        stream.set_read_timeout(Some(PATIENCE))?;
        stream.set_write_timeout(Some(PATIENCE))?;
        stream.write_all(REQUEST)?;
        let mut listeners = Listeners::default();
        loop {
            let (frame, fds) = receive_frame(&stream)?;
            if frame.names.len() != fds.len() {
                bail!(
                    "the running server sent {} sockets for {} names",
                    fds.len(),
                    frame.names.len()
                );
            }
            for (name, fd) in frame.names.iter().zip(fds) {
                listeners.add(name, TcpListener::from(fd));
            }
            stream.write_all(b"ok\n")?;
            if !frame.more {
                return Ok(Some(listeners));
            }
        }
    })
    .await?
}

/// One frame and the descriptors that came with it (close-on-exec).
fn receive_frame(stream: &UnixStream) -> Result<(Frame, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut first = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; FDS_PER_FRAME]);
    let (got, fds) = {
        let mut iov = [IoSliceMut::new(&mut first)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("receiving the listeners")?;
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().context("reading the listeners' descriptors")? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: SCM_RIGHTS installed these descriptors in this process for it.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        (msg.bytes, fds)
    };
    if got == 0 {
        bail!("the running server closed the handover before sending its listeners");
    }
    let mut bytes = first[..got].to_vec();
    let mut reader = stream;
    while bytes.len() < 4 {
        read_more(&mut reader, &mut bytes)?;
    }
    let len = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME {
        bail!("a handover frame of {len} bytes");
    }
    while bytes.len() < 4 + len {
        read_more(&mut reader, &mut bytes)?;
    }
    let frame: Frame =
        serde_json::from_slice(&bytes[4..4 + len]).context("reading the handover frame")?;
    Ok((frame, fds))
}

fn read_more(reader: &mut &UnixStream, bytes: &mut Vec<u8>) -> Result<()> {
    let mut more = [0u8; 16 * 1024];
    let n = reader.read(&mut more)?;
    if n == 0 {
        bail!("the running server closed the handover mid-frame");
    }
    bytes.extend_from_slice(&more[..n]);
    Ok(())
}

/// What a server hands its successor: its API's and metrics' listeners (duplicates),
/// and every service's (from the routers, see runway-builtin-router's `listeners`).
pub struct Offered {
    pub api: OwnedFd,
    pub metrics: OwnedFd,
}

/// Serves handover requests on `state_dir`'s socket until `stopping`. When a successor
/// has received every listener, `handed_over` is cancelled: the caller then stops
/// accepting, drains and exits without stopping its replicas.
pub fn offer(
    state_dir: &Path,
    offered: Offered,
    handed_over: CancellationToken,
    stopping: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let path = state_dir.join(SOCKET);
    // A socket file left by a server that died: nobody listens on it any more (this
    // process holds the state lock).
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let uid = nix::unistd::geteuid().as_raw();
    Ok(tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = stopping.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("handover socket: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == uid => {}
                _ => {
                    tracing::warn!("handover asked by another user: refused");
                    continue;
                }
            }
            let Ok(stream) = stream.into_std() else {
                continue;
            };
            let sent = {
                let api = offered.api.try_clone();
                let metrics = offered.metrics.try_clone();
                tokio::task::spawn_blocking(move || hand(stream, api?, metrics?)).await
            };
            match sent {
                Ok(Ok(count)) => {
                    tracing::info!(count, "listeners handed to the next server");
                    handed_over.cancel();
                    break;
                }
                Ok(Err(e)) => tracing::warn!("handover failed, serving on: {e:#}"),
                Err(e) => tracing::warn!("handover failed, serving on: {e}"),
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

/// Sends every listener to the successor on `stream`; how many.
fn hand(stream: UnixStream, api: OwnedFd, metrics: OwnedFd) -> Result<usize> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    let mut request = vec![0u8; REQUEST.len()];
    (&stream).read_exact(&mut request)?;
    if request != REQUEST {
        bail!(
            "unknown handover request {:?}",
            String::from_utf8_lossy(&request)
        );
    }
    let mut all: Vec<(String, OwnedFd)> = vec![("api".into(), api), ("metrics".into(), metrics)];
    all.extend(
        runway_builtin_router::listeners::live()
            .into_iter()
            .map(|(service, _, fd)| (format!("service:{service}"), fd)),
    );
    let count = all.len();
    let mut batches = all.chunks(FDS_PER_FRAME).peekable();
    while let Some(batch) = batches.next() {
        let frame = Frame {
            names: batch.iter().map(|(name, _)| name.clone()).collect(),
            more: batches.peek().is_some(),
        };
        let json = serde_json::to_vec(&frame)?;
        let mut bytes = (json.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&json);
        let fds: Vec<RawFd> = batch.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
        send_frame(&stream, &bytes, &fds)?;
        let mut ack = [0u8; 3];
        (&stream).read_exact(&mut ack)?;
        if &ack != b"ok\n" {
            bail!("the next server did not acknowledge its listeners");
        }
    }
    Ok(count)
}

fn send_frame(stream: &UnixStream, bytes: &[u8], fds: &[RawFd]) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let rights = [ControlMessage::ScmRights(fds)];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &rights,
        MsgFlags::empty(),
        None,
    )
    .context("sending the listeners")?;
    // The rest (a frame larger than the socket buffer) without descriptors.
    (&*stream).write_all(&bytes[sent..])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_successor_receives_working_duplicates_of_every_listener() {
        let dir = tempfile::tempdir().unwrap();
        let api = TcpListener::bind("127.0.0.1:0").unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").unwrap();
        let api_addr = api.local_addr().unwrap();
        let handed_over = CancellationToken::new();
        let stopping = CancellationToken::new();
        let task = offer(
            dir.path(),
            Offered {
                api: OwnedFd::from(api),
                metrics: OwnedFd::from(metrics),
            },
            handed_over.clone(),
            stopping.clone(),
        )
        .unwrap();
        let taken = take_over(dir.path()).await.unwrap().unwrap();
        handed_over.cancelled().await;
        task.await.unwrap();
        let api = taken.api.unwrap();
        assert_eq!(api.local_addr().unwrap(), api_addr);
        assert!(taken.metrics.is_some());
        // The socket file is gone with the offer.
        assert!(!dir.path().join(SOCKET).exists());
        // The received listener accepts.
        let client = std::thread::spawn(move || std::net::TcpStream::connect(api_addr).unwrap());
        let (_conn, _) = api.accept().unwrap();
        client.join().unwrap();
    }

    #[tokio::test]
    async fn without_a_running_server_there_is_nothing_to_take_over() {
        let dir = tempfile::tempdir().unwrap();
        assert!(take_over(dir.path()).await.unwrap().is_none());
    }
}
