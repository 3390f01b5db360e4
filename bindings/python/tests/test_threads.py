"""One CredentialStore shared by threads: nothing is lost, and a call
that waits for the database releases the GIL, so other threads run.

No test here measures a duration: only what happened, and in what order.
"""

import random
import threading
import time

from atom_protect import CredentialNotFound, CredentialStore
from conftest import sqlite_write_lock

THREADS = 8
OPERATIONS = 1_000
USERS_PER_THREAD = 10
PROVIDERS = ["slack", "github", "google_drive"]


def test_eight_threads_of_mixed_operations_lose_nothing():
    store = CredentialStore()
    expected = [dict() for _ in range(THREADS)]  # per thread: (user, provider) -> token
    failures = []
    start = threading.Barrier(THREADS)

    def work(n):
        rng = random.Random(n)
        mine = expected[n]
        users = [f"thread-{n}-user-{i}" for i in range(USERS_PER_THREAD)]
        start.wait()
        try:
            for i in range(OPERATIONS):
                user, provider = rng.choice(users), rng.choice(PROVIDERS)
                op = rng.random()
                if op < 0.5:
                    token = f"tok-{n}-{i}"
                    store.store_user_credential(user, provider, token)
                    mine[(user, provider)] = token
                elif op < 0.8:
                    try:
                        got = store.get_user_credential(user, provider)
                    except CredentialNotFound:
                        got = None
                    if got != mine.get((user, provider)):
                        failures.append(f"thread {n} op {i}: read {got!r}, wrote {mine.get((user, provider))!r}")
                else:
                    existed = store.delete(user, provider)
                    if existed != ((user, provider) in mine):
                        failures.append(f"thread {n} op {i}: delete said {existed} for {(user, provider)}")
                    mine.pop((user, provider), None)
        except Exception as e:  # reported below, with the thread
            failures.append(f"thread {n}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    for n in range(THREADS):
        for i in range(USERS_PER_THREAD):
            user = f"thread-{n}-user-{i}"
            stored = {(user, p): t for (u, p), t in expected[n].items() if u == user}
            assert sorted(c["provider"] for c in store.list(user)) == sorted(p for _, p in stored)
            for (_, provider), token in stored.items():
                assert store.get_user_credential(user, provider) == token
    assert sum(len(e) for e in expected) > 0
    store.close()


def test_another_thread_runs_while_a_call_waits_for_the_database():
    store = CredentialStore()
    store.store_user_credential("user_123", "slack", "xoxb-before")  # opened and migrated
    events = []

    with sqlite_write_lock(".atom/atom.db") as release:
        calling = threading.Event()

        def blocked_call():
            calling.set()
            store.store_user_credential("user_123", "slack", "xoxb-after")
            events.append("stored")

        writer = threading.Thread(target=blocked_call)
        writer.start()
        calling.wait()
        # Python code, which needs the GIL, for about half a second (a
        # bound on the loop, not a measurement).
        counter, until = 0, time.monotonic() + 0.5
        while time.monotonic() < until:
            counter += 1
        still_blocked = writer.is_alive() and events == []
        events.append("counted")

        events.append("released")
        release()
        writer.join()

    assert still_blocked, "the store call finished while another process held the write lock"
    assert counter > 1_000
    assert events == ["counted", "released", "stored"]
    assert store.get_user_credential("user_123", "slack") == "xoxb-after"
    store.close()
