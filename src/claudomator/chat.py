"""A conversation with a model server, as values: the messages sent, the pieces and usage of a
reply, the one error every failure becomes, and reading a reply (its JSON object, the server's
``Retry-After``). No SDK here; :mod:`claudomator.llm` sends and receives them."""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict
from urllib.parse import urlsplit, urlunsplit

from claudomator.errors import ClaudomatorError

logger = logging.getLogger(__name__)

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```\s*$", re.DOTALL)


class LLMError(ClaudomatorError):
    """The model server could not be reached, refused, timed out or answered nonsense.

    ``kind`` is ``"connection"``, ``"timeout"``, ``"http"`` or ``"invalid_reply"``; ``status`` is
    the HTTP status of an ``"http"`` error and ``retry_after`` the delay the server asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class ChatMessage(TypedDict):
    """One turn of a conversation."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Usage:
    """Tokens of one completion; ``estimated`` when the server reported none (len(text)//4)."""

    input_tokens: int
    output_tokens: int
    estimated: bool = False


@dataclass(frozen=True)
class ChatDelta:
    """A piece of a streamed reply. The last one has no text and carries ``usage``."""

    text: str = ""
    usage: Usage | None = None
    model: str = ""  # the model that answered, once the server has said
    response_id: str = ""
    finish_reason: str = ""


def safe_url(url: str) -> str:
    """``url`` without user info, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def parse_json_reply(text: str) -> dict[str, Any]:
    """The JSON object in a model's reply; a ```json fence or text around the object is fine."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    candidates = [body]
    start, end = body.find("{"), body.rfind("}")
    if 0 <= start < end and (start, end) != (0, len(body) - 1):
        candidates.append(body[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise LLMError(
        f"the model did not reply with a JSON object: {text[:200]!r}", kind="invalid_reply"
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(0.0, float(email.utils.mktime_tz(parsed)) - time.time())
    return None
