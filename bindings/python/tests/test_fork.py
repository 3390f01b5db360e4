"""Fork safety, as preloading servers (gunicorn, uvicorn workers) need it:
a store used in the parent, so that its runtime and pool exist, keeps
working in forked children, and in the parent meanwhile.

A child reports through its exit code; the parent waits for it with a
deadline, so a child that hangs (a lock held for ever, a runtime whose
threads do not exist) fails the test instead of hanging the suite.
"""

import asyncio
import json
import multiprocessing
import os
import time

import pytest

from atom_protect import AsyncCredentialStore, CredentialNotFound, CredentialStore

DEADLINE_SECONDS = 120  # a limit for a hung child, not a measurement


def wait_for_child(pid: int) -> int:
    """The child's exit code; fails the test (and kills the child) if it
    has not exited by the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail(f"forked child {pid} did not exit within {DEADLINE_SECONDS} s")


def in_child(body) -> int:
    """Forks; the child runs ``body()`` and exits 0 if it returns, 1 if
    it raises (printing why). The parent gets the exit code."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException as e:  # the child must never return into pytest
            print(f"child failed: {type(e).__name__}: {e}", flush=True)
        finally:
            os._exit(code)
    return wait_for_child(pid)


def test_a_forked_child_uses_the_parents_store():
    store = CredentialStore()
    store.store_user_credential("parent", "slack", "xoxb-parent")
    assert store.get_user_credential("parent", "slack") == "xoxb-parent"

    def child():
        assert store.get_user_credential("parent", "slack") == "xoxb-parent"
        store.store_user_credential("child", "slack", "xoxb-child")
        assert store.get_user_credential("child", "slack") == "xoxb-child"
        store.close()

    assert in_child(child) == 0
    # The parent's store is untouched by the child's, and sees its write.
    assert store.get_user_credential("child", "slack") == "xoxb-child"
    assert store.get_user_credential("parent", "slack") == "xoxb-parent"
    store.close()


def test_a_failing_child_fails_the_test():
    """The harness itself: a child's failure is seen by the parent."""
    store = CredentialStore()
    store.store_user_credential("parent", "slack", "xoxb-parent")

    def child():
        store.get_user_credential("nobody", "slack")

    assert in_child(child) == 1
    store.close()


def test_children_of_children():
    store = CredentialStore()
    store.store_user_credential("parent", "slack", "xoxb-parent")

    def child():
        store.store_user_credential("child", "slack", "xoxb-child")

        def grandchild():
            assert store.get_user_credential("child", "slack") == "xoxb-child"
            store.store_user_credential("grandchild", "slack", "xoxb-grandchild")
            store.close()

        assert in_child(grandchild) == 0
        assert store.get_user_credential("grandchild", "slack") == "xoxb-grandchild"
        store.close()

    assert in_child(child) == 0
    assert store.get_user_credential("grandchild", "slack") == "xoxb-grandchild"
    store.close()


# The pool's workers find the store as a global inherited through fork():
# a store is not picklable, and does not need to be.
_INHERITED = {}

POOL_WORKERS = 4
POOL_TASKS = 64
CALLS_PER_TASK = 20


def pool_task(task: int) -> int:
    store = _INHERITED["store"]
    done = 0
    for i in range(CALLS_PER_TASK):
        user = f"task-{task}"
        store.store_user_credential(user, "slack", f"xoxb-{task}-{i}")
        assert store.get_user_credential(user, "slack") == f"xoxb-{task}-{i}"
        assert store.get_user_credential("parent", "github") == "gho_parent"
        done += 1
    return done


def test_a_fork_pool_uses_the_inherited_store_under_load():
    store = CredentialStore()
    store.store_user_credential("parent", "github", "gho_parent")
    _INHERITED["store"] = store
    parent_calls = 0
    try:
        with multiprocessing.get_context("fork").Pool(POOL_WORKERS) as pool:
            results = pool.map_async(pool_task, range(POOL_TASKS))
            # The parent keeps using the same object meanwhile.
            while not results.ready():
                store.store_user_credential("parent", "slack", f"xoxb-parent-{parent_calls}")
                assert store.get_user_credential("parent", "slack") == f"xoxb-parent-{parent_calls}"
                parent_calls += 1
            done = results.get(timeout=DEADLINE_SECONDS)
    finally:
        _INHERITED.clear()

    assert done == [CALLS_PER_TASK] * POOL_TASKS
    assert parent_calls > 0
    for task in range(POOL_TASKS):
        assert store.get_user_credential(f"task-{task}", "slack") == f"xoxb-{task}-{CALLS_PER_TASK - 1}"
    store.close()


def test_forked_children_and_the_parent_keep_one_intact_audit_trail(atom):
    store = CredentialStore()
    store.store_user_credential("parent", "slack", "xoxb-parent")

    def child():
        for i in range(20):
            store.store_user_credential("child", "slack", f"xoxb-child-{i}")
            store.get_user_credential("child", "slack")
        store.close()

    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for i in range(20):
        store.store_user_credential("parent", "slack", f"xoxb-parent-{i}")
    assert [wait_for_child(pid) for pid in pids] == [0, 0, 0]
    store.close()

    verified = json.loads(atom("audit", "verify", "--json").stdout)
    assert verified["intact"] is True
    # 21 writes of the parent, 20 writes and 20 reads of each child.
    assert verified["events"] >= 21 + 3 * 40


def test_an_async_store_in_a_forked_child():
    store = AsyncCredentialStore()

    async def in_parent():
        await store.store_user_credential("parent", "slack", "xoxb-parent")
        return await store.get_user_credential("parent", "slack")

    assert asyncio.run(in_parent()) == "xoxb-parent"

    def child():
        async def main():
            assert await store.get_user_credential("parent", "slack") == "xoxb-parent"
            await asyncio.gather(
                *(store.store_user_credential(f"child-{i}", "slack", f"xoxb-child-{i}") for i in range(20))
            )
            tokens = await asyncio.gather(*(store.get_user_credential(f"child-{i}", "slack") for i in range(20)))
            assert tokens == [f"xoxb-child-{i}" for i in range(20)]
            try:
                await store.get_user_credential("nobody", "slack")
            except CredentialNotFound:
                pass
            else:
                raise AssertionError("a missing credential was found")
            await store.close()

        asyncio.run(main())

    assert in_child(child) == 0

    async def after():
        tokens = await asyncio.gather(*(store.get_user_credential(f"child-{i}", "slack") for i in range(20)))
        await store.close()
        return tokens

    assert asyncio.run(after()) == [f"xoxb-child-{i}" for i in range(20)]
