//! Kea's command channel on a unix socket (`control-socket`), so that
//! Debian's `kea-ctrl-agent`, `kea-shell` through it, `socat` scripts and
//! Stork-style pollers reach xdhcpd exactly as they reach `kea-dhcp4`.
//!
//! The protocol is Kea 2.2's (`src/lib/config/command_mgr.cc`): one JSON
//! command per connection, read until the JSON value is complete (no
//! framing, no newline needed); one JSON answer (a single object even when
//! the command carries `"service"`: the control agent adds the list
//! itself); then the connection is closed. A connection that stays
//! silent or incomplete for [`RECEIVE_TIMEOUT`] gets Kea's time-out
//! answer. The commands run through the same [`super::command::dispatch`]
//! as the HTTP listener; like the control address, the socket may run
//! every command (see [`super::access`]).
//!
//! Like Kea, the socket is guarded by `<socket-name>.lock` (an exclusive
//! `flock`), so a second server on the same socket fails to start instead
//! of stealing it; a stale socket file left by a crash is replaced. Both
//! files are removed on shutdown.

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{UnixListener, UnixStream},
};

use super::{ApiState, command, http::MAX_BODY};

/// How long a connection may stay silent before its command is complete
/// (Kea's `TIMEOUT_DHCP_SERVER_RECEIVE_COMMAND`, 10 s).
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the socket could not be opened; the texts follow Kea's.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The lock file cannot be created (missing directory, permissions).
    #[error("cannot create socket lockfile, {path}: {source}")]
    LockFile {
        /// `<socket-name>.lock`.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process holds the lock: it serves this socket.
    #[error("cannot lock socket lockfile, {path}: another server uses this control socket")]
    Locked {
        /// `<socket-name>.lock`.
        path: PathBuf,
    },
    /// `bind(2)` failed.
    #[error("cannot bind the control socket {path}: {source}")]
    Bind {
        /// `socket-name`.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// An open control socket: the listener plus the lock that makes it ours.
/// Dropping it removes the socket and lock files.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// `<socket-name>.lock`, Kea's name.
fn lock_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Takes the lock, replaces a stale socket file and binds (must run inside
/// a tokio runtime).
pub fn open(path: &Path) -> Result<ControlSocket, SocketError> {
    let lock_path = lock_name(path);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|source| SocketError::LockFile { path: lock_path.clone(), source })?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(SocketError::Locked { path: lock_path });
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(|source| SocketError::Bind { path: path.to_owned(), source })?;
    Ok(ControlSocket { listener, path: path.to_owned(), lock_path, _lock: lock })
}

/// Serves `socket` until `stop` fires (a child of `state.shutdown`: a
/// reconfiguration that moves the socket stops this one); each connection
/// in its own task, so a slow client never holds up another. The socket
/// and lock files go when it stops.
pub async fn serve(socket: ControlSocket, state: Arc<ApiState>, stop: tokio_util::sync::CancellationToken) {
    tracing::info!(target: "kea-dhcp4.commands", msgid = "COMMAND_ACCEPTOR_START",
        "Starting to accept connections via unix domain socket bound to {}", socket.path.display());
    let token = stop;
    loop {
        let conn = tokio::select! {
            _ = token.cancelled() => break,
            c = socket.listener.accept() => c,
        };
        match conn {
            Ok((stream, _)) => {
                let state = Arc::clone(&state);
                tokio::spawn(async move { connection(stream, &state, RECEIVE_TIMEOUT).await });
            }
            Err(e) => {
                tracing::error!(error = %e, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(socket);
}

/// What the bytes received so far hold.
#[derive(Debug, PartialEq)]
enum Feed {
    /// Nothing but whitespace, or a JSON value not finished yet.
    NeedMore,
    /// One complete JSON value in the first `usize` bytes.
    Complete(usize),
    /// Not JSON: Kea answers with the parser's message.
    Invalid(String),
}

/// Kea's `JSONFeed`: is there one complete JSON value at the start?
fn feed(buf: &[u8]) -> Feed {
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<serde::de::IgnoredAny>();
    match it.next() {
        None => Feed::NeedMore,
        Some(Ok(_)) => Feed::Complete(it.byte_offset()),
        Some(Err(e)) if e.is_eof() => Feed::NeedMore,
        Some(Err(e)) => Feed::Invalid(e.to_string()),
    }
}

/// The answer to one command's bytes (a complete JSON value).
async fn answer(state: &ApiState, body: &[u8]) -> Value {
    match command::Request::parse(body) {
        Ok(req) => command::dispatch(state, &req).await.to_json(),
        Err(e) => json!({ "result": 1, "text": e.to_string() }),
    }
}

/// One connection: read one command, answer, close.
async fn connection(mut stream: UnixStream, state: &ApiState, timeout: Duration) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 32 * 1024];
    let reply = loop {
        match tokio::time::timeout(timeout, stream.read(&mut chunk)).await {
            Err(_) => {
                let mut text = "Connection over control channel timed out".to_owned();
                if !buf.is_empty() {
                    text.push_str(&format!(", discarded partial command of {} bytes", buf.len()));
                }
                tracing::info!(target: "kea-dhcp4.commands", msgid = "COMMAND_SOCKET_CONNECTION_TIMEOUT", "{text}");
                break json!({ "result": 1, "text": text });
            }
            // Closed by the client before a whole command: nothing to answer.
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > MAX_BODY {
            break json!({ "result": 1, "text": format!("command larger than {MAX_BODY} bytes") });
        }
        match feed(&buf) {
            Feed::NeedMore => continue,
            Feed::Complete(end) => break answer(state, &buf[..end]).await,
            Feed::Invalid(e) => break json!({ "result": 1, "text": e }),
        }
    };
    let text = reply.to_string();
    if let Err(e) = stream.write_all(text.as_bytes()).await {
        tracing::warn!(error = %e, "control socket: writing the answer failed");
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_waits_for_a_whole_value() {
        assert_eq!(feed(b""), Feed::NeedMore);
        assert_eq!(feed(b"  \n"), Feed::NeedMore);
        assert_eq!(feed(br#"{"command": "list-"#), Feed::NeedMore);
        assert_eq!(feed(br#"{"command": "x"}"#), Feed::Complete(16));
        assert_eq!(feed(br#" {"command": "x"} trailing"#), Feed::Complete(17));
        assert!(matches!(feed(b"{]"), Feed::Invalid(_)));
    }

    #[test]
    fn lock_name_appends() {
        assert_eq!(lock_name(Path::new("/run/kea/s")), PathBuf::from("/run/kea/s.lock"));
    }
}
