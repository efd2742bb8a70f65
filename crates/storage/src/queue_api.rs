//! The Azure Storage Queue REST API over the built-in queue service: path-style accounts
//! (`/<account>/<queue>/messages/...`), Shared Key authentication, the XML documents and error
//! codes the official SDKs expect.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use stratus_store::queues::{CreateQueue, DeleteMessage, MAX_BATCH, Message};
use stratus_store::{Error as StoreError, SqlQueues};

use crate::shared_key::{self, Signed};
use crate::xml;

/// Default visibility timeout of received messages (30 s).
const DEFAULT_VISIBILITY_S: i64 = 30;
/// Longest visibility timeout (7 days).
const MAX_VISIBILITY_S: i64 = 7 * 24 * 3600;

/// The queue service of one or more storage accounts.
#[derive(Debug, Clone)]
pub struct QueueService {
    pub queues: SqlQueues,
    /// (account name, base64 key).
    pub accounts: Vec<(String, String)>,
    /// Who may use which account with `Authorization: Bearer <token>` (none: Shared Key only).
    pub bearer: Option<std::sync::Arc<dyn BearerAuth>>,
}

/// Decides whether a bearer token opens an account (an error: it could not tell).
pub trait BearerAuth: Send + Sync + std::fmt::Debug {
    fn admits<'a>(
        &'a self,
        token: &'a str,
        account: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, String>> + Send + 'a>>;
}

/// A failure the service reports with an error code.
struct Fail {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn fail(status: StatusCode, code: &'static str, message: impl Into<String>) -> Fail {
    Fail {
        status,
        code,
        message: message.into(),
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        match e {
            StoreError::QueueNotFound { .. } => fail(
                StatusCode::NOT_FOUND,
                "QueueNotFound",
                "The specified queue does not exist.",
            ),
            StoreError::MessageNotFound { .. } => fail(
                StatusCode::NOT_FOUND,
                "MessageNotFound",
                "The specified message does not exist.",
            ),
            StoreError::PopReceiptMismatch { .. } => fail(
                StatusCode::BAD_REQUEST,
                "PopReceiptMismatch",
                "The specified pop receipt did not match the pop receipt for a dequeued message.",
            ),
            StoreError::MessageTooLarge { size, limit } => fail(
                StatusCode::BAD_REQUEST,
                "RequestBodyTooLarge",
                format!("The message is {size} bytes; the limit is {limit}."),
            ),
            other => {
                tracing_error(&other);
                fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "The server encountered an internal error.",
                )
            }
        }
    }
}

fn tracing_error(e: &StoreError) {
    tracing::error!("queue service: {e}");
}

/// Query parameters, names lower-cased, values decoded.
fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                shared_key::percent_decode(k).to_ascii_lowercase(),
                shared_key::percent_decode(v),
            )
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn int_param(
    params: &[(String, String)],
    name: &'static str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, Fail> {
    match param(params, name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(fail(
                StatusCode::BAD_REQUEST,
                "OutOfRangeQueryParameterValue",
                format!("The value of query parameter {name} ({v}) is out of range {min}..{max}."),
            )),
        },
    }
}

/// Azure's queue name rule: 3-63 lower-case letters, digits and single hyphens, starting and
/// ending with a letter or digit.
fn valid_queue_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn metadata(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut md: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-ms-meta-")?;
            Some((name.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect();
    md.sort();
    md
}

fn xml_response(status: StatusCode, body: String) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

fn empty(status: StatusCode) -> Response<Bytes> {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = status;
    r
}

/// A request as the service reads it.
#[derive(Debug)]
pub struct QueueRequest<'a> {
    pub method: &'a Method,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// Milliseconds since the epoch.
    pub now_ms: i64,
}

impl QueueService {
    /// Answers one request.
    pub async fn handle(&self, req: &QueueRequest<'_>) -> Response<Bytes> {
        let mut resp = match self.route(req).await {
            Ok(r) => r,
            Err(f) => {
                let mut r = xml_response(f.status, xml::error(f.code, &f.message));
                if let Ok(v) = HeaderValue::from_str(f.code) {
                    r.headers_mut().insert("x-ms-error-code", v);
                }
                r
            }
        };
        let h = resp.headers_mut();
        if let Some(v) = req.headers.get("x-ms-version") {
            h.insert("x-ms-version", v.clone());
        }
        if let Some(v) = req.headers.get("x-ms-client-request-id") {
            h.insert("x-ms-client-request-id", v.clone());
        }
        if let Ok(v) = HeaderValue::from_str(&uuid_like(req.now_ms)) {
            h.insert("x-ms-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&xml::rfc1123(req.now_ms)) {
            h.insert(http::header::DATE, v);
        }
        resp
    }

    async fn route(&self, req: &QueueRequest<'_>) -> Result<Response<Bytes>, Fail> {
        let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let account = segments.first().copied().unwrap_or("");
        let bearer = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (bearer, &self.bearer) {
            (Some(token), Some(auth)) => {
                let admitted = auth.admits(token.trim(), account).await.map_err(|e| {
                    tracing::warn!("queue service: cannot check a bearer token: {e}");
                    fail(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServerBusy",
                        "The server cannot check the token now; try again.",
                    )
                })?;
                if !admitted {
                    return Err(fail(
                        StatusCode::FORBIDDEN,
                        "AuthorizationPermissionMismatch",
                        format!("This token is not authorized for account \"{account}\"."),
                    ));
                }
            }
            _ => self.verify_shared_key(req, account)?,
        }
        self.dispatch(req, account, &segments).await
    }

    /// Checks the request's Shared Key signature with `account`'s key.
    fn verify_shared_key(&self, req: &QueueRequest<'_>, account: &str) -> Result<(), Fail> {
        let key = self
            .accounts
            .iter()
            .find(|(a, _)| a == account)
            .map(|(_, k)| k.as_str())
            .ok_or_else(|| {
                fail(
                    StatusCode::FORBIDDEN,
                    "AuthenticationFailed",
                    format!("No storage account \"{account}\" here."),
                )
            })?;
        let signed = Signed {
            method: req.method.as_str(),
            path: req.path,
            query: req.query,
            headers: req.headers,
        };
        shared_key::verify(account, key, &signed).map_err(|e| {
            fail(
                StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                format!("Server failed to authenticate the request: {e}."),
            )
        })
    }

    async fn dispatch(
        &self,
        req: &QueueRequest<'_>,
        account: &str,
        segments: &[&str],
    ) -> Result<Response<Bytes>, Fail> {
        let params = query_params(req.query);
        let comp = param(&params, "comp").map(str::to_ascii_lowercase);
        let rest: Vec<&str> = segments[1..]
            .iter()
            .copied()
            .filter(|s| !s.is_empty())
            .collect();
        let m = req.method;
        match (rest.as_slice(), comp.as_deref()) {
            ([], Some("list")) if m == Method::GET => self.list(req, account, &params).await,
            ([q], None) => {
                let q = shared_key::percent_decode(q);
                if !valid_queue_name(&q) {
                    return Err(fail(
                        StatusCode::BAD_REQUEST,
                        "InvalidResourceName",
                        "The specified resource name contains invalid characters.",
                    ));
                }
                match *m {
                    Method::PUT => {
                        match self
                            .queues
                            .create_queue(account, &q, &metadata(req.headers))
                            .await?
                        {
                            CreateQueue::Created => Ok(empty(StatusCode::CREATED)),
                            CreateQueue::Exists {
                                same_metadata: true,
                            } => Ok(empty(StatusCode::NO_CONTENT)),
                            CreateQueue::Exists {
                                same_metadata: false,
                            } => Err(fail(
                                StatusCode::CONFLICT,
                                "QueueAlreadyExists",
                                "The specified queue already exists.",
                            )),
                        }
                    }
                    Method::DELETE => {
                        if self.queues.delete_queue(account, &q).await? {
                            Ok(empty(StatusCode::NO_CONTENT))
                        } else {
                            Err(StoreError::QueueNotFound {
                                account: account.to_string(),
                                queue: q,
                            }
                            .into())
                        }
                    }
                    _ => Err(unsupported()),
                }
            }
            ([q], Some("metadata")) => {
                let q = shared_key::percent_decode(q);
                match *m {
                    Method::GET | Method::HEAD => {
                        let props = self
                            .queues
                            .get_metadata(account, &q, req.now_ms)
                            .await?
                            .ok_or_else(|| {
                                Fail::from(StoreError::QueueNotFound {
                                    account: account.to_string(),
                                    queue: q.clone(),
                                })
                            })?;
                        let mut r = empty(StatusCode::OK);
                        let h = r.headers_mut();
                        h.insert(
                            "x-ms-approximate-messages-count",
                            HeaderValue::from(props.approximate_message_count),
                        );
                        for (k, v) in &props.metadata {
                            if let (Ok(n), Ok(v)) = (
                                http::HeaderName::from_bytes(format!("x-ms-meta-{k}").as_bytes()),
                                HeaderValue::from_str(v),
                            ) {
                                h.insert(n, v);
                            }
                        }
                        Ok(r)
                    }
                    Method::PUT => {
                        self.queues
                            .set_metadata(account, &q, &metadata(req.headers))
                            .await?;
                        Ok(empty(StatusCode::NO_CONTENT))
                    }
                    _ => Err(unsupported()),
                }
            }
            ([q, messages], None) if messages.eq_ignore_ascii_case("messages") => {
                let q = shared_key::percent_decode(q);
                match *m {
                    Method::POST => self.put(req, account, &q, &params).await,
                    Method::GET => self.get(req, account, &q, &params).await,
                    Method::DELETE => {
                        self.queues.clear(account, &q).await?;
                        Ok(empty(StatusCode::NO_CONTENT))
                    }
                    _ => Err(unsupported()),
                }
            }
            ([q, messages, id], None) if messages.eq_ignore_ascii_case("messages") => {
                let q = shared_key::percent_decode(q);
                let id = shared_key::percent_decode(id);
                let receipt = param(&params, "popreceipt").ok_or_else(|| {
                    fail(
                        StatusCode::BAD_REQUEST,
                        "MissingRequiredQueryParameter",
                        "A query parameter that's mandatory for this request is not specified: popreceipt.",
                    )
                })?;
                match *m {
                    Method::DELETE => match self.queues.delete(account, &q, &id, receipt).await? {
                        DeleteMessage::Deleted => Ok(empty(StatusCode::NO_CONTENT)),
                        DeleteMessage::NotFound => {
                            Err(StoreError::MessageNotFound { queue: q, id }.into())
                        }
                        DeleteMessage::PopReceiptMismatch => {
                            Err(StoreError::PopReceiptMismatch { queue: q, id }.into())
                        }
                    },
                    Method::PUT => {
                        let vt = int_param(&params, "visibilitytimeout", 0, MAX_VISIBILITY_S)?
                            .ok_or_else(|| {
                                fail(
                                    StatusCode::BAD_REQUEST,
                                    "MissingRequiredQueryParameter",
                                    "A query parameter that's mandatory for this request is not specified: visibilitytimeout.",
                                )
                            })?;
                        let text = if req.body.is_empty() {
                            None
                        } else {
                            Some(body_text(req.body)?)
                        };
                        let updated = self
                            .queues
                            .update(
                                account,
                                &q,
                                &id,
                                receipt,
                                text.as_deref(),
                                vt * 1000,
                                req.now_ms,
                            )
                            .await?;
                        let mut r = empty(StatusCode::NO_CONTENT);
                        let h = r.headers_mut();
                        if let Ok(v) = HeaderValue::from_str(&updated.pop_receipt) {
                            h.insert("x-ms-popreceipt", v);
                        }
                        if let Ok(v) = HeaderValue::from_str(&xml::rfc1123(updated.next_visible_ms))
                        {
                            h.insert("x-ms-time-next-visible", v);
                        }
                        Ok(r)
                    }
                    _ => Err(unsupported()),
                }
            }
            _ => Err(unsupported()),
        }
    }

    async fn list(
        &self,
        req: &QueueRequest<'_>,
        account: &str,
        params: &[(String, String)],
    ) -> Result<Response<Bytes>, Fail> {
        let prefix = param(params, "prefix");
        let marker = param(params, "marker").filter(|m| !m.is_empty());
        let max = int_param(params, "maxresults", 1, 5000)?;
        let with_metadata = param(params, "include").is_some_and(|i| i.contains("metadata"));
        let (queues, next) = self
            .queues
            .list_queues(
                account,
                prefix.unwrap_or(""),
                marker,
                max.map_or(5000, |n| n as usize),
            )
            .await?;
        let listed: Vec<xml::ListedQueue<'_>> = queues
            .iter()
            .map(|q| xml::ListedQueue {
                name: &q.name,
                metadata: with_metadata.then_some(q.metadata.as_slice()),
            })
            .collect();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let endpoint = format!("http://{host}/{account}/");
        Ok(xml_response(
            StatusCode::OK,
            xml::queue_list(
                &endpoint,
                prefix,
                marker,
                max.map(|n| n as usize),
                &listed,
                next.as_deref(),
            ),
        ))
    }

    async fn put(
        &self,
        req: &QueueRequest<'_>,
        account: &str,
        queue: &str,
        params: &[(String, String)],
    ) -> Result<Response<Bytes>, Fail> {
        let vt = int_param(params, "visibilitytimeout", 0, MAX_VISIBILITY_S)?.unwrap_or(0);
        let ttl = int_param(params, "messagettl", -1, i64::MAX / 1000)?;
        if ttl == Some(0) {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "OutOfRangeQueryParameterValue",
                "The value of query parameter messagettl (0) is out of range.",
            ));
        }
        let text = body_text(req.body)?;
        let m = self
            .queues
            .put(
                account,
                queue,
                &text,
                vt * 1000,
                ttl.map(|t| if t < 0 { -1 } else { t * 1000 }),
                req.now_ms,
            )
            .await?;
        Ok(xml_response(
            StatusCode::CREATED,
            xml::messages_list(&[listed(&m, false)]),
        ))
    }

    async fn get(
        &self,
        req: &QueueRequest<'_>,
        account: &str,
        queue: &str,
        params: &[(String, String)],
    ) -> Result<Response<Bytes>, Fail> {
        let count = int_param(params, "numofmessages", 1, MAX_BATCH as i64)?.unwrap_or(1) as usize;
        let peek = param(params, "peekonly").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if peek {
            let msgs = self.queues.peek(account, queue, count, req.now_ms).await?;
            let listed: Vec<xml::ListedMessage<'_>> = msgs
                .iter()
                .map(|m| xml::ListedMessage {
                    id: &m.id,
                    insertion_time: xml::rfc1123(m.insertion_ms),
                    expiration_time: expiration(m.expiration_ms),
                    pop_receipt: None,
                    time_next_visible: None,
                    dequeue_count: Some(m.dequeue_count),
                    text: Some(&m.text),
                })
                .collect();
            return Ok(xml_response(StatusCode::OK, xml::messages_list(&listed)));
        }
        let vt = int_param(params, "visibilitytimeout", 1, MAX_VISIBILITY_S)?
            .unwrap_or(DEFAULT_VISIBILITY_S);
        let msgs = self
            .queues
            .get(account, queue, count, vt * 1000, req.now_ms)
            .await?;
        let listed: Vec<xml::ListedMessage<'_>> = msgs.iter().map(|m| listed(m, true)).collect();
        Ok(xml_response(StatusCode::OK, xml::messages_list(&listed)))
    }
}

/// A sent or received message as the service lists it (received ones with their content).
fn listed(m: &Message, received: bool) -> xml::ListedMessage<'_> {
    xml::ListedMessage {
        id: &m.id,
        insertion_time: xml::rfc1123(m.insertion_ms),
        expiration_time: expiration(m.expiration_ms),
        pop_receipt: Some(&m.pop_receipt),
        time_next_visible: Some(xml::rfc1123(m.next_visible_ms)),
        dequeue_count: received.then_some(m.dequeue_count),
        text: received.then_some(m.text.as_str()),
    }
}

/// Expiry as the service writes it; messages that never expire show the largest date.
fn expiration(ms: i64) -> String {
    if ms == stratus_store::queues::NEVER_EXPIRES {
        "Fri, 31 Dec 9999 23:59:59 GMT".to_string()
    } else {
        xml::rfc1123(ms)
    }
}

fn body_text(body: &[u8]) -> Result<String, Fail> {
    let text = std::str::from_utf8(body).map_err(|_| {
        fail(
            StatusCode::BAD_REQUEST,
            "InvalidXmlDocument",
            "The request body is not UTF-8.",
        )
    })?;
    xml::message_text(text).map_err(|e| fail(StatusCode::BAD_REQUEST, "InvalidXmlDocument", e))
}

fn unsupported() -> Fail {
    fail(
        StatusCode::BAD_REQUEST,
        "UnsupportedHttpVerb",
        "The resource doesn't support the specified HTTP verb or operation.",
    )
}

/// A request id (unique enough for correlating logs).
fn uuid_like(now_ms: i64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        now_ms as u64 & 0xffff_ffff,
        n
    )
}
