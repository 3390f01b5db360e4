"""AsyncCredentialStore: the store for asyncio services (FastAPI). Calls
are awaitables driven by the engine's own runtime, so the event loop
keeps running while they wait, and errors arrive as the same exceptions.
"""

import asyncio
import subprocess
import sys

import pytest

from atom_protect import (
    AsyncCredentialStore,
    CannotOpen,
    CredentialNotFound,
    CredentialStore,
    InvalidInput,
    Unavailable,
)
from conftest import new_key, sqlite_write_lock


def test_the_seeds_functions_awaited():
    async def main():
        store = AsyncCredentialStore()
        await store.store_user_credential("user_123", "slack", "xoxb-your-slack-token")
        token = await store.get_user_credential("user_123", "slack")
        listing = await store.list("user_123")
        deleted = await store.delete("user_123", "slack")
        await store.store_user_credential("user_123", "github", "gho_token")
        erased = await store.erase_user("user_123")
        await store.close()
        return token, listing, deleted, erased

    token, listing, deleted, erased = asyncio.run(main())

    assert token == "xoxb-your-slack-token"
    assert [c["provider"] for c in listing] == ["slack"]
    assert deleted is True
    assert erased["removed"] == ["github"]


def test_two_hundred_calls_at_once():
    async def main():
        store = AsyncCredentialStore()
        await store.open()
        writes = [store.store_user_credential(f"user_{i}", "slack", f"xoxb-{i}") for i in range(100)]
        await asyncio.gather(*writes)
        # 200 mixed calls in flight together.
        calls = []
        for i in range(100):
            calls.append(store.get_user_credential(f"user_{i}", "slack"))
            if i % 2:
                calls.append(store.store_user_credential(f"user_{i}", "github", f"gho-{i}"))
            else:
                calls.append(store.list(f"user_{i}"))
        results = await asyncio.gather(*calls)
        github = await asyncio.gather(*(store.get_user_credential(f"user_{i}", "github") for i in range(1, 100, 2)))
        await store.close()
        return results, github

    results, github = asyncio.run(main())

    assert len(results) == 200
    for i in range(100):
        assert results[2 * i] == f"xoxb-{i}"
        if i % 2 == 0:
            assert [c["provider"] for c in results[2 * i + 1]] == ["slack"]
    # The writes among them: read back.
    assert github == [f"gho-{i}" for i in range(1, 100, 2)]


def test_awaited_calls_resolve_to_what_the_blocking_store_returns():
    blocking = CredentialStore()
    assert blocking.open() is None
    assert blocking.store_user_credential("user_123", "slack", "xoxb-blocking") is None
    assert blocking.close() is None

    async def main():
        store = AsyncCredentialStore()
        return (
            await store.open(),
            await store.store_user_credential("user_123", "slack", "xoxb-async"),
            await store.delete("user_123", "slack"),
            await store.close(),
        )

    # The blocking store's answers: None, None, True, None.
    assert asyncio.run(main()) == (None, None, True, None)


def test_an_awaited_get_raises_credential_not_found():
    async def main():
        store = AsyncCredentialStore()
        try:
            await store.get_user_credential("user_123", "slack")
        finally:
            await store.close()

    with pytest.raises(CredentialNotFound, match="^Credential not found for slack$") as raised:
        asyncio.run(main())
    assert isinstance(raised.value, ValueError)


def test_errors_are_the_same_types_as_the_blocking_store(monkeypatch):
    monkeypatch.setenv("ATOM_DB_ACQUIRE_TIMEOUT_SECS", "1")

    async def main():
        store = AsyncCredentialStore()
        outcomes = await asyncio.gather(
            store.get_user_credential("user_123", "slack"),
            store.get_user_credential("user_123", "github"),
            return_exceptions=True,
        )
        # Arguments are checked when the call is made, before any await.
        with pytest.raises(InvalidInput, match="token is empty"):
            store.store_user_credential("user_123", "slack", "")
        with pytest.raises(InvalidInput, match="user id"):
            store.get_user_credential("user/123", "slack")
        with pytest.raises(InvalidInput, match="provider"):
            store.delete("user_123", "Sl ack")
        unreachable = AsyncCredentialStore("postgres://postgres@127.0.0.1:1/x")
        with pytest.raises(Unavailable):
            await unreachable.list("user_123")
        await store.close()
        return outcomes

    outcomes = asyncio.run(main())

    assert [type(o) for o in outcomes] == [CredentialNotFound, CredentialNotFound]
    assert [str(o) for o in outcomes] == ["Credential not found for slack", "Credential not found for github"]


def test_a_row_that_does_not_open_raises_cannot_open(monkeypatch):
    with CredentialStore() as store:
        store.store_user_credential("user_123", "slack", "xoxb")
    monkeypatch.setenv("ENCRYPTION_KEY", new_key())

    async def main():
        store = AsyncCredentialStore()
        try:
            await store.get_user_credential("user_123", "slack")
        finally:
            await store.close()

    with pytest.raises(CannotOpen):
        asyncio.run(main())


def test_the_event_loop_keeps_running_while_a_call_waits_for_the_database():
    async def main():
        store = AsyncCredentialStore()
        await store.store_user_credential("user_123", "slack", "xoxb-before")  # opened
        events = []
        with sqlite_write_lock(".atom/atom.db") as release:
            pending = asyncio.ensure_future(store.store_user_credential("user_123", "slack", "xoxb-after"))
            pending.add_done_callback(lambda _: events.append("stored"))

            async def ticker():
                ticks = 0
                while ticks < 1_000 and not pending.done():
                    ticks += 1
                    await asyncio.sleep(0)
                return ticks

            ticks = await ticker()
            still_pending = not pending.done()
            events.append("ticked")
            events.append("released")
            release()
            await pending
        token = await store.get_user_credential("user_123", "slack")
        await store.close()
        return ticks, still_pending, events, token

    ticks, still_pending, events, token = asyncio.run(main())

    # Another coroutine ran a thousand times while the call was waiting
    # for the write lock: the call never blocked the loop.
    assert ticks == 1_000
    assert still_pending
    assert events == ["ticked", "released", "stored"]
    assert token == "xoxb-after"


def test_a_coroutine_ticks_while_two_hundred_calls_are_in_flight():
    async def main():
        store = AsyncCredentialStore()
        await store.open()
        calls = [store.store_user_credential(f"user_{i}", "slack", f"xoxb-{i}") for i in range(200)]
        gathered = asyncio.gather(*calls)
        ticks_while_in_flight = 0
        while not gathered.done():
            ticks_while_in_flight += 1
            await asyncio.sleep(0)
        await gathered
        tokens = await asyncio.gather(*(store.get_user_credential(f"user_{i}", "slack") for i in range(200)))
        await store.close()
        return ticks_while_in_flight, tokens

    ticks, tokens = asyncio.run(main())

    assert ticks > 0
    assert tokens == [f"xoxb-{i}" for i in range(200)]


A_SERVICE_USING_THE_ASYNC_STORE = """
import asyncio
from atom_protect import AsyncCredentialStore

async def main():
    store = AsyncCredentialStore()
    await store.store_user_credential("user_123", "slack", "xoxb-your-slack-token")
    assert await store.get_user_credential("user_123", "slack") == "xoxb-your-slack-token"
    await store.close()

asyncio.run(main())
print("done", flush=True)
"""


def test_a_process_using_the_async_store_exits_cleanly():
    """A script that awaits the store and ends exits 0, every time: the
    interpreter's shutdown does not race the engine's threads. (A race
    shows in some runs, not all: twenty runs make one that loses it all
    but certain.)"""
    RUNS = 20
    runs = [
        subprocess.run(
            [sys.executable, "-c", A_SERVICE_USING_THE_ASYNC_STORE],
            capture_output=True,
            text=True,
            timeout=120,
        )
        for _ in range(RUNS)
    ]

    assert [r.returncode for r in runs] == [0] * RUNS, [r.stderr[-300:] for r in runs if r.returncode]
    assert [r.stdout for r in runs] == ["done\n"] * RUNS
