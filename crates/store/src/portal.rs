//! The portal's people: admin users (password hashes made by the caller), their sessions and
//! the first-run bootstrap tokens, both kept as SHA-256 hashes of the tokens. Times are given
//! by the caller.

use crate::db::Backend;
use crate::db::on_pool;
use crate::error::Result;

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    pub expires_ms: i64,
}

/// Portal users and sessions of the store.
#[derive(Debug, Clone)]
pub struct SqlPortal {
    pub(crate) backend: Backend,
}

impl SqlPortal {
    /// How many users there are.
    pub async fn user_count(&self) -> Result<i64> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM portal_users")
                .fetch_one(pool)
                .await?
        }))
    }

    /// The users' names, sorted.
    pub async fn users(&self) -> Result<Vec<String>> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT name FROM portal_users ORDER BY name")
                .fetch_all(pool)
                .await?
        }))
    }

    /// User `name`'s password hash.
    pub async fn password_hash(&self, name: &str) -> Result<Option<String>> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT password_hash FROM portal_users WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Creates user `name` or sets its password; whether it was new.
    pub async fn put_user(&self, name: &str, password_hash: &str, now_ms: i64) -> Result<bool> {
        let existed = self.password_hash(name).await?.is_some();
        on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO portal_users (name, password_hash, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET password_hash = $2",
            )
            .bind(name)
            .bind(password_hash)
            .bind(now_ms)
            .execute(pool)
            .await?;
        });
        Ok(!existed)
    }

    /// Deletes user `name` and its sessions; whether it existed.
    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM portal_sessions WHERE user_name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM portal_users WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    /// The first user, made with bootstrap token hash `token_hash` (consumed with every other
    /// bootstrap token): false when the token is unknown or expired, or a user exists.
    pub async fn bootstrap(
        &self,
        token_hash: &str,
        name: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let made = on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin_with(self.backend.begin_writing()).await?;
            let valid: Option<i64> = sqlx::query_scalar(
                "SELECT expires_at FROM portal_bootstrap WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portal_users")
                .fetch_one(&mut *tx)
                .await?;
            if valid.is_none() || users > 0 {
                tx.rollback().await?;
                false
            } else {
                sqlx::query("INSERT INTO portal_users (name, password_hash, created_at) VALUES ($1, $2, $3)")
                    .bind(name)
                    .bind(password_hash)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM portal_bootstrap")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                true
            }
        });
        Ok(made)
    }

    /// Keeps a bootstrap token (its hash) until `expires_ms`.
    pub async fn add_bootstrap(&self, token_hash: &str, expires_ms: i64) -> Result<()> {
        on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO portal_bootstrap (token_hash, expires_at) VALUES ($1, $2)
                 ON CONFLICT (token_hash) DO NOTHING",
            )
            .bind(token_hash)
            .bind(expires_ms)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Opens a session for `user`.
    pub async fn open_session(
        &self,
        token_hash: &str,
        user: &str,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO portal_sessions (token_hash, user_name, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash)
            .bind(user)
            .bind(csrf)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The live session with token hash `token_hash`.
    pub async fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<Session>> {
        let row: Option<(String, String, i64)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT user_name, csrf, expires_at FROM portal_sessions WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(user, csrf, expires_ms)| Session {
            user,
            csrf,
            expires_ms,
        }))
    }

    /// Ends a session, and every expired one.
    pub async fn close_session(&self, token_hash: &str, now_ms: i64) -> Result<()> {
        on_pool!(&self.backend, |pool| {
            sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1 OR expires_at <= $2")
                .bind(token_hash)
                .bind(now_ms)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
