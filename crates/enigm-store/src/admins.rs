//! Administrator accounts and their roles.

use enigm_types::{AdminId, ApprovalId, Role, Timestamp, Username};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, StoreResult, WriteTx, flag, parse_id};

/// An administrator as stored. Hashes are PHC strings; the TOTP secret is sealed.
#[derive(Clone)]
pub struct AdminRecord {
    pub id: AdminId,
    pub username: Username,
    pub password_hash: String,
    pub pin_hash: Option<String>,
    pub pin_failures: u32,
    pub totp_sealed: Option<Vec<u8>>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
    pub disabled: bool,
    /// The password was set by someone else (bootstrap, `users create`): the account must
    /// change it before doing anything else.
    pub password_change_required: bool,
    /// When the account's risk state was raised (fifth wrong PIN, duress PIN); `None` while
    /// the account is not at risk.
    pub risk_raised_at: Option<Timestamp>,
    /// The optional duress PIN's verifier.
    pub duress_pin_hash: Option<String>,
    pub created_at: Timestamp,
    pub roles: Vec<Role>,
}

impl std::fmt::Debug for AdminRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

pub struct NewAdmin {
    pub id: AdminId,
    pub username: Username,
    pub password_hash: String,
    pub pin_hash: Option<String>,
    /// Whether the account must change its password at first login.
    pub password_change_required: bool,
    pub created_at: Timestamp,
}

const ADMIN_COLUMNS: &str = "id, username, password_hash, pin_hash, pin_failures, totp_sealed, totp_enabled, \
     totp_last_step, disabled, password_change_required, risk_raised_at, duress_pin_hash, created_at";

impl Store {
    pub async fn admin_by_id(&self, id: AdminId) -> StoreResult<Option<AdminRecord>> {
        let sql = format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        self.with_roles(row).await
    }

    pub async fn admin_by_username(&self, username: &Username) -> StoreResult<Option<AdminRecord>> {
        let sql = format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE username = $1");
        let row = sqlx::query(&sql)
            .bind(username.as_str().to_owned())
            .fetch_optional(self.pool())
            .await?;
        self.with_roles(row).await
    }

    pub async fn list_admins(&self) -> StoreResult<Vec<AdminRecord>> {
        let sql = format!("SELECT {ADMIN_COLUMNS} FROM admins ORDER BY username");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        let role_rows = sqlx::query("SELECT admin_id, role FROM admin_roles ORDER BY role")
            .fetch_all(self.pool())
            .await?;
        let mut admins = rows
            .iter()
            .map(admin_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        for row in role_rows {
            let admin_id: AdminId =
                parse_id(&row.try_get::<String, _>("admin_id")?, "role admin id")?;
            let role: Role = parse_id(&row.try_get::<String, _>("role")?, "role name")?;
            if let Some(admin) = admins.iter_mut().find(|admin| admin.id == admin_id) {
                admin.roles.push(role);
            }
        }
        Ok(admins)
    }

    pub async fn count_admins(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM admins")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Stores the account's own new password; a required change is thereby done.
    pub async fn update_password_hash(&self, id: AdminId, password_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE admins SET password_hash = $1, password_change_required = 0 WHERE id = $2",
        )
        .bind(password_hash.to_owned())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stores a new PIN hash and clears the failure counter. Refused (false) while the PIN is
    /// locked, so that setting a new PIN cannot be used to escape a lockout.
    pub async fn set_pin_hash(
        &self,
        id: AdminId,
        pin_hash: &str,
        lock_threshold: u32,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE admins SET pin_hash = $1, pin_failures = 0 WHERE id = $2 AND pin_failures < $3",
        )
        .bind(pin_hash.to_owned())
        .bind(id.to_string())
        .bind(i64::from(lock_threshold))
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Counts one more wrong PIN and returns the new number of consecutive failures. The
    /// increment is a single statement, so concurrent wrong guesses are all counted.
    pub async fn record_pin_failure(&self, id: AdminId) -> StoreResult<u32> {
        let row = sqlx::query("UPDATE admins SET pin_failures = pin_failures + 1 WHERE id = $1 RETURNING pin_failures")
            .bind(id.to_string())
            .fetch_one(self.pool())
            .await?;
        Ok(u32::try_from(row.try_get::<i64, _>("pin_failures")?).unwrap_or(u32::MAX))
    }

    /// Raises the account's risk state (kept at the first time it was raised).
    pub async fn raise_risk(&self, id: AdminId, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE admins SET risk_raised_at = COALESCE(risk_raised_at, $1) WHERE id = $2",
        )
        .bind(now.unix_millis())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Clears the risk state after a correct PIN; true when it was raised.
    pub async fn clear_risk(&self, id: AdminId) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE admins SET risk_raised_at = NULL WHERE id = $1 AND risk_raised_at IS NOT NULL",
        )
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Stores (or, with `None`, removes) the duress PIN's verifier. Refused (false) while the
    /// PIN is locked, like [`Store::set_pin_hash`].
    pub async fn set_duress_pin_hash(
        &self,
        id: AdminId,
        duress_pin_hash: Option<&str>,
        lock_threshold: u32,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE admins SET duress_pin_hash = $1 WHERE id = $2 AND pin_failures < $3",
        )
        .bind(duress_pin_hash.map(str::to_owned))
        .bind(id.to_string())
        .bind(i64::from(lock_threshold))
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Clears the failure counter after a correct PIN, unless the account locked meanwhile.
    pub async fn reset_pin_failures(&self, id: AdminId, lock_threshold: u32) -> StoreResult<()> {
        sqlx::query("UPDATE admins SET pin_failures = 0 WHERE id = $1 AND pin_failures < $2")
            .bind(id.to_string())
            .bind(i64::from(lock_threshold))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Stores a sealed TOTP secret awaiting confirmation (not yet required at login).
    pub async fn set_totp_pending(&self, id: AdminId, sealed: &[u8]) -> StoreResult<()> {
        sqlx::query("UPDATE admins SET totp_sealed = $1, totp_enabled = 0, totp_last_step = NULL WHERE id = $2")
            .bind(sealed.to_vec())
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn enable_totp(&self, id: AdminId) -> StoreResult<()> {
        sqlx::query("UPDATE admins SET totp_enabled = 1 WHERE id = $1 AND totp_sealed IS NOT NULL")
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records the TOTP time step just used. Returns false when that step (or a later one) was
    /// already used: the compare-and-set makes a code single-use even under concurrent logins.
    pub async fn claim_totp_step(&self, id: AdminId, step: i64) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE admins SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $3)",
        )
        .bind(step)
        .bind(id.to_string())
        .bind(step)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn with_roles(&self, row: Option<AnyRow>) -> StoreResult<Option<AdminRecord>> {
        let Some(row) = row else { return Ok(None) };
        let mut admin = admin_from_row(&row)?;
        admin.roles = self.roles_of(admin.id).await?;
        Ok(Some(admin))
    }

    async fn roles_of(&self, id: AdminId) -> StoreResult<Vec<Role>> {
        let rows = sqlx::query("SELECT role FROM admin_roles WHERE admin_id = $1 ORDER BY role")
            .bind(id.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| parse_id(&row.try_get::<String, _>("role")?, "role name"))
            .collect()
    }
}

impl WriteTx<'_> {
    pub async fn insert_admin(&mut self, admin: &NewAdmin) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO admins (id, username, password_hash, pin_hash, pin_failures, totp_enabled, disabled, \
             password_change_required, created_at) VALUES ($1, $2, $3, $4, 0, 0, 0, $5, $6)",
        )
        .bind(admin.id.to_string())
        .bind(admin.username.as_str().to_owned())
        .bind(admin.password_hash.clone())
        .bind(admin.pin_hash.clone())
        .bind(flag(admin.password_change_required))
        .bind(admin.created_at.unix_millis())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Grants a role; granting a role already held is a no-op that returns false.
    pub async fn grant_role(
        &mut self,
        admin: AdminId,
        role: Role,
        at: Timestamp,
        approval: Option<ApprovalId>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "INSERT INTO admin_roles (admin_id, role, granted_at, approval_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (admin_id, role) DO NOTHING",
        )
        .bind(admin.to_string())
        .bind(role.as_str().to_owned())
        .bind(at.unix_millis())
        .bind(approval.map(|id| id.to_string()))
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn revoke_role(&mut self, admin: AdminId, role: Role) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM admin_roles WHERE admin_id = $1 AND role = $2")
            .bind(admin.to_string())
            .bind(role.as_str().to_owned())
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Owners that can still act: enabled accounts holding the owner role.
    pub async fn count_active_owners(&mut self) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM admin_roles r JOIN admins a ON a.id = r.admin_id \
             WHERE r.role = 'owner' AND a.disabled = 0",
        )
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    pub async fn set_disabled(&mut self, admin: AdminId, disabled: bool) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE admins SET disabled = $1 WHERE id = $2")
            .bind(flag(disabled))
            .bind(admin.to_string())
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes the account's TOTP, enrolled or pending: login needs the password alone until a
    /// new one is confirmed. Answers whether the account exists.
    pub async fn clear_totp(&mut self, admin: AdminId) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE admins SET totp_sealed = NULL, totp_enabled = 0, totp_last_step = NULL \
             WHERE id = $1",
        )
        .bind(admin.to_string())
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn unlock_pin(&mut self, admin: AdminId) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE admins SET pin_failures = 0 WHERE id = $1")
            .bind(admin.to_string())
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() == 1)
    }
}

fn admin_from_row(row: &AnyRow) -> StoreResult<AdminRecord> {
    let username: String = row.try_get("username")?;
    Ok(AdminRecord {
        id: parse_id(&row.try_get::<String, _>("id")?, "admin id")?,
        username: Username::parse(&username).map_err(|_| StoreError::Corrupt("username"))?,
        password_hash: row.try_get("password_hash")?,
        pin_hash: row.try_get("pin_hash")?,
        pin_failures: u32::try_from(row.try_get::<i64, _>("pin_failures")?).unwrap_or(u32::MAX),
        totp_sealed: row.try_get("totp_sealed")?,
        totp_enabled: row.try_get::<i64, _>("totp_enabled")? != 0,
        totp_last_step: row.try_get("totp_last_step")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        password_change_required: row.try_get::<i64, _>("password_change_required")? != 0,
        risk_raised_at: row
            .try_get::<Option<i64>, _>("risk_raised_at")?
            .map(Timestamp::from_unix_millis),
        duress_pin_hash: row.try_get("duress_pin_hash")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        roles: Vec::new(),
    })
}
