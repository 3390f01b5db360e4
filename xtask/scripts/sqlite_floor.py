"""The floor under any SQLite rewrap: what SQLite itself (the C library, via
Python's sqlite3 module, no ORM, no crypto) spends to read and to write back
N rows the way `CredentialStore::rewrap` does, on this machine.

- read: keyset pages of 1000 rows, `id > ? AND (key_id IS NULL OR key_id <> ?)
  ORDER BY id LIMIT 1000`, on its own connection;
- write: one transaction per 1000 rows, compare-and-swap
  `UPDATE ... FROM (VALUES ...) WHERE id = v.id AND encrypted_token = v.old`
  in statements of 500 rows; WAL, synchronous=FULL.

The tokens are random strings of the length of a sealed 45-byte token, so no
time is spent on crypto. Add the crypto cost (bench-tokens: open + seal per
row) to get the CPU a row costs at the least; see docs/PERFORMANCE.md.

usage: python3 xtask/scripts/sqlite_floor.py [N] [DB_PATH]
"""
import os
import secrets
import sys
import time

import sqlite3

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
path = sys.argv[2] if len(sys.argv) > 2 else "/tmp/atom-sqlite-floor.db"
for suffix in ("", "-wal", "-shm"):
    try:
        os.remove(path + suffix)
    except FileNotFoundError:
        pass

db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute(
    "CREATE TABLE user_credentials (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL,"
    " provider TEXT NOT NULL, encrypted_token TEXT NOT NULL, key_id TEXT,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
)
db.execute("CREATE UNIQUE INDEX uq ON user_credentials (user_id, provider)")


def token(kid):
    return f"atom:v1:{kid}:gAAAAA" + secrets.token_urlsafe(120)


rows = [
    (i + 1, f"user_{i}", "slack", token("aaaaaaaaaaaa"), "aaaaaaaaaaaa",
     "2026-11-28 00:00:00", "2026-11-28 00:00:00")
    for i in range(n)
]
db.execute("BEGIN")
db.executemany("INSERT INTO user_credentials VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
db.execute("COMMIT")
swaps = [(r[0], r[3], token("bbbbbbbbbbbb")) for r in rows]
del rows

reader = sqlite3.connect(path, isolation_level=None)
t = time.perf_counter()
last, seen = 0, 0
while True:
    page = reader.execute(
        "SELECT id, user_id, provider, encrypted_token FROM user_credentials"
        " WHERE id > ? AND (key_id IS NULL OR key_id <> ?) ORDER BY id LIMIT 1000",
        (last, "bbbbbbbbbbbb"),
    ).fetchall()
    if not page:
        break
    last, seen = page[-1][0], seen + len(page)
read_s = time.perf_counter() - t

t = time.perf_counter()
for start in range(0, n, 1000):
    db.execute("BEGIN IMMEDIATE")
    batch = swaps[start:start + 1000]
    for chunk_start in range(0, len(batch), 500):
        chunk = batch[chunk_start:chunk_start + 500]
        values = ", ".join(["(?, ?, ?)"] * len(chunk))
        params = ["bbbbbbbbbbbb", "2026-11-28 01:00:00"] + [x for s in chunk for x in s]
        db.execute(
            "UPDATE user_credentials SET encrypted_token = v.column3, key_id = ?,"
            f" updated_at = ? FROM (VALUES {values}) AS v"
            " WHERE user_credentials.id = v.column1"
            " AND user_credentials.encrypted_token = v.column2",
            params,
        )
    db.execute("COMMIT")
write_s = time.perf_counter() - t
assert seen == n
print(f"sqlite floor, {n} rows: read {read_s * 1e6 / n:.2f} us/row, "
      f"compare-and-swap write {write_s * 1e6 / n:.2f} us/row "
      f"(single writer: at most {n / write_s:,.0f} rows/s)")
