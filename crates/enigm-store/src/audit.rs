//! The append-only audit event table. Rows are only ever inserted (database triggers refuse
//! UPDATE and DELETE); each row keeps the canonical encoding of its event so that the
//! tamper-evident log can commit to exactly those bytes.

use enigm_types::{AdminId, AuditAction, AuditEvent, Outcome};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreResult, WriteTx};

/// One stored audit event in the columns an auditor filters on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub event: AuditEvent,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub after: Option<i64>,
    /// Only events before this sequence number (exclusive).
    pub before: Option<i64>,
    /// Only events at or after this time.
    pub since: Option<enigm_types::Timestamp>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
    pub limit: u32,
    pub actor: Option<AdminId>,
    pub action: Option<AuditAction>,
    pub outcome: Option<Outcome>,
}

impl Store {
    /// Appends events in one transaction: all are stored or none.
    pub async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for event in events {
            tx.append_audit(event).await?;
        }
        tx.commit().await
    }

    pub async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        // Conditions are added only for the filters given, numbering placeholders as we go,
        // so the same SQL works on both backends without typed NULL tricks.
        let mut sql = String::from("SELECT seq, canonical FROM audit_events WHERE seq > $1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(actor) = filter.actor {
            binds.push(enigm_types::Actor::Admin(actor).to_string());
            sql.push_str(&format!(" AND actor = ${}", binds.len() + 1));
        }
        if let Some(action) = filter.action {
            binds.push(action.as_str().to_owned());
            sql.push_str(&format!(" AND action = ${}", binds.len() + 1));
        }
        if let Some(outcome) = filter.outcome {
            binds.push(outcome.as_str().to_owned());
            sql.push_str(&format!(" AND outcome = ${}", binds.len() + 1));
        }
        // Numbers we format ourselves, never text from the request.
        if let Some(before) = filter.before {
            sql.push_str(&format!(" AND seq < {before}"));
        }
        if let Some(since) = filter.since {
            sql.push_str(&format!(" AND time >= {}", since.unix_millis()));
        }
        sql.push_str(&format!(
            " ORDER BY seq {} LIMIT {}",
            if filter.newest_first { "DESC" } else { "ASC" },
            filter.limit.clamp(1, 1000)
        ));
        let mut query = sqlx::query(&sql).bind(filter.after.unwrap_or(0));
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(audit_from_row).collect()
    }

    pub async fn count_audit(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_events")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }
}

impl WriteTx<'_> {
    /// Queues an event of this transaction; [`WriteTx::commit`] stores it with its leaf index.
    pub async fn append_audit(&mut self, event: &AuditEvent) -> StoreResult<()> {
        self.audit.push(event.clone());
        Ok(())
    }
}

fn audit_from_row(row: &AnyRow) -> StoreResult<AuditRow> {
    let canonical: String = row.try_get("canonical")?;
    let event: AuditEvent = serde_json::from_str(&canonical)
        .map_err(|_| crate::StoreError::Corrupt("audit event encoding"))?;
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        event,
    })
}
