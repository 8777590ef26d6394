"""The base of the parsers for agent CLIs that write one JSON event per stdout line.

:meth:`JsonLinesStream.feed` takes one line: a line that is no JSON object is counted in
``bad_lines`` and otherwise ignored (the agent is untrusted, and CLIs print chatter), a
``session_id`` on any event is kept, and the event goes to :meth:`on_event` of the subclass.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass
class JsonLinesStream(ABC):
    """What every JSON-lines stream has said so far; subclasses read the rest in
    :meth:`on_event`."""

    session_id: str = ""
    bad_lines: int = 0

    def feed(self, line: str) -> None:
        """Take one stdout line; non-JSON lines are counted and otherwise ignored."""
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            self.bad_lines += 1
            return
        if not isinstance(event, dict):
            self.bad_lines += 1
            return
        if isinstance(event.get("session_id"), str) and event["session_id"]:
            self.session_id = event["session_id"]
        self.on_event(event.get("type"), event)

    @abstractmethod
    def on_event(self, kind: object, event: dict[str, Any]) -> None:
        """One parsed event (``kind`` is its ``type``, whatever that is)."""
