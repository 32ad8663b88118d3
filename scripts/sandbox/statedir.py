"""One sandbox per state folder: a lock held for the sandbox's lifetime.

``flock`` on ``<state dir>/sandbox.lock`` is released by the kernel when the process ends,
however it ends, so a crashed sandbox never leaves a folder locked. A second sandbox that
finds the lock taken stops before it writes anything there.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any

LOCK_NAME = "sandbox.lock"


class StateDirBusy(Exception):
    def __init__(self, state_dir: Path, owner: dict[str, Any]) -> None:
        who = f"the sandbox with pid {owner['pid']}" if owner.get("pid") else "another sandbox"
        where = f" (API {owner['api_url']})" if owner.get("api_url") else ""
        super().__init__(
            f"{state_dir}/ is in use by {who}{where}; stop it, or give this sandbox its own "
            f"folder with --state-dir"
        )
        self.owner = owner


class StateDirLock:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the folder, or raise :class:`StateDirBusy` naming its owner."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")  # "a+": never truncates someone's lock
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = _owner(handle.read())
            handle.close()
            raise StateDirBusy(self.state_dir, owner) from None
        self._file = handle
        self.describe()

    def describe(self, **details: Any) -> None:
        """Record who holds the lock (shown to a sandbox that is refused)."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), **details}) + "\n")
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _owner(text: str) -> dict[str, Any]:
    try:
        owner = json.loads(text)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}
