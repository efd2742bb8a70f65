//! A small client of the Azure Storage Queue REST API, Shared Key signed or with a bearer
//! token: list queues, put, peek and clear messages (the command line), receive, update and
//! delete them (a worker's hosts, through the management role).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::connection::ConnectionString;
use crate::shared_key::{Layout, Signed, sign, string_to_sign};
use crate::xml;

/// The service version the client speaks.
const VERSION: &str = "2021-12-02";

/// Why a queue request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the queue endpoint {0} is not a plain http:// URL with a host")]
    Endpoint(String),
    #[error("cannot reach the queue service at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("the queue service did not answer: {0}")]
    Http(String),
    #[error("the connection string has no AccountKey")]
    NoKey,
    #[error("{status}: {code} {message}")]
    Service {
        status: StatusCode,
        code: String,
        message: String,
    },
}

/// A message as peeked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    pub id: String,
    pub text: String,
    pub dequeue_count: u64,
    pub insertion_time: String,
}

/// A received message; times in milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub id: String,
    pub pop_receipt: String,
    pub text: String,
    pub insertion_ms: i64,
    pub expiration_ms: i64,
    pub next_visible_ms: i64,
    pub dequeue_count: i64,
}

/// How requests prove who sends them.
#[derive(Clone)]
enum Auth {
    /// The account's base64 key signs each request.
    SharedKey(String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::SharedKey(_) => "SharedKey(..)",
            Auth::Bearer(_) => "Bearer(..)",
        })
    }
}

/// A client of one storage account's queue service.
#[derive(Debug, Clone)]
pub struct QueueClient {
    account: String,
    auth: Auth,
    /// `host:port`.
    authority: String,
    /// The path prefix of the account (`/devstoreaccount1` path-style, empty otherwise).
    prefix: String,
    /// Connections kept for the next requests (shared by the client's clones).
    idle: std::sync::Arc<parking_lot::Mutex<Vec<SendRequest<Full<Bytes>>>>>,
}

/// Longest a queue request may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Most connections a client keeps open while idle.
const MAX_IDLE: usize = 16;

/// The text between `<tag>` and `</tag>` in each occurrence, in order.
fn tag_values<'a>(doc: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

impl QueueClient {
    /// A client for the account and queue endpoint of a connection string.
    pub fn new(conn: &ConnectionString) -> Result<QueueClient, ClientError> {
        let endpoint = conn.queue_endpoint.trim_end_matches('/');
        let rest = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Endpoint(endpoint.to_string()))?;
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, format!("/{p}")),
            None => (rest, String::new()),
        };
        if authority.is_empty() {
            return Err(ClientError::Endpoint(endpoint.to_string()));
        }
        Ok(QueueClient {
            account: conn.account.clone(),
            auth: Auth::SharedKey(conn.key.clone().ok_or(ClientError::NoKey)?),
            authority: authority.to_string(),
            prefix: path,
            idle: Default::default(),
        })
    }

    /// A client of `account` at `endpoint` (`http://host:port/prefix/account`, path-style)
    /// that presents `token` as a bearer token.
    pub fn with_bearer(
        endpoint: &str,
        account: &str,
        token: &str,
    ) -> Result<QueueClient, ClientError> {
        let conn = ConnectionString {
            account: account.to_string(),
            key: Some(String::new()),
            queue_endpoint: endpoint.to_string(),
            development: false,
        };
        let mut c = QueueClient::new(&conn)?;
        c.auth = Auth::Bearer(token.to_string());
        Ok(c)
    }

    /// A new connection to the service.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|source| ClientError::Connect {
                endpoint: format!("http://{}{}", self.authority, self.prefix),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: Option<String>,
    ) -> Result<(StatusCode, String), ClientError> {
        self.exchange(method, path, query, body)
            .await
            .map(|(status, _, text)| (status, text))
    }

    /// One request and its answer, within [`REQUEST_TIMEOUT`].
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: Option<String>,
    ) -> Result<(StatusCode, HeaderMap, String), ClientError> {
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.exchange_now(method, path, query, body),
        )
        .await
        .map_err(|_| {
            ClientError::Http(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))
        })?
    }

    async fn exchange_now(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: Option<String>,
    ) -> Result<(StatusCode, HeaderMap, String), ClientError> {
        let full_path = format!("{}{path}", self.prefix);
        let uri = match query {
            Some(q) => format!("http://{}{full_path}?{q}", self.authority),
            None => format!("http://{}{full_path}", self.authority),
        };
        let body = body.unwrap_or_default();
        let mut headers = HeaderMap::new();
        let now = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let value =
            |s: &str| HeaderValue::from_str(s).map_err(|e| ClientError::Http(e.to_string()));
        headers.insert("x-ms-date", value(&now)?);
        headers.insert("x-ms-version", HeaderValue::from_static(VERSION));
        headers.insert(
            http::header::CONTENT_LENGTH,
            value(&body.len().to_string())?,
        );
        if !body.is_empty() {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
        }
        let signed = Signed {
            method: method.as_str(),
            path: &full_path,
            query,
            headers: &headers,
        };
        let authorization = match &self.auth {
            Auth::SharedKey(key) => {
                // Path-style: the account appears twice in the canonical resource, as the SDKs
                // sign.
                let text = string_to_sign(&self.account, &signed, Layout::Standard);
                let signature = sign(key, &text).map_err(|e| ClientError::Http(e.to_string()))?;
                format!("SharedKey {}:{signature}", self.account)
            }
            Auth::Bearer(token) => format!("Bearer {token}"),
        };
        headers.insert(http::header::AUTHORIZATION, value(&authorization)?);
        headers.insert(http::header::HOST, value(&self.authority)?);
        let mut request = Request::builder()
            .method(method)
            .uri(&uri)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        *request.headers_mut() = headers;

        // A kept connection first; a new one when there is none, or when the kept one turns
        // out closed before the request went (it comes back unsent).
        let mut request = request;
        let mut kept = self.idle.lock().pop();
        let (response, sender) = loop {
            let (mut sender, fresh) = match kept.take() {
                Some(s) => (s, false),
                None => (self.connect().await?, true),
            };
            match sender.try_send_request(request).await {
                Ok(r) => break (r, sender),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => request = unsent,
                    _ => return Err(ClientError::Http(e.into_error().to_string())),
                },
            }
        };
        let status = response.status();
        let response_headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        {
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE && !sender.is_closed() {
                idle.push(sender);
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            let code = tag_values(&text, "Code").first().copied().unwrap_or("");
            let message = tag_values(&text, "Message").first().copied().unwrap_or("");
            return Err(ClientError::Service {
                status,
                code: code.to_string(),
                message: xml::unescape(message).unwrap_or_else(|_| message.to_string()),
            });
        }
        Ok((status, response_headers, text))
    }

    /// The names of the account's queues.
    pub async fn list(&self) -> Result<Vec<String>, ClientError> {
        let (_, doc) = self.send(Method::GET, "/", Some("comp=list"), None).await?;
        Ok(tag_values(&doc, "Name")
            .into_iter()
            .map(|n| xml::unescape(n).unwrap_or_else(|_| n.to_string()))
            .collect())
    }

    /// Creates `queue` if it does not exist.
    pub async fn create(&self, queue: &str) -> Result<(), ClientError> {
        self.send(Method::PUT, &format!("/{queue}"), None, None)
            .await
            .map(|_| ())
    }

    /// Puts a message (`text` as it is stored: encode it first if the reader expects base64).
    pub async fn put(&self, queue: &str, text: &str) -> Result<(), ClientError> {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            xml::escape(text)
        );
        self.send(
            Method::POST,
            &format!("/{queue}/messages"),
            None,
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// `GET /{queue}/messages?{query}`: each `<QueueMessage>`'s fields, by tag (text
    /// unescaped).
    async fn messages(
        &self,
        queue: &str,
        query: &str,
    ) -> Result<Vec<BTreeMap<String, String>>, ClientError> {
        let (_, doc) = self
            .send(
                Method::GET,
                &format!("/{queue}/messages"),
                Some(query),
                None,
            )
            .await?;
        Ok(tag_values(&doc, "QueueMessage")
            .into_iter()
            .map(|m| {
                [
                    "MessageId",
                    "PopReceipt",
                    "MessageText",
                    "InsertionTime",
                    "ExpirationTime",
                    "TimeNextVisible",
                    "DequeueCount",
                ]
                .iter()
                .map(|t| {
                    let raw = tag_values(m, t).first().copied().unwrap_or("");
                    let text = xml::unescape(raw).unwrap_or_else(|_| raw.to_string());
                    (t.to_string(), text)
                })
                .collect()
            })
            .collect())
    }

    /// Up to `count` (1 to 32) messages from the front of `queue`, left in place.
    pub async fn peek(&self, queue: &str, count: usize) -> Result<Vec<Peeked>, ClientError> {
        let query = format!("peekonly=true&numofmessages={}", count.clamp(1, 32));
        Ok(self
            .messages(queue, &query)
            .await?
            .into_iter()
            .map(|mut f| Peeked {
                id: f.remove("MessageId").unwrap_or_default(),
                text: f.remove("MessageText").unwrap_or_default(),
                dequeue_count: f["DequeueCount"].parse().unwrap_or(0),
                insertion_time: f.remove("InsertionTime").unwrap_or_default(),
            })
            .collect())
    }

    /// Receives up to `count` (1 to 32) messages, invisible for `visibility_s` seconds.
    pub async fn receive(
        &self,
        queue: &str,
        count: usize,
        visibility_s: i64,
    ) -> Result<Vec<Received>, ClientError> {
        let query = format!(
            "numofmessages={}&visibilitytimeout={}",
            count.clamp(1, 32),
            visibility_s.max(1)
        );
        let time = |t: &str| {
            chrono::DateTime::parse_from_rfc2822(t)
                .map(|d| d.timestamp_millis())
                .unwrap_or(0)
        };
        Ok(self
            .messages(queue, &query)
            .await?
            .into_iter()
            .map(|mut f| Received {
                insertion_ms: time(&f["InsertionTime"]),
                expiration_ms: time(&f["ExpirationTime"]),
                next_visible_ms: time(&f["TimeNextVisible"]),
                dequeue_count: f["DequeueCount"].parse().unwrap_or(0),
                id: f.remove("MessageId").unwrap_or_default(),
                pop_receipt: f.remove("PopReceipt").unwrap_or_default(),
                text: f.remove("MessageText").unwrap_or_default(),
            })
            .collect())
    }

    /// Makes a received message visible again after `visibility_s` seconds; its new pop
    /// receipt.
    pub async fn update(
        &self,
        queue: &str,
        id: &str,
        pop_receipt: &str,
        visibility_s: i64,
    ) -> Result<String, ClientError> {
        let query = format!(
            "popreceipt={}&visibilitytimeout={}",
            stratus_model::text::url_encode(pop_receipt),
            visibility_s.max(0)
        );
        let (_, headers, _) = self
            .exchange(
                Method::PUT,
                &format!("/{queue}/messages/{id}"),
                Some(&query),
                None,
            )
            .await?;
        headers
            .get("x-ms-popreceipt")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| ClientError::Http("the update answer has no x-ms-popreceipt".into()))
    }

    /// Deletes a received message.
    pub async fn delete(
        &self,
        queue: &str,
        id: &str,
        pop_receipt: &str,
    ) -> Result<(), ClientError> {
        let query = format!(
            "popreceipt={}",
            stratus_model::text::url_encode(pop_receipt)
        );
        self.send(
            Method::DELETE,
            &format!("/{queue}/messages/{id}"),
            Some(&query),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Deletes every message of `queue`.
    pub async fn clear(&self, queue: &str) -> Result<(), ClientError> {
        self.send(Method::DELETE, &format!("/{queue}/messages"), None, None)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_tags() {
        let conn = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        let c = QueueClient::new(&conn).unwrap();
        assert_eq!(c.authority, "127.0.0.1:10001");
        assert_eq!(c.prefix, "/devstoreaccount1");
        let https = ConnectionString::parse(
            "AccountName=a;AccountKey=a2V5;QueueEndpoint=https://a.queue.core.windows.net",
        )
        .unwrap();
        assert!(matches!(
            QueueClient::new(&https),
            Err(ClientError::Endpoint(_))
        ));
        let doc = "<A><Name>x</Name><Name>y&amp;</Name></A>";
        assert_eq!(tag_values(doc, "Name"), vec!["x", "y&amp;"]);
    }
}
