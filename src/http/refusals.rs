//! The HTTP server's own refusals in the spec's JSON error shape. actix-http answers a request head it
//! cannot take (unparsable, a URI past 65,534 bytes, a head past 128 KiB, one too slow to arrive) with a
//! fixed, empty 400, 431 or 408 written straight to the connection, below every middleware. This wraps
//! each connection and swaps exactly those answers for a JSON one as they are written: 414 `uri-too-long`
//! when the request line was the long part, 431 `headers-too-large`, 400 `invalid-request`, 408
//! `request-timeout`. The application's own answers never match: every error it sends has a JSON body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A request line longer than this, in a head refused as a whole, makes the refusal a 414.
const LONG_REQUEST_LINE: usize = 8 * 1024;

/// The framework's empty answers, as actix-http writes them (status line, then content-length first).
const FRAMEWORK_ANSWERS: [(&[u8], Refusal); 3] = [
    (b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n", Refusal::BadRequest),
    (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n", Refusal::HeadTooLarge),
    (b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n", Refusal::Timeout),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Refusal {
    BadRequest,
    HeadTooLarge,
    Timeout,
}

/// The JSON answer for a refusal; `long_request_line` when the refused head's request line was long.
fn answer(refusal: Refusal, long_request_line: bool) -> Vec<u8> {
    let (status, code, message) = match (refusal, long_request_line) {
        (Refusal::Timeout, _) => {
            ("408 Request Timeout", "request-timeout", "the request head did not arrive in time; send it at once")
        }
        (_, true) => ("414 URI Too Long", "uri-too-long", "the request's URI is too long; send at most 8 KiB"),
        (Refusal::HeadTooLarge, false) => (
            "431 Request Header Fields Too Large",
            "headers-too-large",
            "the request's headers are too large or too many; send at most 96 headers and 128 KiB",
        ),
        (Refusal::BadRequest, false) => ("400 Bad Request", "invalid-request", "the request is not valid HTTP/1.1"),
    };
    let body = crate::error::error_body(code, message, None);
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Where in `written` a framework answer starts, which, and how long its head is. One SIMD scan for
/// the rare `HTTP/1.1 4` per write (this runs on every answer, pkpass bodies included).
fn find_framework_answer(written: &[u8]) -> Option<(usize, Refusal, usize)> {
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&written[from..], b"HTTP/1.1 4") {
        let at = from + found;
        let rest = &written[at..];
        if let Some((_, refusal)) = FRAMEWORK_ANSWERS.iter().find(|(prefix, _)| rest.starts_with(prefix)) {
            let head_end = memchr::memmem::find(rest, b"\r\n\r\n")? + 4;
            return Some((at, *refusal, head_end));
        }
        from = at + 1;
    }
    None
}

/// A connection whose framework refusals are answered in JSON.
pub struct JsonRefusals<T> {
    inner: T,
    /// The JSON answer, while it is being written in place of the framework's.
    pending: Vec<u8>,
    /// Bytes of the first line read since the last answer (the request line of the head being read).
    request_line: usize,
    request_line_open: bool,
}

impl<T> JsonRefusals<T> {
    pub fn new(inner: T) -> Self {
        JsonRefusals { inner, pending: Vec::new(), request_line: 0, request_line_open: true }
    }

    fn saw_read(&mut self, bytes: &[u8]) {
        if !self.request_line_open {
            return;
        }
        match bytes.iter().position(|b| *b == b'\n') {
            Some(end) => {
                self.request_line += end;
                self.request_line_open = false;
            }
            None => self.request_line += bytes.len(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonRefusals<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let this = &mut *self;
        this.saw_read(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> JsonRefusals<T> {
    /// Writes what is left of the JSON answer; Ready once it is all out.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonRefusals<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        match find_framework_answer(buf) {
            Some((0, refusal, head_len)) => {
                this.pending = answer(refusal, this.request_line > LONG_REQUEST_LINE);
                // The framework's head counts as written; ours goes out now or on the next call.
                if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(head_len))
            }
            found => {
                let end = found.map_or(buf.len(), |(at, _, _)| at);
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..end]))?;
                if n > 0 {
                    // An answer went out: the next head starts now.
                    this.request_line = 0;
                    this.request_line_open = true;
                }
                Poll::Ready(Ok(n))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_frameworks_empty_answers_are_found() {
        let date = b"date: Fri, 04 Dec 2026 13:16:08 GMT\r\n\r\n";
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\ncontent-type: application/json\r\n\r\n{}";
        assert_eq!(find_framework_answer(ours), None);
        let theirs = [&b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"[..], FRAMEWORK_ANSWERS[1].0, date].concat();
        let (at, refusal, head) = find_framework_answer(&theirs).unwrap();
        assert_eq!((at, refusal), (40, Refusal::HeadTooLarge));
        assert_eq!(at + head, theirs.len());
    }

    #[test]
    fn answers_are_json_with_their_own_status() {
        let text = String::from_utf8(answer(Refusal::HeadTooLarge, true)).unwrap();
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "uri-too-long");
        assert!(String::from_utf8(answer(Refusal::Timeout, true)).unwrap().starts_with("HTTP/1.1 408 "));
        assert!(String::from_utf8(answer(Refusal::BadRequest, false)).unwrap().contains("invalid-request"));
    }

    #[test]
    fn the_request_line_is_measured_up_to_its_newline() {
        let mut conn = JsonRefusals::new(());
        conn.saw_read(&[b'a'; 5000]);
        conn.saw_read(&[b'a'; 5000]);
        conn.saw_read(b"aa HTTP/1.1\r\nHost: x\r\n");
        assert_eq!(conn.request_line, 10_012);
        conn.saw_read(&[b'b'; 100_000]);
        assert_eq!(conn.request_line, 10_012, "a header line is not the request line");
    }
}
