//! The front door: routes `http://{app}.{domain}/...` and `/apps/{app}/...` to a ready
//! replica of the app on some worker. Each management process keeps its own routing table,
//! read from the store every half second; nothing on the request path touches the store.
//! Keys are checked by the app's host, once.

mod forward;
pub mod table;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use http::{Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use stratus_store::{SqlApps, SqlWorkers};
use tokio::sync::watch;

use self::forward::{Conn, ResponseBody};
use self::table::Table;

/// Work a client connection's task drives besides the connection itself (its upstream
/// connections).
pub(crate) type Driven = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Why the front door answered itself; [`FrontError::response`] is where these become HTTP.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error("no app is addressed: use http://{{app}}.{{domain}}/... or /apps/{{app}}/...")]
    NotAddressed,
    #[error("no app named {0}")]
    NoApp(String),
    #[error("no replica of {0} is ready to serve")]
    NoReplica(String),
    #[error("no replica of {0} could be reached (last: {1})")]
    Unreachable(String, String),
    #[error("the replica's connection broke off: {0}")]
    Broken(String),
    #[error("{0}")]
    BadRequest(String),
}

impl FrontError {
    pub fn response(&self) -> Response<ResponseBody> {
        let status = match self {
            FrontError::NotAddressed | FrontError::NoApp(_) => StatusCode::NOT_FOUND,
            FrontError::NoReplica(_) | FrontError::Unreachable(..) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            FrontError::Broken(_) => StatusCode::BAD_GATEWAY,
            FrontError::BadRequest(_) => StatusCode::BAD_REQUEST,
        };
        let mut r = Response::new(Either::Right(Full::new(Bytes::from(format!("{self}\n")))));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, http::HeaderValue::from_static("2"));
        }
        r
    }
}

/// The app a request addresses and the path and query its host sees: the first label of a
/// `Host` under `domain` (`shop.apps.example.com` → `shop`, path unchanged), or the path form
/// `/apps/shop/api/x?y` → `/api/x?y`. Names are compared in lower case.
pub fn target(
    host: Option<&str>,
    path_and_query: &str,
    domain: Option<&str>,
) -> Option<(String, String)> {
    if let (Some(host), Some(domain)) = (host, domain) {
        let name = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(label) = name.strip_suffix(domain).and_then(|l| l.strip_suffix('.'))
            && !label.is_empty()
            && !label.contains('.')
        {
            return Some((label.to_string(), path_and_query.to_string()));
        }
    }
    let rest = path_and_query.strip_prefix("/apps/")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let app = &rest[..end];
    if app.is_empty() {
        return None;
    }
    let tail = &rest[end..];
    let tail = if tail.starts_with('/') {
        tail.to_string()
    } else {
        format!("/{tail}")
    };
    Some((app.to_ascii_lowercase(), tail))
}

/// The front door of one management process.
pub struct FrontDoor {
    apps: SqlApps,
    workers: SqlWorkers,
    /// The domain apps are addressed under (`{app}.{domain}`), lower case.
    domain: Option<String>,
    table: parking_lot::RwLock<Arc<Table>>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

impl FrontDoor {
    pub fn new(
        apps: SqlApps,
        workers: SqlWorkers,
        domain: Option<String>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<FrontDoor> {
        Arc::new(FrontDoor {
            apps,
            workers,
            domain: domain
                .map(|d| d.trim_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty()),
            table: parking_lot::RwLock::new(Arc::new(Table::default())),
            metrics,
        })
    }

    /// Reads the routing table from the store again.
    pub async fn refresh(&self) -> Result<(), stratus_store::Error> {
        let previous = self.table.read().clone();
        let table = Table::load(&self.apps, &self.workers, &previous).await?;
        *self.table.write() = Arc::new(table);
        Ok(())
    }

    /// Refreshes the table every `every` until `shutdown` completes.
    pub async fn follow(
        self: Arc<Self>,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            match self.refresh().await {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!("front door: cannot read the routing table: {e}");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = &mut shutdown => return,
            }
        }
    }

    async fn handle(
        &self,
        conn: &Conn,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Response<ResponseBody> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        crate::metrics::inc(&self.metrics.front_requests);
        let Some((app, path)) = target(host, pq, self.domain.as_deref()) else {
            crate::metrics::inc(&self.metrics.front_not_found);
            return FrontError::NotAddressed.response();
        };
        let table = self.table.read().clone();
        match self.forward(conn, &table, &app, &path, req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(app, "front door: {e}");
                let m = &self.metrics;
                crate::metrics::inc(match e {
                    FrontError::NoReplica(_) | FrontError::Unreachable(..) => &m.front_unavailable,
                    FrontError::Broken(_) => &m.front_bad_gateway,
                    FrontError::NotAddressed | FrontError::NoApp(_) => &m.front_not_found,
                    FrontError::BadRequest(_) => &m.front_requests_bad,
                });
                e.response()
            }
        }
    }

    /// Serves the front door on `listener` until `shutdown` completes, then lets requests in
    /// flight finish for up to `drain`.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
        drain: Duration,
    ) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        connections.spawn(serve_connection(self.clone(), stream, peer, stop_rx.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "front door: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        if tokio::time::timeout(drain, async {
            while connections.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            connections.shutdown().await;
        }
    }
}

/// One client connection and its upstream connections, all driven by this task.
async fn serve_connection(
    front: Arc<FrontDoor>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Driven>();
    let conn = Arc::new(Conn::new(tx, peer));
    let service = service_fn(move |req| {
        let front = front.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(front.handle(&conn, req).await) }
    });
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(http);
    let mut upstreams: FuturesUnordered<Driven> = FuturesUnordered::new();
    let mut stopping = *stop.borrow();
    if stopping {
        http.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = http.as_mut() => {
                if let Err(e) = result
                    && !e.is_incomplete_message()
                {
                    tracing::debug!(error = %e, "front door: client connection ended with an error");
                }
                break;
            }
            Some(fut) = rx.recv() => upstreams.push(fut),
            Some(()) = upstreams.next(), if !upstreams.is_empty() => {}
            _ = stop.changed(), if !stopping => {
                stopping = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_are_addressed_by_host_or_path() {
        let d = Some("apps.example.com");
        let t = |h: Option<&str>, p: &str, d: Option<&str>| target(h, p, d);
        assert_eq!(
            t(Some("Shop.apps.example.com:8080"), "/api/x?y=1", d),
            Some(("shop".into(), "/api/x?y=1".into()))
        );
        assert_eq!(
            t(Some("shop.apps.example.com."), "/", d),
            Some(("shop".into(), "/".into()))
        );
        // Not under the domain, or deeper than one label: the path form decides.
        assert_eq!(t(Some("shop.scm.apps.example.com"), "/api/x", d), None);
        assert_eq!(t(Some("apps.example.com"), "/api/x", d), None);
        assert_eq!(
            t(Some("localhost:8080"), "/apps/Shop/api/x?y", d),
            Some(("shop".into(), "/api/x?y".into()))
        );
        assert_eq!(
            t(None, "/apps/shop", None),
            Some(("shop".into(), "/".into()))
        );
        assert_eq!(
            t(None, "/apps/shop?x=1", None),
            Some(("shop".into(), "/?x=1".into()))
        );
        assert_eq!(t(None, "/apps/", None), None);
        assert_eq!(t(None, "/api/x", None), None);
    }
}
