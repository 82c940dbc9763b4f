//! Approval requests, their decisions and the approval rules.
//!
//! Exactly-once execution rests on one statement: the approval counter is incremented with
//! `UPDATE … WHERE state = 'pending' … RETURNING`, which takes the row lock in PostgreSQL (and
//! the database write lock in SQLite), so concurrent approvals are counted one after another and
//! only one of them can see the threshold reached and close the request.

use enigm_types::{
    AdminId, ApprovalAction, ApprovalId, ApprovalKind, ApprovalRule, ApprovalState, Role, Timestamp,
};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, StoreResult, WriteTx, parse_id};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub id: ApprovalId,
    pub action: ApprovalAction,
    pub requester: AdminId,
    pub justification: String,
    /// The rule in force when the request was made; later rule changes do not move it.
    pub rule: ApprovalRule,
    /// As stored; a pending request past `expires_at` is reported as expired by [`Self::effective_state`].
    pub state: ApprovalState,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub approvals: Vec<AdminId>,
    pub rejected_by: Option<AdminId>,
}

impl ApprovalRecord {
    pub fn effective_state(&self, now: Timestamp) -> ApprovalState {
        match self.state {
            ApprovalState::Pending if now >= self.expires_at => ApprovalState::Expired,
            state => state,
        }
    }
}

pub struct NewApproval {
    pub id: ApprovalId,
    pub action: ApprovalAction,
    pub requester: AdminId,
    pub justification: String,
    pub rule: ApprovalRule,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Approve,
    Reject,
}

impl DecisionKind {
    fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Approve => "approve",
            DecisionKind::Reject => "reject",
        }
    }
}

const APPROVAL_COLUMNS: &str = "id, action, requester_id, justification, required_approvals, approver_roles, state, \
     created_at, expires_at, closed_at";

impl Store {
    /// The rule for each kind: stored if changed through an approval, else the default.
    pub async fn approval_rules(&self) -> StoreResult<Vec<(ApprovalKind, ApprovalRule)>> {
        let rows = sqlx::query(RULES_SQL).fetch_all(self.pool()).await?;
        rules_from_rows(&rows)
    }

    pub async fn approval_rule(&self, kind: ApprovalKind) -> StoreResult<ApprovalRule> {
        Ok(rule_of(self.approval_rules().await?, kind))
    }

    pub async fn approval_by_id(&self, id: ApprovalId) -> StoreResult<Option<ApprovalRecord>> {
        let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approval_requests WHERE id = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        let mut record = approval_from_row(&row)?;
        self.attach_decisions(std::slice::from_mut(&mut record))
            .await?;
        Ok(Some(record))
    }

    /// How many requests are pending and unexpired at `now` (a metric read at scrape time).
    pub async fn count_pending_approvals(&self, now: Timestamp) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM approval_requests WHERE state = 'pending' AND expires_at > $1",
        )
        .bind(now.unix_millis())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Requests, newest first, optionally only those in one (effective) state.
    pub async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        since: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Vec<ApprovalRecord>> {
        // The bound is a number we format ourselves, never text from the request.
        let clause = since.map_or_else(String::new, |since| {
            format!("WHERE created_at >= {}", since.unix_millis())
        });
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approval_requests {clause} \
             ORDER BY created_at DESC LIMIT 1000"
        );
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        let mut records = rows
            .iter()
            .map(approval_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if let Some(wanted) = state {
            records.retain(|record| record.effective_state(now) == wanted);
        }
        self.attach_decisions(&mut records).await?;
        Ok(records)
    }

    /// Fills in the decisions of the given requests with one query, not one per request.
    async fn attach_decisions(&self, records: &mut [ApprovalRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (1..=records.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT approval_id, approver_id, decision FROM approval_decisions \
             WHERE approval_id IN ({}) ORDER BY decided_at",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for record in records.iter() {
            query = query.bind(record.id.to_string());
        }
        for row in query.fetch_all(self.pool()).await? {
            let approval: ApprovalId =
                parse_id(&row.try_get::<String, _>("approval_id")?, "approval id")?;
            let approver: AdminId =
                parse_id(&row.try_get::<String, _>("approver_id")?, "approver id")?;
            let Some(record) = records.iter_mut().find(|record| record.id == approval) else {
                continue;
            };
            match row.try_get::<String, _>("decision")?.as_str() {
                "approve" => record.approvals.push(approver),
                "reject" => record.rejected_by = Some(approver),
                _ => return Err(StoreError::Corrupt("approval decision")),
            }
        }
        Ok(())
    }
}

const RULES_SQL: &str = "SELECT kind, required_approvals, approver_roles FROM approval_rules";

/// Every kind's rule: the stored one, else the kind's default.
fn rules_from_rows(rows: &[AnyRow]) -> StoreResult<Vec<(ApprovalKind, ApprovalRule)>> {
    let mut stored = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: ApprovalKind =
            parse_id(&row.try_get::<String, _>("kind")?, "approval rule kind")?;
        stored.push((kind, rule_from_row(row)?));
    }
    Ok(ApprovalKind::ALL
        .into_iter()
        .map(|kind| {
            let rule = stored
                .iter()
                .find(|(stored_kind, _)| *stored_kind == kind)
                .map_or_else(|| ApprovalRule::default_for(kind), |(_, rule)| rule.clone());
            (kind, rule)
        })
        .collect())
}

fn rule_of(rules: Vec<(ApprovalKind, ApprovalRule)>, kind: ApprovalKind) -> ApprovalRule {
    rules
        .into_iter()
        .find(|(rule_kind, _)| *rule_kind == kind)
        .map_or_else(|| ApprovalRule::default_for(kind), |(_, rule)| rule)
}

impl WriteTx<'_> {
    /// [`Store::approval_rule`] inside the transaction (a request holding a transaction never
    /// waits for a second connection).
    pub async fn approval_rule(&mut self, kind: ApprovalKind) -> StoreResult<ApprovalRule> {
        let rows = sqlx::query(RULES_SQL).fetch_all(self.conn()).await?;
        Ok(rule_of(rules_from_rows(&rows)?, kind))
    }

    pub async fn insert_approval(&mut self, approval: &NewApproval) -> StoreResult<()> {
        let action = serde_json::to_string(&approval.action)
            .map_err(|_| StoreError::Corrupt("approval action"))?;
        let roles = roles_json(approval.rule.approver_roles())?;
        sqlx::query(
            "INSERT INTO approval_requests (id, kind, action, requester_id, justification, required_approvals, \
             approver_roles, approval_count, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 'pending', $8, $9)",
        )
        .bind(approval.id.to_string())
        .bind(approval.action.kind().as_str().to_owned())
        .bind(action)
        .bind(approval.requester.to_string())
        .bind(approval.justification.clone())
        .bind(i64::from(approval.rule.required_approvals()))
        .bind(roles)
        .bind(approval.created_at.unix_millis())
        .bind(approval.expires_at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records one administrator's decision. `Err(Conflict)` when they already decided.
    pub async fn insert_decision(
        &mut self,
        approval: ApprovalId,
        approver: AdminId,
        decision: DecisionKind,
        at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO approval_decisions (approval_id, approver_id, decision, decided_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(approval.to_string())
        .bind(approver.to_string())
        .bind(decision.as_str().to_owned())
        .bind(at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Adds one approval to a request that is still pending and unexpired, returning the new
    /// count and the threshold; `None` when the request is not open any more.
    pub async fn count_approval(
        &mut self,
        approval: ApprovalId,
        now: Timestamp,
    ) -> StoreResult<Option<(u8, u8)>> {
        let row = sqlx::query(
            "UPDATE approval_requests SET approval_count = approval_count + 1 \
             WHERE id = $1 AND state = 'pending' AND expires_at > $2 \
             RETURNING approval_count, required_approvals",
        )
        .bind(approval.to_string())
        .bind(now.unix_millis())
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let count = u8::try_from(row.try_get::<i64, _>("approval_count")?).unwrap_or(u8::MAX);
        let required = u8::try_from(row.try_get::<i64, _>("required_approvals")?)
            .map_err(|_| StoreError::Corrupt("threshold"))?;
        Ok(Some((count, required)))
    }

    /// Moves a pending, unexpired request to a final state; false if it was not open.
    pub async fn close_approval(
        &mut self,
        approval: ApprovalId,
        state: ApprovalState,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE approval_requests SET state = $1, closed_at = $2 WHERE id = $3 AND state = 'pending' AND expires_at > $4",
        )
        .bind(state.as_str().to_owned())
        .bind(now.unix_millis())
        .bind(approval.to_string())
        .bind(now.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn set_approval_rule(
        &mut self,
        kind: ApprovalKind,
        rule: &ApprovalRule,
        at: Timestamp,
        approval: ApprovalId,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO approval_rules (kind, required_approvals, approver_roles, updated_at, approval_id) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind) DO UPDATE SET required_approvals = excluded.required_approvals, \
             approver_roles = excluded.approver_roles, updated_at = excluded.updated_at, approval_id = excluded.approval_id",
        )
        .bind(kind.as_str().to_owned())
        .bind(i64::from(rule.required_approvals()))
        .bind(roles_json(rule.approver_roles())?)
        .bind(at.unix_millis())
        .bind(approval.to_string())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

fn roles_json(roles: &[Role]) -> StoreResult<String> {
    serde_json::to_string(roles).map_err(|_| StoreError::Corrupt("approver roles"))
}

fn rule_from_row(row: &AnyRow) -> StoreResult<ApprovalRule> {
    let required = u8::try_from(row.try_get::<i64, _>("required_approvals")?)
        .map_err(|_| StoreError::Corrupt("threshold"))?;
    let roles: Vec<Role> = serde_json::from_str(&row.try_get::<String, _>("approver_roles")?)
        .map_err(|_| StoreError::Corrupt("approver roles"))?;
    ApprovalRule::new(required, roles).map_err(|_| StoreError::Corrupt("approval rule"))
}

fn approval_from_row(row: &AnyRow) -> StoreResult<ApprovalRecord> {
    let action: ApprovalAction = serde_json::from_str(&row.try_get::<String, _>("action")?)
        .map_err(|_| StoreError::Corrupt("approval action"))?;
    Ok(ApprovalRecord {
        id: parse_id(&row.try_get::<String, _>("id")?, "approval id")?,
        action,
        requester: parse_id(&row.try_get::<String, _>("requester_id")?, "requester id")?,
        justification: row.try_get("justification")?,
        rule: rule_from_row(row)?,
        state: parse_id(&row.try_get::<String, _>("state")?, "approval state")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
        closed_at: row
            .try_get::<Option<i64>, _>("closed_at")?
            .map(Timestamp::from_unix_millis),
        approvals: Vec::new(),
        rejected_by: None,
    })
}

/// One-way flags of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandFlag {
    /// A second administrator has held an approver role: the bootstrap window is closed.
    ApproverQuorumEstablished,
}

impl CommandFlag {
    fn as_str(self) -> &'static str {
        match self {
            CommandFlag::ApproverQuorumEstablished => "approver-quorum-established",
        }
    }
}

impl Store {
    pub async fn flag_is_set(&self, flag: CommandFlag) -> StoreResult<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM command_flags WHERE name = $1")
            .bind(flag.as_str().to_owned())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Active administrators other than `except` holding any of `roles`.
    pub async fn count_other_active_holders(
        &self,
        roles: &[Role],
        except: &[AdminId],
    ) -> StoreResult<usize> {
        let admins = self.list_admins().await?;
        Ok(admins
            .iter()
            .filter(|admin| !admin.disabled && !except.contains(&admin.id))
            .filter(|admin| admin.roles.iter().any(|role| roles.contains(role)))
            .count())
    }
}

impl WriteTx<'_> {
    /// Sets a flag; setting it again changes nothing.
    pub async fn set_flag(&mut self, flag: CommandFlag, at: Timestamp) -> StoreResult<()> {
        sqlx::query("INSERT INTO command_flags (name, set_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(flag.as_str().to_owned())
            .bind(at.unix_millis())
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
