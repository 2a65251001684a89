"""An append-only JSON-lines file that survives a crash mid-write.

Each record is one line, flushed and fsynced before ``append`` returns, so a record either is in
the file whole or is not. A line cut by a crash (no trailing newline) is skipped by readers and
truncated away by the next writer, so its next append starts a clean line. The paper sessions' alert log and the
alert delivery journal are both such files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["JsonLines"]


class JsonLines:
    """Records of one file, oldest first. Cheap to construct; opens the file per call."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self, *, repair: bool = False) -> list[dict[str, Any]]:
        """Every whole record, skipping a torn last line. ``repair`` (the writer, before it appends
        again) also cuts that line off the file; a reader never truncates, since the line may be
        one a live writer is in the middle of."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        if text and not text.endswith("\n"):
            if repair:
                with self.path.open("r+", encoding="utf-8") as f:
                    f.truncate(len(text.encode("utf-8")) - len(lines[-1].encode("utf-8")))
            lines = lines[:-1]
        return [json.loads(x) for x in lines if x.strip()]

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, default=str)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
