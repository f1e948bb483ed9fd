//! A request's body on its way through the middleware: kept, when it fits the resend cap, so
//! that it can be sent again after a refused token; else streamed on once, byte for byte.

use crate::bindings::wasi::http::types::{ErrorCode, Fields};
use crate::bindings::{wit_future, wit_stream};
use wit_bindgen::{FutureReader, FutureWriter, StreamReader, StreamResult};

type Trailers = FutureReader<Result<Option<Fields>, ErrorCode>>;

/// How much is read from a body stream at a time.
const CHUNK: usize = 16 * 1024;

pub(crate) enum Body {
    /// The whole body and its trailers: sent as often as needed.
    Kept {
        bytes: Vec<u8>,
        trailers: Option<Fields>,
    },
    /// Longer than the cap: what was read, then the rest of the stream; sent once.
    Streamed {
        read: Vec<u8>,
        rest: StreamReader<u8>,
        trailers: Trailers,
    },
}

impl Body {
    /// Reads `stream` until it ends (kept) or `cap` is passed (streamed).
    pub async fn take(
        mut stream: StreamReader<u8>,
        trailers: Trailers,
        cap: usize,
    ) -> Result<Body, ErrorCode> {
        let mut read = Vec::new();
        loop {
            if read.len() > cap {
                return Ok(Body::Streamed {
                    read,
                    rest: stream,
                    trailers,
                });
            }
            let room = (cap.saturating_add(1) - read.len()).min(CHUNK);
            let (result, chunk) = stream.read(Vec::with_capacity(room)).await;
            read.extend_from_slice(&chunk);
            if !matches!(result, StreamResult::Complete(_)) {
                break;
            }
        }
        // The caller's own failure to send its body is its error.
        let trailers = trailers.await?;
        Ok(Body::Kept {
            bytes: read,
            trailers,
        })
    }

    /// Whether the request had no body to send (so none is sent: a `GET` stays without one).
    pub fn is_empty(&self) -> bool {
        matches!(self, Body::Kept { bytes, trailers: None } if bytes.is_empty())
    }

    /// The contents and trailers of one request, and the body to send again if it was kept.
    /// A streamed body is spent: the rest of its stream is piped on as it comes.
    pub fn contents(self) -> ((StreamReader<u8>, Trailers), Option<Body>) {
        let (mut tx, rx) = wit_stream::new::<u8>();
        match self {
            Body::Kept { bytes, trailers } => {
                let (trailers_tx, trailers_rx) = trailers_future();
                let copy = bytes.clone();
                let sent = trailers.as_ref().map(|t| t.clone());
                wit_bindgen::spawn_local(async move {
                    let _ = tx.write_all(copy).await;
                    drop(tx);
                    let _ = trailers_tx.write(Ok(sent)).await;
                });
                ((rx, trailers_rx), Some(Body::Kept { bytes, trailers }))
            }
            Body::Streamed {
                read,
                mut rest,
                trailers,
            } => {
                wit_bindgen::spawn_local(async move {
                    // A write that leaves bytes over: the receiver is gone.
                    if !tx.write_all(read).await.is_empty() {
                        return;
                    }
                    loop {
                        let (result, chunk) = rest.read(Vec::with_capacity(CHUNK)).await;
                        if !tx.write_all(chunk).await.is_empty()
                            || !matches!(result, StreamResult::Complete(_))
                        {
                            return;
                        }
                    }
                });
                ((rx, trailers), None)
            }
        }
    }
}

/// A trailers future, `Ok(None)` unless written.
fn trailers_future() -> (FutureWriter<Result<Option<Fields>, ErrorCode>>, Trailers) {
    wit_future::new::<Result<Option<Fields>, ErrorCode>>(|| Ok(None))
}
