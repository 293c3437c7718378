"""Fixtures of the corpus packer's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _child_pids() -> set[int]:
    """Live child processes of this process (from /proc)."""
    me, out = os.getpid(), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


@pytest.fixture
def child_pids():
    """A function giving this process's live children: a job must leave none behind."""
    return _child_pids
