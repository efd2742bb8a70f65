//! Signing in to the portal: admin users with Argon2id password hashes, the first one made
//! with a one-time bootstrap token, sessions in an `HttpOnly; Secure; SameSite=Strict` cookie
//! (kept in the store as a hash, so every management process knows them) whose changes must
//! carry the session's CSRF token. A session opens the same REST API the admin token does.

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use serde_json::{Value, json};
use stratus_store::{Session, SqlPortal};

use crate::api::{Api, ApiError, ApiRequest, empty, json_response};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "stratus_session";
/// The header a session's changes carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
const SESSION_MS: i64 = 12 * 3600 * 1000;
/// How long a bootstrap token is good for.
pub const BOOTSTRAP_MS: i64 = 24 * 3600 * 1000;

/// What every portal page is served with: only its own scripts, styles and API.
const PAGE_POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The portal's pages and assets (public: they hold no data), `/` and `/portal` sent to
/// `/portal/`; None for any other path.
pub fn assets(method: &Method, path: &str) -> Option<Response<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if path == "/" || path == "/portal" {
        let mut r = empty(StatusCode::FOUND);
        r.headers_mut()
            .insert(header::LOCATION, http::HeaderValue::from_static("/portal/"));
        return Some(r);
    }
    let rest = path.strip_prefix("/portal/")?;
    let Some((content, kind)) = stratus_portal::file(rest) else {
        return Some(json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": {"code": "NotFound", "message": format!("no portal file {rest}")}}),
        ));
    };
    let mut r = Response::new(Bytes::from_static(content));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, http::HeaderValue::from_static(kind));
    // Assets are named by their content; the page is looked at again each time.
    let cache = if rest.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, http::HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(PAGE_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        http::HeaderValue::from_static("no-referrer"),
    );
    Some(r)
}

/// Whether `path` is one of the sign-in routes (open without a session).
pub fn is_sign_in_route(path: &str) -> bool {
    matches!(
        path,
        "/api/portal/login"
            | "/api/portal/bootstrap"
            | "/api/portal/logout"
            | "/api/portal/session"
    )
}

fn random_token() -> Result<String, ApiError> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Store(stratus_store::Error::Random(e.to_string())))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn hash_token(token: &str) -> String {
    stratus_store::apps::sha256_hex(token.as_bytes())
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An Argon2id hash of `password` (PHC string), made off the async threads.
async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        use argon2::PasswordHasher as _;
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
        let salt =
            argon2::password_hash::SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::BadRequest(e.to_string()))?
    .map_err(ApiError::BadRequest)
}

/// A hash to check against when the user does not exist (the answer takes as long).
const NO_USER: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3RyYXR1cy1uby11c2Vy$J1nBrD0pNLn1fQ5oKxGSo7Cbq1QAQp6Yg3Hq2Q4g2cI";

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        use argon2::PasswordVerifier as _;
        argon2::password_hash::PasswordHash::new(&hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// The session token a request's cookie carries.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == SESSION_COOKIE && !v.is_empty()).then_some(v)
        })
}

/// The live session a request's cookie names, if any.
pub async fn session(
    portal: &SqlPortal,
    headers: &HeaderMap,
    now_ms: i64,
) -> Result<Option<Session>, ApiError> {
    match cookie_token(headers) {
        Some(token) => Ok(portal.session(&hash_token(token), now_ms).await?),
        None => Ok(None),
    }
}

/// Checks that a request made with `session` may do `method`: changes carry the session's
/// CSRF token, and come from the same origin when the browser says where they come from.
pub fn check_change(
    session: &Session,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let presented = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !presented.is_some_and(|p| same(p.as_bytes(), session.csrf.as_bytes())) {
        return Err(ApiError::Forbidden(
            "CsrfTokenMissing",
            format!("a change made with a portal session needs its CSRF token in {CSRF_HEADER}"),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let from = origin.split_once("://").map_or(origin, |(_, a)| a);
        if !from.eq_ignore_ascii_case(host) {
            return Err(ApiError::Forbidden(
                "CrossOrigin",
                format!("a change from {origin} is not accepted here"),
            ));
        }
    }
    Ok(())
}

fn valid_user(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "a user name is 1 to 64 letters, digits and . _ - @".into(),
        ))
    }
}

fn valid_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 12 {
        return Err(ApiError::BadRequest(
            "a password has at least 12 characters".into(),
        ));
    }
    Ok(())
}

fn fields(body: &[u8], names: &[&str]) -> Result<Vec<String>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("expected a JSON object: {e}")))?;
    names
        .iter()
        .map(|n| {
            v[*n]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::BadRequest(format!("\"{n}\" is required")))
        })
        .collect()
}

/// A new session for `user`: the response carrying its cookie and CSRF token.
async fn open(
    portal: &SqlPortal,
    user: &str,
    status: StatusCode,
    now_ms: i64,
) -> Result<Response<Bytes>, ApiError> {
    let token = random_token()?;
    let csrf = random_token()?;
    portal
        .open_session(
            &hash_token(&token),
            user,
            &csrf,
            now_ms,
            now_ms + SESSION_MS,
        )
        .await?;
    let mut r = json_response(status, &json!({"user": user, "csrf": csrf}));
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        SESSION_MS / 1000
    );
    if let Ok(v) = http::HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// The sign-in routes: `POST /api/portal/bootstrap|login|logout`, `GET /api/portal/session`.
pub async fn sign_in(
    portal: &SqlPortal,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<Response<Bytes>, ApiError> {
    match (method, path) {
        (&Method::POST, "/api/portal/bootstrap") => {
            let f = fields(body, &["token", "user", "password"])?;
            valid_user(&f[1])?;
            valid_password(&f[2])?;
            let hash = hash_password(f[2].clone()).await?;
            if !portal
                .bootstrap(&hash_token(&f[0]), &f[1], &hash, now_ms)
                .await?
            {
                return Err(ApiError::Forbidden(
                    "BootstrapRefused",
                    "the bootstrap token is unknown, expired or used, or a user exists already"
                        .into(),
                ));
            }
            tracing::info!(user = %f[1], "the portal's first user was made");
            open(portal, &f[1], StatusCode::CREATED, now_ms).await
        }
        (&Method::POST, "/api/portal/login") => {
            let f = fields(body, &["user", "password"])?;
            let hash = portal.password_hash(&f[0]).await?;
            let known = hash.is_some();
            let ok = verify_password(f[1].clone(), hash.unwrap_or_else(|| NO_USER.into())).await;
            if !(ok && known) {
                tracing::warn!(user = %f[0], "portal sign-in refused");
                return Err(ApiError::Unauthorized);
            }
            open(portal, &f[0], StatusCode::OK, now_ms).await
        }
        (&Method::POST, "/api/portal/logout") => {
            let s = session(portal, headers, now_ms)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            check_change(&s, method, headers)?;
            if let Some(token) = cookie_token(headers) {
                portal.close_session(&hash_token(token), now_ms).await?;
            }
            let mut r = empty(StatusCode::NO_CONTENT);
            let gone =
                format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
            if let Ok(v) = http::HeaderValue::from_str(&gone) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(r)
        }
        (&Method::GET, "/api/portal/session") => {
            let s = session(portal, headers, now_ms)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"user": s.user, "csrf": s.csrf, "expires": s.expires_ms}),
            ))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// A new bootstrap token when there is no user yet (kept as a hash for `BOOTSTRAP_MS`).
pub async fn bootstrap_token(portal: &SqlPortal, now_ms: i64) -> Result<Option<String>, ApiError> {
    if portal.user_count().await? > 0 {
        return Ok(None);
    }
    let token = random_token()?;
    portal
        .add_bootstrap(&hash_token(&token), now_ms + BOOTSTRAP_MS)
        .await?;
    Ok(Some(token))
}

impl Api {
    /// `/api/portal/users[/{name}]`: list, create or set a password, delete.
    pub(crate) async fn portal_users(
        &self,
        req: &ApiRequest<'_>,
        rest: &[&str],
    ) -> Result<Response<Bytes>, ApiError> {
        match (req.method, rest) {
            (&Method::GET, []) => Ok(json_response(
                StatusCode::OK,
                &json!(self.portal.users().await?),
            )),
            (&Method::PUT, [name]) => {
                valid_user(name)?;
                let f = fields(req.body, &["password"])?;
                valid_password(&f[0])?;
                let hash = hash_password(f[0].clone()).await?;
                let made = self.portal.put_user(name, &hash, req.now_ms).await?;
                Ok(empty(if made {
                    StatusCode::CREATED
                } else {
                    StatusCode::NO_CONTENT
                }))
            }
            (&Method::DELETE, [name]) => {
                if !self.portal.delete_user(name).await? {
                    return Err(ApiError::NotFound(format!("no portal user {name}")));
                }
                Ok(empty(StatusCode::NO_CONTENT))
            }
            (_, [] | [_]) => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound(format!(
                "no such resource: {}",
                req.path
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            http::HeaderValue::from_static("a=1; stratus_session=tok; b=2"),
        );
        assert_eq!(cookie_token(&h), Some("tok"));
        h.insert(
            header::COOKIE,
            http::HeaderValue::from_static("stratus_session="),
        );
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn changes_need_the_csrf_token_and_the_same_origin() {
        let s = Session {
            user: "ann".into(),
            csrf: "c1".into(),
            expires_ms: 0,
        };
        let mut h = HeaderMap::new();
        h.insert(header::HOST, http::HeaderValue::from_static("mgmt:7080"));
        assert!(check_change(&s, &Method::GET, &h).is_ok());
        assert!(matches!(
            check_change(&s, &Method::POST, &h),
            Err(ApiError::Forbidden("CsrfTokenMissing", _))
        ));
        h.insert(CSRF_HEADER, http::HeaderValue::from_static("c2"));
        assert!(check_change(&s, &Method::DELETE, &h).is_err());
        h.insert(CSRF_HEADER, http::HeaderValue::from_static("c1"));
        assert!(check_change(&s, &Method::PUT, &h).is_ok());
        h.insert(
            header::ORIGIN,
            http::HeaderValue::from_static("https://evil.test"),
        );
        assert!(matches!(
            check_change(&s, &Method::PUT, &h),
            Err(ApiError::Forbidden("CrossOrigin", _))
        ));
        h.insert(
            header::ORIGIN,
            http::HeaderValue::from_static("http://mgmt:7080"),
        );
        assert!(check_change(&s, &Method::PUT, &h).is_ok());
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), h.clone()).await);
        assert!(!verify_password("wrong horse battery".into(), h).await);
        assert!(!verify_password("anything at all".into(), NO_USER.into()).await);
    }
}
