//! Creates the audit trail kept in the credentials database:
//! `audit_events` (one row per chained record, the file log's line format),
//! `audit_chain_head` (one row: the next sequence number and the last
//! record's MAC), which every append locks and moves in its transaction,
//! and `audit_pending` (events written in a change's own transaction on
//! PostgreSQL and MySQL, each under its MAC, until they are chained).

use sea_orm_migration::{prelude::*, schema::*};

use crate::audit_table::{EVENTS_TABLE, HEAD_TABLE, PENDING_TABLE};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EVENTS_TABLE)
                    .if_not_exists()
                    // Not auto-increment: the number is the record's own
                    // `seq`, given under the head's lock.
                    .col(big_integer(Alias::new("seq")).primary_key())
                    .col(text(Alias::new("record")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HEAD_TABLE)
                    .if_not_exists()
                    .col(integer(Alias::new("id")).primary_key())
                    .col(big_integer(Alias::new("next_seq")))
                    .col(string_len(Alias::new("last_mac"), 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PENDING_TABLE)
                    .if_not_exists()
                    .col(big_pk_auto(Alias::new("id")))
                    .col(text(Alias::new("event")))
                    .col(string_len(Alias::new("mac"), 64))
                    .to_owned(),
            )
            .await?;
        // The head row, once: an interrupted run finds the tables and adds
        // only what is missing.
        let existing = manager
            .get_connection()
            .query_one(
                &Query::select()
                    .expr(Expr::col(Asterisk).count())
                    .from(HEAD_TABLE)
                    .to_owned(),
            )
            .await?
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0);
        if existing == 0 {
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(HEAD_TABLE)
                        .columns([
                            Alias::new("id"),
                            Alias::new("next_seq"),
                            Alias::new("last_mac"),
                        ])
                        .values([1.into(), 0i64.into(), "0".repeat(64).into()])
                        .map_err(|e| DbErr::Custom(e.to_string()))?
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
