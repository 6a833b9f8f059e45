//! A raw HTTP/1.1 client on one TCP connection, for what a library hides:
//! whether a connection was reused, whether it ended with FIN or with a
//! reset, whether every byte of a request body could be written.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// How a request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length,
    Chunked,
}

/// A request as bytes: the head (with framing headers) and the body.
pub struct RawRequest {
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

/// `method path` with `extra` header lines and a body of `size` bytes.
pub fn request(
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    size: usize,
    framing: Framing,
) -> RawRequest {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let body = match framing {
        Framing::Length => {
            head.push_str(&format!("Content-Length: {size}\r\n"));
            payload
        }
        Framing::Chunked => {
            head.push_str("Transfer-Encoding: chunked\r\n");
            let mut body = Vec::with_capacity(size + size / 1000 + 16);
            for chunk in payload.chunks(16 * 1024) {
                body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                body.extend_from_slice(chunk);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n\r\n");
            body
        }
    };
    head.push_str("\r\n");
    RawRequest {
        head: head.into_bytes(),
        body,
    }
}

/// One answer as read off the wire.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the answer says the connection ends after it.
    pub fn closes(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection.
pub struct RawConn {
    reader: OwnedReadHalf,
    writer: Option<OwnedWriteHalf>,
    /// Read but not yet consumed.
    pending: Vec<u8>,
}

const BOUND: Duration = Duration::from_secs(20);

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the proxy");
        stream.set_nodelay(true).unwrap();
        let (reader, writer) = stream.into_split();
        RawConn {
            reader,
            writer: Some(writer),
            pending: Vec::new(),
        }
    }

    /// Sends `request` (its body written concurrently with reading the
    /// answer, as a client that cannot know when the server answers) and
    /// reads the answer. `Err` describes any failure: a write error (EPIPE,
    /// reset), a read error, a connection that ended before a full answer.
    pub async fn exchange(&mut self, request: &RawRequest) -> Result<RawAnswer, String> {
        let mut bytes = request.head.clone();
        bytes.extend_from_slice(&request.body);
        self.exchange_bytes(bytes).await
    }

    /// Like [`RawConn::exchange`] with the request already as bytes.
    pub async fn exchange_bytes(&mut self, bytes: Vec<u8>) -> Result<RawAnswer, String> {
        let mut writer = self.writer.take().expect("a writer");
        let write = tokio::spawn(async move {
            let result = writer.write_all(&bytes).await;
            (writer, result)
        });
        let answer = tokio::time::timeout(BOUND, self.read_answer())
            .await
            .map_err(|_| "no answer within 20 s".to_owned())?;
        let (writer, written) = tokio::time::timeout(BOUND, write)
            .await
            .map_err(|_| "request not written within 20 s".to_owned())?
            .expect("writer task");
        self.writer = Some(writer);
        let answer = answer?;
        written.map_err(|error| format!("writing the request failed: {error}"))?;
        Ok(answer)
    }

    /// Writes bytes without waiting for an answer.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer
            .as_mut()
            .expect("a writer")
            .write_all(bytes)
            .await
    }

    /// Shuts down the write side (FIN), as a client that stops sending.
    pub async fn shutdown_write(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            let _ = writer.shutdown().await;
            self.writer = Some(writer);
        }
    }

    async fn fill(&mut self) -> Result<usize, String> {
        let mut buf = [0u8; 16 * 1024];
        let n = self
            .reader
            .read(&mut buf)
            .await
            .map_err(|error| format!("read failed: {error} ({:?})", error.kind()))?;
        self.pending.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Reads one final answer (skipping `1xx`).
    pub async fn read_answer(&mut self) -> Result<RawAnswer, String> {
        loop {
            let (status, headers, head_len) = loop {
                let mut parsed = [httparse::EMPTY_HEADER; 64];
                let mut response = httparse::Response::new(&mut parsed);
                match response.parse(&self.pending) {
                    Ok(httparse::Status::Complete(len)) => {
                        let headers: Vec<(String, String)> = response
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_owned(),
                                    String::from_utf8_lossy(h.value).into_owned(),
                                )
                            })
                            .collect();
                        break (response.code.unwrap_or(0), headers, len);
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.fill().await? == 0 {
                            return Err(format!(
                                "connection ended before a full answer head ({} bytes)",
                                self.pending.len()
                            ));
                        }
                    }
                    Err(error) => return Err(format!("bad answer head: {error}")),
                }
            };
            self.pending.drain(..head_len);
            if (100..200).contains(&status) {
                continue;
            }
            let length = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .ok_or("the answer has no Content-Length")?;
            while self.pending.len() < length {
                if self.fill().await? == 0 {
                    return Err(format!(
                        "connection ended after {} of {length} body bytes",
                        self.pending.len()
                    ));
                }
            }
            let body = self.pending.drain(..length).collect();
            return Ok(RawAnswer {
                status,
                headers,
                body,
            });
        }
    }

    /// Reads exactly `n` bytes.
    pub async fn read_bytes(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.pending.len() < n {
            if self.fill().await? == 0 {
                return Err(format!(
                    "connection ended after {} bytes",
                    self.pending.len()
                ));
            }
        }
        Ok(self.pending.drain(..n).collect())
    }

    /// Reads until the server closes; `Err` on a reset (or any read error)
    /// or when bytes arrive.
    pub async fn expect_fin(&mut self) -> Result<(), String> {
        let read = async {
            loop {
                if self.fill().await? == 0 {
                    return Ok::<(), String>(());
                }
            }
        };
        tokio::time::timeout(BOUND, read)
            .await
            .map_err(|_| "the connection did not end within 20 s".to_owned())??;
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected bytes", self.pending.len()))
        }
    }
}
