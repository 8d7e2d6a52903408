//! A guard over the raw WebSocket byte stream that reads frame headers as they arrive and fails
//! the stream as soon as a frame declares a payload over the limit, or as soon as a socket that
//! has not authenticated declares more than a small budget in all. The WebSocket parser
//! underneath checks sizes only once a whole frame has arrived, buffering everything until
//! then, so without this guard one declared 1 TB frame could fill the server's memory, and
//! thousands of unauthenticated sockets each holding a nearly complete 64 KiB frame could too.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// Payload bytes a socket may declare in all before it authenticates: an `auth` message (an
/// assertion is at most 8 KiB) and a few pings fit with room to spare.
pub const MAX_PAYLOAD_BEFORE_AUTH: u64 = 16 * 1024;

/// Tracks frame boundaries in a WebSocket byte stream.
#[derive(Debug, Default)]
pub struct FrameScanner {
    header: Vec<u8>,
    payload_left: u64,
    max_payload: u64,
    /// Payload declared so far, counted until the socket authenticates.
    declared_before_auth: u64,
}

impl FrameScanner {
    pub fn new(max_payload: usize) -> Self {
        FrameScanner {
            max_payload: max_payload as u64,
            ..Default::default()
        }
    }

    /// Reads `chunk` of a socket that has authenticated (`authenticated`) or not; fails at the
    /// first frame whose declared payload is over the limit, or that takes an unauthenticated
    /// socket past [`MAX_PAYLOAD_BEFORE_AUTH`].
    pub fn scan_as(&mut self, chunk: &[u8], authenticated: bool) -> Result<(), u64> {
        self.scan_checked(chunk, authenticated)
    }

    /// Reads `chunk` of an authenticated socket.
    pub fn scan(&mut self, chunk: &[u8]) -> Result<(), u64> {
        self.scan_checked(chunk, true)
    }

    fn scan_checked(&mut self, mut chunk: &[u8], authenticated: bool) -> Result<(), u64> {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(chunk.len() as u64);
                self.payload_left -= skip;
                chunk = &chunk[skip as usize..];
                continue;
            }
            self.header.push(chunk[0]);
            chunk = &chunk[1..];
            if let Some((length, header_len)) = declared_length(&self.header) {
                if length > self.max_payload {
                    return Err(length);
                }
                if self.header.len() == header_len {
                    if !authenticated {
                        // Counted once per frame, when its header is complete.
                        self.declared_before_auth =
                            self.declared_before_auth.saturating_add(length);
                        if self.declared_before_auth > MAX_PAYLOAD_BEFORE_AUTH {
                            return Err(self.declared_before_auth);
                        }
                    }
                    self.payload_left = length;
                    self.header.clear();
                }
            }
        }
        Ok(())
    }
}

/// The declared payload length once the length bytes have arrived, and the header's full size
/// (RFC 6455 §5.2: two bytes, an extended length of 0, 2 or 8 bytes, a 4-byte mask if masked).
fn declared_length(header: &[u8]) -> Option<(u64, usize)> {
    let second = *header.get(1)?;
    let masked = second & 0x80 != 0;
    let short = u64::from(second & 0x7f);
    let extended = match short {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    if header.len() < 2 + extended {
        return None;
    }
    let length = match extended {
        2 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        8 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&header[2..10]);
            u64::from_be_bytes(bytes)
        }
        _ => short,
    };
    Some((length, 2 + extended + if masked { 4 } else { 0 }))
}

/// The payload stream with a [`FrameScanner`] in front. `authenticated` is set by the socket
/// once it has a session.
pub struct GuardedPayload<S> {
    inner: S,
    scanner: FrameScanner,
    authenticated: Arc<AtomicBool>,
    failed: bool,
}

impl<S> GuardedPayload<S> {
    pub fn new(inner: S, max_payload: usize, authenticated: Arc<AtomicBool>) -> Self {
        GuardedPayload {
            inner,
            scanner: FrameScanner::new(max_payload),
            authenticated,
            failed: false,
        }
    }
}

impl<S> Stream for GuardedPayload<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let authenticated = self.authenticated.load(Ordering::Acquire);
                if self.scanner.scan_as(&chunk, authenticated).is_err() {
                    self.failed = true;
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_pass_and_a_huge_declared_frame_fails_at_its_header() {
        let mut scanner = FrameScanner::new(64 * 1024);
        // A masked 5-byte text frame, split across chunks.
        assert_eq!(scanner.scan(&[0x81, 0x85, 1, 2]), Ok(()));
        assert_eq!(scanner.scan(&[3, 4, b'h', b'e', b'l', b'l', b'o']), Ok(()));
        // The 16-bit form tops out at 65,535 bytes, inside the limit.
        assert_eq!(scanner.scan(&[0x81, 0xfe, 0xff, 0xff]), Ok(()));
        let mut scanner = FrameScanner::new(64 * 1024);
        let mut huge = vec![0x81, 0xff];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(scanner.scan(&huge), Err(1 << 40));
    }

    #[test]
    fn an_unauthenticated_socket_may_declare_only_a_small_budget_in_all() {
        let frame = |length: u16| {
            let mut header = vec![0x01, 0xfe];
            header.extend_from_slice(&length.to_be_bytes());
            header.extend_from_slice(&[0, 0, 0, 0]);
            header.extend(std::iter::repeat_n(b'x', usize::from(length)));
            header
        };
        let mut scanner = FrameScanner::new(64 * 1024);
        assert_eq!(scanner.scan_as(&frame(10_000), false), Ok(()));
        assert!(
            scanner.scan_as(&frame(10_000), false).is_err(),
            "continuations add up"
        );
        let mut scanner = FrameScanner::new(64 * 1024);
        let one = frame(16_000);
        for byte in one.chunks(1) {
            assert_eq!(scanner.scan_as(byte, false), Ok(()), "a frame counts once");
        }
        let mut scanner = FrameScanner::new(64 * 1024);
        assert_eq!(scanner.scan_as(&frame(10_000), false), Ok(()));
        assert_eq!(scanner.scan_as(&frame(60_000), true), Ok(()), "after auth");
    }

    #[test]
    fn a_frame_just_over_the_limit_fails_and_one_at_the_limit_passes() {
        let mut header = vec![0x82, 0xff];
        header.extend_from_slice(&(64u64 * 1024).to_be_bytes());
        header.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(FrameScanner::new(64 * 1024).scan(&header), Ok(()));
        let mut header = vec![0x82, 0xff];
        header.extend_from_slice(&(64u64 * 1024 + 1).to_be_bytes());
        assert!(FrameScanner::new(64 * 1024).scan(&header).is_err());
    }
}
