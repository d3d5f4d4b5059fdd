"""The installer's build lock: parallel runs on one machine (helpers, two CI clones) build each
binary once; the second waits for the first and then finds the binary built."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from inferfleet_dev import install


def test_a_second_build_of_the_same_tool_waits_for_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERFLEET_CACHE", str(tmp_path))
    tool = install.TOOLS["etcd"]
    order: list[str] = []
    first_in = threading.Event()

    def build(name: str) -> None:
        with install._build_lock(tool):
            order.append(f"{name} in")
            first_in.set()
            time.sleep(0.2)
            order.append(f"{name} out")

    first = threading.Thread(target=build, args=("first",))
    first.start()
    first_in.wait(5)
    second = threading.Thread(target=build, args=("second",))
    second.start()
    first.join(5)
    second.join(5)
    assert order == ["first in", "first out", "second in", "second out"]
    assert (tmp_path / "locks" / f"etcd-{tool.version}.lock").exists()


def test_locks_of_different_tools_do_not_wait_for_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERFLEET_CACHE", str(tmp_path))
    with install._build_lock(install.TOOLS["etcd"]):
        done = threading.Event()

        def other() -> None:
            with install._build_lock(install.TOOLS["helm"]):
                done.set()

        threading.Thread(target=other).start()
        assert done.wait(5)
