"""SQLite persistence for the Segment emulator: accepted messages, seen messageIds and
profiles (traits merged per user, identities linking anonymousId/email to a profile).

One connection shared by the server threads behind a lock: simple, and SQLite serialises
writes anyway. ``db_path=None`` keeps everything in memory for the emulator's lifetime.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    user_id TEXT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (message_id);
CREATE TABLE IF NOT EXISTS profiles (
    profile TEXT PRIMARY KEY,
    traits TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS identities (
    id_type TEXT NOT NULL,
    id_value TEXT NOT NULL,
    profile TEXT NOT NULL,
    PRIMARY KEY (id_type, id_value)
);
CREATE TABLE IF NOT EXISTS purchases (
    profile TEXT NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (profile, item_id)
);
"""
# Segment's computed traits stop growing at 10,000 values.
MAX_UNIQUE_LIST = 10_000


class SegmentStore:
    def __init__(self, db_path: str | Path | None = None) -> None:
        target = ":memory:" if db_path is None else str(db_path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(target, check_same_thread=False)
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- messages ----------------------------------------------------------------------------

    def add_message(self, message: dict[str, Any]) -> bool:
        """Store an accepted message; False if its messageId was seen before (dropped)."""
        with self._lock:
            try:
                with self._db:
                    self._db.execute(
                        "INSERT INTO messages (message_id, type, user_id, body) "
                        "VALUES (?, ?, ?, ?)",
                        (
                            str(message["messageId"]),
                            str(message.get("type")),
                            _str_or_none(message.get("userId")),
                            json.dumps(message, sort_keys=True),
                        ),
                    )
            except sqlite3.IntegrityError:
                return False
            return True

    def messages(self, type: str | None = None, user_id: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT body FROM messages WHERE 1=1"
        params: list[str] = []
        if type is not None:
            query += " AND type = ?"
            params.append(type)
        if user_id is not None:
            query += " AND user_id = ?"
            params.append(user_id)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", params).fetchall()
        return [json.loads(body) for (body,) in rows]

    def message_count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()
        return int(count)

    # -- profiles ----------------------------------------------------------------------------

    def user_ids(self) -> list[str]:
        """Every user id that has a profile, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id_value FROM identities WHERE id_type = 'user_id' ORDER BY id_value"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def resolve(self, id_type: str, id_value: str) -> str | None:
        with self._lock:
            return self._resolve(id_type, id_value)

    def _resolve(self, id_type: str, id_value: str) -> str | None:
        row = self._db.execute(
            "SELECT profile FROM identities WHERE id_type = ? AND id_value = ?", (id_type, id_value)
        ).fetchone()
        return str(row[0]) if row else None

    def ensure_profile(self, user_id: str | None, anonymous_id: str | None) -> str:
        """The profile for these ids, created or stitched as needed (anonymous traits and
        purchases move to the user's profile the first time both ids arrive together)."""
        with self._lock, self._db:
            user_profile = self._resolve("user_id", user_id) if user_id else None
            anon_profile = self._resolve("anonymous_id", anonymous_id) if anonymous_id else None
            if user_id and user_profile is None:
                user_profile = f"user:{user_id}"
                self._link("user_id", user_id, user_profile)
                self._db.execute(
                    "INSERT OR IGNORE INTO profiles (profile, traits) VALUES (?, '{}')",
                    (user_profile,),
                )
            if user_profile and anon_profile and anon_profile != user_profile:
                self._merge(anon_profile, into=user_profile)
            profile = user_profile or anon_profile
            if profile is None:
                profile = f"anon:{anonymous_id}"
                self._db.execute(
                    "INSERT OR IGNORE INTO profiles (profile, traits) VALUES (?, '{}')", (profile,)
                )
            if anonymous_id:
                self._link("anonymous_id", anonymous_id, profile)
            return profile

    def _link(self, id_type: str, id_value: str, profile: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO identities (id_type, id_value, profile) VALUES (?, ?, ?)",
            (id_type, id_value, profile),
        )

    def _merge(self, source: str, into: str) -> None:
        source_traits = self._traits(source) or {}
        target_traits = self._traits(into) or {}
        self._write_traits(into, {**source_traits, **target_traits})
        self._db.execute(
            "INSERT OR IGNORE INTO purchases (profile, item_id) "
            "SELECT ?, item_id FROM purchases WHERE profile = ?",
            (into, source),
        )
        self._db.execute("DELETE FROM purchases WHERE profile = ?", (source,))
        self._db.execute("UPDATE identities SET profile = ? WHERE profile = ?", (into, source))
        self._db.execute("DELETE FROM profiles WHERE profile = ?", (source,))

    def merge_traits(self, profile: str, traits: dict[str, Any]) -> None:
        """Shallow merge, as Segment does: a trait sent again replaces the old value."""
        with self._lock, self._db:
            current = self._traits(profile) or {}
            current.update(traits)
            self._write_traits(profile, current)
            email = traits.get("email")
            if isinstance(email, str) and email:
                self._link("email", email.lower(), profile)

    def add_purchases(self, profile: str, item_ids: Iterable[str]) -> None:
        with self._lock, self._db:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM purchases WHERE profile = ?", (profile,)
            ).fetchone()
            for item in item_ids:
                if count >= MAX_UNIQUE_LIST:
                    break
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO purchases (profile, item_id) VALUES (?, ?)",
                    (profile, item),
                )
                count += cursor.rowcount

    def purchases(self, profile: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT item_id FROM purchases WHERE profile = ?", (profile,)
            ).fetchall()
        return sorted(str(item) for (item,) in rows)

    def traits(self, profile: str) -> dict[str, Any] | None:
        with self._lock:
            return self._traits(profile)

    def _traits(self, profile: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT traits FROM profiles WHERE profile = ?", (profile,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def _write_traits(self, profile: str, traits: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO profiles (profile, traits) VALUES (?, ?) "
            "ON CONFLICT(profile) DO UPDATE SET traits = excluded.traits",
            (profile, json.dumps(traits, sort_keys=True)),
        )


def _str_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        return str(value)
    return None
