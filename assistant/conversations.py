"""Conversations kept on disk: one SQLite file in the data folder, shared by every process.

Every operation opens its own short-lived connection, so one :class:`ConversationStore`
can be used from many threads (Streamlit sessions) and two processes (the app and the
CLI) can write at once: WAL lets readers proceed during a write, and appends take the
write lock before numbering the new turn so no two turns get the same position.

Only what was said is stored, never settings: key-shaped strings in a message are
redacted before they reach the disk.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from assistant.citations import cited_sources
from assistant.errors import ConversationNotFound, InvalidInput, data_dir_errors
from assistant.redaction import redact_json, redact_secrets
from assistant.schema import PaperRef, Source

DB_FILE_NAME = "conversations.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000


class ChatTurn(BaseModel):
    """One message of a conversation, with what a follow-up or an export needs from it."""

    role: Literal["user", "assistant"]
    content: str
    kind: str | None = Field(
        default=None, description="For replies: answer, comparison, summary, clarification, refusal"
    )
    papers: list[PaperRef] = Field(
        default_factory=list, description="Papers the reply discussed, in the order it cited them"
    )
    sources: list[Source] = Field(default_factory=list, description="The numbered sources that [n] in content refer to")
    result: dict[str, Any] | None = Field(default=None, description="The structured result as JSON, for re-rendering")
    created_at: datetime | None = None


class ConversationInfo(BaseModel):
    conversation_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    turn_count: int = 0


class Conversation(ConversationInfo):
    turns: list[ChatTurn] = Field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(conversation_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
CREATE INDEX IF NOT EXISTS conversations_by_title ON conversations(title);
"""


class ConversationStore:
    """Create, list, rename, delete, append to, load and export conversations."""

    @classmethod
    def in_folder(cls, data_dir: Path) -> ConversationStore:
        """The conversations kept in a data folder (``ASSISTANT_DATA_DIR``)."""
        return cls(data_dir / DB_FILE_NAME)

    def __init__(self, path: Path) -> None:
        self.path = path
        with data_dir_errors(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            # WAL is a property of the file: set once, every later connection gets it.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        with data_dir_errors(self.path.parent):
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            with self._session(connection, write=write):
                yield connection

    @staticmethod
    @contextmanager
    def _session(connection: sqlite3.Connection, *, write: bool) -> Iterator[None]:
        connection.row_factory = sqlite3.Row
        try:
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA foreign_keys=ON")
            if not write:
                yield
                return
            # IMMEDIATE takes the write lock up front, so read-then-write steps cannot interleave.
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    # --- conversations ----------------------------------------------------------------
    def create(self, title: str = "New conversation") -> ConversationInfo:
        conversation_id = uuid.uuid4().hex
        now = _now()
        with self._connect(write=True) as connection:
            connection.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?)",
                (conversation_id, self._clean_title(title), now, now),
            )
        return self.info(conversation_id)

    def find_or_create(self, title: str) -> ConversationInfo:
        """The most recently updated conversation titled ``title``, created when there is none."""
        clean = self._clean_title(title)
        with self._connect(write=True) as connection:
            row = connection.execute(
                "SELECT conversation_id FROM conversations WHERE title = ? ORDER BY updated_at DESC LIMIT 1", (clean,)
            ).fetchone()
            if row is not None:
                conversation_id = row["conversation_id"]
            else:
                conversation_id = uuid.uuid4().hex
                now = _now()
                connection.execute("INSERT INTO conversations VALUES (?, ?, ?, ?)", (conversation_id, clean, now, now))
        return self.info(conversation_id)

    def list_conversations(self) -> list[ConversationInfo]:
        """Every conversation, most recently updated first."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.conversation_id) AS turn_count "
                "FROM conversations c ORDER BY updated_at DESC"
            ).fetchall()
        return [self._info(row) for row in rows]

    def info(self, conversation_id: str) -> ConversationInfo:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.conversation_id) AS turn_count "
                "FROM conversations c WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
        if row is None:
            raise ConversationNotFound(conversation_id)
        return self._info(row)

    def rename(self, conversation_id: str, title: str) -> ConversationInfo:
        with self._connect(write=True) as connection:
            changed = connection.execute(
                "UPDATE conversations SET title = ?, updated_at = ? WHERE conversation_id = ?",
                (self._clean_title(title), _now(), conversation_id),
            ).rowcount
        if not changed:
            raise ConversationNotFound(conversation_id)
        return self.info(conversation_id)

    def delete(self, conversation_id: str) -> None:
        with self._connect(write=True) as connection:
            deleted = connection.execute(
                "DELETE FROM conversations WHERE conversation_id = ?", (conversation_id,)
            ).rowcount
        if not deleted:
            raise ConversationNotFound(conversation_id)

    # --- turns ------------------------------------------------------------------------
    def append_turn(self, conversation_id: str, turn: ChatTurn) -> ChatTurn:
        """Store ``turn`` after the conversation's last one; returns it as stored (redacted, timestamped)."""
        now = _now()
        payload = redact_json(turn.model_dump(mode="json", include={"kind", "papers", "sources", "result"}))
        content = redact_secrets(turn.content)
        with self._connect(write=True) as connection:
            if not connection.execute(
                "UPDATE conversations SET updated_at = ? WHERE conversation_id = ?", (now, conversation_id)
            ).rowcount:
                raise ConversationNotFound(conversation_id)
            (position,) = connection.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM turns WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            connection.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, position, turn.role, content, json.dumps(payload, ensure_ascii=False), now),
            )
        return ChatTurn.model_validate({**payload, "role": turn.role, "content": content, "created_at": now})

    def load(self, conversation_id: str) -> Conversation:
        info = self.info(conversation_id)
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT role, content, payload, created_at FROM turns WHERE conversation_id = ? ORDER BY position",
                (conversation_id,),
            ).fetchall()
        turns = [
            ChatTurn.model_validate(
                {
                    **json.loads(row["payload"]),
                    "role": row["role"],
                    "content": row["content"],
                    "created_at": row["created_at"],
                }
            )
            for row in rows
        ]
        return Conversation(**info.model_dump(), turns=turns)

    def export_markdown(self, conversation_id: str) -> str:
        """The conversation as Markdown; each reply is followed by the sources it cites, with links."""
        conversation = self.load(conversation_id)
        lines = [f"# {conversation.title}", "", f"_Exported {datetime.now(UTC):%Y-%m-%d %H:%M} UTC_", ""]
        for turn in conversation.turns:
            speaker = "You" if turn.role == "user" else "Assistant"
            lines += [f"**{speaker}:**", "", turn.content.strip(), ""]
            listed = cited_sources(turn.content, turn.sources)
            if listed:
                lines.append("Sources:")
                lines += [
                    f"{source.n}. [{source.title}]({source.link})" if source.link else f"{source.n}. {source.title}"
                    for source in listed
                ]
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _clean_title(title: str) -> str:
        clean = " ".join(redact_secrets(title).split())[:200]
        if not clean:
            raise InvalidInput("a conversation name cannot be empty: give it some letters")
        return clean

    @staticmethod
    def _info(row: sqlite3.Row) -> ConversationInfo:
        return ConversationInfo(
            conversation_id=row["conversation_id"],
            title=row["title"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            turn_count=row["turn_count"],
        )
