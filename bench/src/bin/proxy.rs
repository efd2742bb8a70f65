//! A minimal connection-affine hyper reverse proxy (one upstream connection per client
//! connection, both driven on one task): the best one forwarding hop can do, as a baseline.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: bench-proxy LISTEN_PORT UPSTREAM_PORT");
    let upstream: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: bench-proxy LISTEN_PORT UPSTREAM_PORT");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", listen)).await?;
    loop {
        let (client, _) = listener.accept().await?;
        let _ = client.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                return;
            };
            let _ = up.set_nodelay(true);
            let Ok((sender, conn)) =
                hyper::client::conn::http1::handshake::<_, Incoming>(TokioIo::new(up)).await
            else {
                return;
            };
            let sender: Arc<Mutex<SendRequest<Incoming>>> = Arc::new(Mutex::new(sender));
            let service = service_fn(move |req: Request<Incoming>| {
                let sender = sender.clone();
                async move {
                    let mut s = sender.lock().await;
                    let _ = s.ready().await;
                    let resp = match s.send_request(req).await {
                        Ok(r) => r.map(http_body_util::Either::Left),
                        Err(_) => Response::builder()
                            .status(502)
                            .body(http_body_util::Either::Right(http_body_util::Empty::<
                                bytes::Bytes,
                            >::new(
                            )))
                            .expect("static response"),
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let server = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(client), service);
            // Both on this task; when the client leaves, the service (and its sender) is
            // dropped, which ends the upstream connection too.
            let _ = tokio::join!(server, conn);
        });
    }
}
