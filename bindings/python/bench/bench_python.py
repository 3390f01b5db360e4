"""atom_protect against the seed's Python implementation, side by side in
one run, from Python (call overhead included):

- SecretsEncryption.encrypt / decrypt against the Python original's class
  (pyca/cryptography Fernet), on an OAuth-like token;
- get_user_credential against the Python original's SQLAlchemy version,
  on SQLite and (with --postgres URL) on PostgreSQL, both on their own
  fresh database with the same rows;
- threads: get_user_credential throughput with 2 threads against 1.

Run by `cargo xtask bench-python`, which builds the release wheel into a
virtualenv of its own first. Prints one line per figure.
"""
import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
import uuid


def per_second(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


def timed(fn, n):
    started = time.perf_counter()
    fn(n)
    return time.perf_counter() - started


def line(what, ours, theirs, unit="calls/s"):
    ratio = ours / theirs if theirs else float("inf")
    print(f"{what}: atom_protect {ours:,.0f} {unit}, python original {theirs:,.0f} {unit}, ratio {ratio:.1f}x")


def bench_tokens(ref, ap, n):
    key = secrets.token_urlsafe(32)  # the seed's recipe
    os.environ["ENCRYPTION_KEY"] = key
    theirs = ref.SecretsEncryption(key)
    ours = ap.SecretsEncryption()
    token = "xoxb-" + os.urandom(40).hex()
    # Warm up both.
    for _ in range(1000):
        ours.decrypt(ours.encrypt(token))
        theirs.decrypt(theirs.encrypt(token))
    ours_tokens, theirs_tokens = [], []
    t_ours = timed(lambda k: ours_tokens.extend(ours.encrypt(token) for _ in range(k)), n)
    t_theirs = timed(lambda k: theirs_tokens.extend(theirs.encrypt(token) for _ in range(k)), n)
    line("encrypt", per_second(n, t_ours), per_second(n, t_theirs))
    t_ours = timed(lambda k: [ours.decrypt(t) for t in ours_tokens[:k]], n)
    t_theirs = timed(lambda k: [theirs.decrypt(t) for t in theirs_tokens[:k]], n)
    line("decrypt", per_second(n, t_ours), per_second(n, t_theirs))
    # Each reads the other's values: the same format.
    assert ours.decrypt(theirs_tokens[0]) == token and theirs.decrypt(ours_tokens[0]) == token


def seed_rows(ref, ap, url_ours, url_theirs, users):
    from sqlalchemy.orm import Session

    enc = ref.SecretsEncryption(os.environ["ENCRYPTION_KEY"])
    engine = ref.engine(url_theirs)
    with Session(engine) as db:
        for u in users:
            ref.store_user_credential(db, enc, u, "slack", "xoxb-" + u)
    store = ap.CredentialStore(url_ours)
    for u in users:
        store.store_user_credential(u, "slack", "xoxb-" + u)
    return engine, enc, store


def bench_reads(ref, ap, label, url_ours, url_theirs, n, users):
    from sqlalchemy.orm import Session

    engine, enc, store = seed_rows(ref, ap, url_ours, url_theirs, users)

    def ours_reads(k):
        for i in range(k):
            u = users[i % len(users)]
            assert store.get_user_credential(u, "slack") == "xoxb-" + u

    def theirs_reads(k):
        with Session(engine) as db:
            for i in range(k):
                u = users[i % len(users)]
                assert ref.get_user_credential(db, enc, u, "slack") == "xoxb-" + u

    ours_reads(200)
    theirs_reads(200)
    t_ours = timed(ours_reads, n)
    t_theirs = timed(theirs_reads, n)
    line(f"get_user_credential on {label}", per_second(n, t_ours), per_second(n, t_theirs))

    def threaded(threads, k):
        def work():
            ours_reads(k // threads)
        ts = [threading.Thread(target=work) for _ in range(threads)]
        started = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return per_second(k, time.perf_counter() - started)

    one = threaded(1, n)
    two = threaded(2, n)
    print(f"threads on {label}: atom_protect get_user_credential 1 thread {one:,.0f} calls/s, 2 threads {two:,.0f} calls/s, {two / one:.2f}x")
    store.close()
    engine.dispose()


def fsync_floor(directory, n=300):
    """Appends of a ~400-byte line, each followed by fdatasync: the floor of
    a read whose audit record must be on disk before it returns."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    line = b"x" * 400 + b"\n"
    started = time.perf_counter()
    for _ in range(n):
        os.write(fd, line)
        os.fdatasync(fd)
    elapsed = time.perf_counter() - started
    os.close(fd)
    os.unlink(path)
    return per_second(n, elapsed)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--anchor-dir", required=True)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (postgres://user@host:port/db) to create two databases on")
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=5_000)
    args = parser.parse_args()
    sys.path.insert(0, args.anchor_dir)
    import atom_reference as ref
    import atom_protect as ap

    work = tempfile.mkdtemp(prefix="bench-python-")
    os.chdir(work)
    # The durable trail of every other face: a file log, fsync per
    # checkpoint (the binaries' default); its key apart from the data keys.
    os.environ["ATOM_AUDIT_KEY"] = secrets.token_urlsafe(32)
    print(f"bench-python: atom_protect {ap.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.tokens} token calls, {args.reads} reads")
    bench_tokens(ref, ap, args.tokens)
    users = [f"user-{i}" for i in range(100)]
    print(f"floor: append + fdatasync of an audit line on this disk: {fsync_floor(work):,.0f}/s (a read returns only once its record is durable; the Python original records nothing)")
    bench_reads(ref, ap, "SQLite", f"sqlite://{work}/ours.db", f"sqlite:///{work}/theirs.db", args.reads, users)
    # The same with the audit log on tmpfs, where fdatasync costs nothing:
    # what the engine does per read once the disk's flush is taken away.
    shm = tempfile.mkdtemp(prefix="bench-python-", dir="/dev/shm") if os.path.isdir("/dev/shm") else None
    if shm:
        os.environ["ATOM_AUDIT_LOG"] = os.path.join(shm, "audit.jsonl")
        os.environ["ATOM_AUDIT_ANCHOR"] = os.path.join(shm, "audit.anchor")
        bench_reads(ref, ap, "SQLite, audit log on tmpfs (no disk flush; the floor without fsync)", f"sqlite://{shm}/ours.db", f"sqlite:///{shm}/theirs.db", args.reads, users)
        del os.environ["ATOM_AUDIT_LOG"], os.environ["ATOM_AUDIT_ANCHOR"]
    if args.postgres:
        import subprocess
        base = args.postgres.rsplit("/", 1)[0]
        names = [f"bench_py_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        for name in names:
            subprocess.run(["psql", args.postgres, "-qc", f"CREATE DATABASE {name}"], check=True)
        try:
            ours = f"{base}/{names[0]}"
            theirs = "postgresql+psycopg2://" + f"{base}/{names[1]}".split("://", 1)[1]
            bench_reads(ref, ap, "PostgreSQL", ours, theirs, args.reads, users)
        finally:
            for name in names:
                subprocess.run(["psql", args.postgres, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


if __name__ == "__main__":
    main()
