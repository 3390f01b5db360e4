//! The compare-and-swap UPDATE of a batch: `SET encrypted_token = new,
//! key_id = primary, data_key_id = dk WHERE id = ? AND encrypted_token =
//! old` for many rows at once, written for each backend. A batch re-sealed
//! under the primary key has a key id and no data key ids; one upgraded to
//! the enveloped form has a data key id per row and no key id.

use chrono::NaiveDateTime;
use sea_orm::{DbBackend, Statement, Value};

use crate::entity::TABLE;
use crate::sql::statement;

/// One row's swap.
pub(super) struct Swap {
    pub(super) id: i64,
    pub(super) old: String,
    pub(super) new: String,
    /// The data key of an enveloped value; empty for none (NULL).
    pub(super) data_key_id: String,
}

/// Rows per statement where each row is bound as 4 parameters (SQLite,
/// MySQL): stays far below every backend's limit (SQLite 32766, MySQL
/// 65535).
const ROWS_PER_STATEMENT: usize = 500;

/// The UPDATEs for `swaps`; the sum of their affected-row counts is the
/// number swapped (MySQL is told to count matched rows, and a matched row
/// always changes, since the new token differs or the key id was stale).
///
/// On PostgreSQL the whole batch is one statement binding three arrays
/// (`unnest($3::bigint[], $4::text[], $5::text[])`): five parameters
/// whatever the batch size, one prepared statement reused by every batch,
/// instead of three parameters per row (binding and planning thousands of
/// parameters cost about three times the update itself).
pub(super) fn swap_statements(
    backend: DbBackend,
    key_id: Option<&str>,
    now: NaiveDateTime,
    swaps: Vec<Swap>,
) -> Vec<Statement> {
    if swaps.is_empty() {
        return Vec::new();
    }
    if backend == DbBackend::Postgres {
        return vec![postgres(key_id, now, swaps)];
    }
    let mut statements = Vec::with_capacity(swaps.len().div_ceil(ROWS_PER_STATEMENT));
    let mut swaps = swaps.into_iter().peekable();
    while swaps.peek().is_some() {
        let chunk: Vec<Swap> = swaps.by_ref().take(ROWS_PER_STATEMENT).collect();
        statements.push(match backend {
            DbBackend::MySql => mysql(key_id, now, chunk),
            _ => sqlite(key_id, now, chunk),
        });
    }
    statements
}

fn postgres(key_id: Option<&str>, now: NaiveDateTime, swaps: Vec<Swap>) -> Statement {
    let mut ids = Vec::with_capacity(swaps.len());
    let mut olds = Vec::with_capacity(swaps.len());
    let mut news = Vec::with_capacity(swaps.len());
    let mut data_keys = Vec::with_capacity(swaps.len());
    for s in swaps {
        ids.push(s.id);
        olds.push(s.old);
        news.push(s.new);
        data_keys.push(s.data_key_id);
    }
    statement(
        DbBackend::Postgres,
        &format!(
            "UPDATE {TABLE} AS t SET encrypted_token = v.new_token, key_id = ?, \
             data_key_id = NULLIF(v.data_key_id, ''), updated_at = ? \
             FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[]) AS v(id, old_token, new_token, data_key_id) \
             WHERE t.id = v.id AND t.encrypted_token = v.old_token"
        ),
        vec![
            key_id.map(str::to_owned).into(),
            now.into(),
            ids.into(),
            olds.into(),
            news.into(),
            data_keys.into(),
        ],
    )
}

fn mysql(key_id: Option<&str>, now: NaiveDateTime, swaps: Vec<Swap>) -> Statement {
    let mut values: Vec<Value> = Vec::with_capacity(swaps.len() * 4 + 2);
    let mut union = String::with_capacity(swaps.len() * 28);
    for (i, s) in swaps.into_iter().enumerate() {
        union.push_str(if i == 0 {
            "SELECT ? AS id, ? AS old_token, ? AS new_token, ? AS data_key_id"
        } else {
            " UNION ALL SELECT ?, ?, ?, ?"
        });
        values.push(s.id.into());
        values.push(s.old.into());
        values.push(s.new.into());
        values.push(s.data_key_id.into());
    }
    values.push(key_id.map(str::to_owned).into());
    values.push(now.into());
    statement(
        DbBackend::MySql,
        &format!(
            "UPDATE {TABLE} AS t JOIN ({union}) AS v \
             ON t.id = v.id AND t.encrypted_token = v.old_token COLLATE utf8mb4_bin \
             SET t.encrypted_token = v.new_token, t.key_id = ?, \
             t.data_key_id = NULLIF(v.data_key_id, ''), t.updated_at = ?"
        ),
        values,
    )
}

fn sqlite(key_id: Option<&str>, now: NaiveDateTime, swaps: Vec<Swap>) -> Statement {
    let mut values: Vec<Value> = Vec::with_capacity(swaps.len() * 4 + 2);
    values.push(key_id.map(str::to_owned).into());
    values.push(now.into());
    let mut list = String::with_capacity(swaps.len() * 11);
    for (i, s) in swaps.into_iter().enumerate() {
        if i > 0 {
            list.push_str(", ");
        }
        list.push_str("(?, ?, ?, ?)");
        values.push(s.id.into());
        values.push(s.old.into());
        values.push(s.new.into());
        values.push(s.data_key_id.into());
    }
    statement(
        DbBackend::Sqlite,
        &format!(
            "UPDATE {TABLE} SET encrypted_token = v.column3, key_id = ?, \
             data_key_id = NULLIF(v.column4, ''), updated_at = ? \
             FROM (VALUES {list}) AS v \
             WHERE {TABLE}.id = v.column1 AND {TABLE}.encrypted_token = v.column2"
        ),
        values,
    )
}
