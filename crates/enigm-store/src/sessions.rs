//! Bearer sessions. Only the SHA-256 digest of a token is stored, so a copy of the database
//! yields no usable token.

use enigm_types::{AdminId, SessionId, Timestamp};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreResult, WriteTx, parse_id};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub admin_id: AdminId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

pub struct NewSession {
    pub id: SessionId,
    pub admin_id: AdminId,
    pub token_digest_hex: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

const SESSION_COLUMNS: &str = "id, admin_id, created_at, last_seen_at, expires_at, closed_at";

impl Store {
    pub async fn insert_session(&self, session: &NewSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, admin_id, token_digest, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.id.to_string())
        .bind(session.admin_id.to_string())
        .bind(session.token_digest_hex.clone())
        .bind(session.created_at.unix_millis())
        .bind(session.created_at.unix_millis())
        .bind(session.expires_at.unix_millis())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn session_by_token_digest(
        &self,
        digest_hex: &str,
    ) -> StoreResult<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_digest = $1");
        let row = sqlx::query(&sql)
            .bind(digest_hex.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    pub async fn session_by_id(&self, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Open sessions (not closed, absolute lifetime not over), of one administrator or of all.
    pub async fn list_open_sessions(
        &self,
        admin: Option<AdminId>,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>> {
        let rows = match admin {
            Some(admin) => {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE closed_at IS NULL AND expires_at > $1 AND admin_id = $2 \
                     ORDER BY created_at"
                );
                sqlx::query(&sql)
                    .bind(now.unix_millis())
                    .bind(admin.to_string())
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE closed_at IS NULL AND expires_at > $1 ORDER BY created_at"
                );
                sqlx::query(&sql)
                    .bind(now.unix_millis())
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(session_from_row).collect()
    }
}

impl WriteTx<'_> {
    /// Moves `last_seen_at` forward for the idle timeout.
    pub async fn touch_session(&mut self, id: SessionId, now: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $3")
            .bind(now.unix_millis())
            .bind(id.to_string())
            .bind(now.unix_millis())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Closes one session; false when it was already closed or does not exist.
    pub async fn close_session(&mut self, id: SessionId, now: Timestamp) -> StoreResult<bool> {
        let result =
            sqlx::query("UPDATE sessions SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL")
                .bind(now.unix_millis())
                .bind(id.to_string())
                .execute(self.conn())
                .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Closes every open session of an administrator (disabling an account, password change).
    pub async fn close_sessions_of(&mut self, admin: AdminId, now: Timestamp) -> StoreResult<u64> {
        let result = sqlx::query(
            "UPDATE sessions SET closed_at = $1 WHERE admin_id = $2 AND closed_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(admin.to_string())
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected())
    }
}

fn session_from_row(row: &AnyRow) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: parse_id(&row.try_get::<String, _>("id")?, "session id")?,
        admin_id: parse_id(&row.try_get::<String, _>("admin_id")?, "session admin id")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        last_seen_at: Timestamp::from_unix_millis(row.try_get("last_seen_at")?),
        expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
        closed_at: row
            .try_get::<Option<i64>, _>("closed_at")?
            .map(Timestamp::from_unix_millis),
    })
}
