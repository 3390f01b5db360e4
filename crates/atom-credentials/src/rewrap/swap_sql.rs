//! The compare-and-swap UPDATE of a batch, one statement per chunk of rows:
//! `SET encrypted_token = new, key_id = primary WHERE id = ? AND
//! encrypted_token = old` for many rows at once, written for each backend.

use chrono::NaiveDateTime;
use sea_orm::{DbBackend, Statement, Value};

use crate::entity::TABLE;
use crate::sql::statement;

/// One row's swap.
pub(super) struct Swap {
    pub(super) id: i64,
    pub(super) old: String,
    pub(super) new: String,
}

/// Rows per statement: 3 parameters each stays far below every backend's
/// limit (SQLite 32766, PostgreSQL and MySQL 65535).
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// The UPDATE for `swaps`; its affected-row count is the number swapped
/// (MySQL is told to count matched rows, and a matched row always
/// changes, since the new token differs or the key id was stale).
pub(super) fn swap_statement(
    backend: DbBackend,
    key_id: &str,
    now: NaiveDateTime,
    swaps: &[Swap],
) -> Statement {
    let mut values: Vec<Value> = Vec::with_capacity(swaps.len() * 3 + 2);
    let rows = |values: &mut Vec<Value>, row_sql: &str, sep: &str| {
        let mut sql = String::with_capacity(swaps.len() * (row_sql.len() + sep.len()));
        for (i, s) in swaps.iter().enumerate() {
            if i > 0 {
                sql.push_str(sep);
            }
            sql.push_str(row_sql);
            values.push(s.id.into());
            values.push(s.old.as_str().into());
            values.push(s.new.as_str().into());
        }
        sql
    };
    let sql = match backend {
        DbBackend::Postgres => {
            values.push(key_id.into());
            values.push(now.into());
            let list = rows(&mut values, "(?::bigint, ?::text, ?::text)", ", ");
            format!(
                "UPDATE {TABLE} AS t SET encrypted_token = v.new_token, key_id = ?, updated_at = ? \
                 FROM (VALUES {list}) AS v(id, old_token, new_token) \
                 WHERE t.id = v.id AND t.encrypted_token = v.old_token"
            )
        }
        DbBackend::MySql => {
            let mut union = String::with_capacity(swaps.len() * 28);
            for (i, s) in swaps.iter().enumerate() {
                union.push_str(if i == 0 {
                    "SELECT ? AS id, ? AS old_token, ? AS new_token"
                } else {
                    " UNION ALL SELECT ?, ?, ?"
                });
                values.push(s.id.into());
                values.push(s.old.as_str().into());
                values.push(s.new.as_str().into());
            }
            values.push(key_id.into());
            values.push(now.into());
            format!(
                "UPDATE {TABLE} AS t JOIN ({union}) AS v \
                 ON t.id = v.id AND t.encrypted_token = v.old_token COLLATE utf8mb4_bin \
                 SET t.encrypted_token = v.new_token, t.key_id = ?, t.updated_at = ?"
            )
        }
        _ => {
            values.push(key_id.into());
            values.push(now.into());
            let list = rows(&mut values, "(?, ?, ?)", ", ");
            format!(
                "UPDATE {TABLE} SET encrypted_token = v.column3, key_id = ?, updated_at = ? \
                 FROM (VALUES {list}) AS v \
                 WHERE {TABLE}.id = v.column1 AND {TABLE}.encrypted_token = v.column2"
            )
        }
    };
    statement(backend, &sql, values)
}
