"""The summary of an execution: the agent's summary file, else its last ``## Summary`` section.

(One synthesised by the local model when the agent wrote none is :mod:`claudomator.summarize`'s.)
"""

from __future__ import annotations

import re
from pathlib import Path

from claudomator.protocol import read_agent_file

_HEADING = re.compile(r"^#{1,6}\s*Summary\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
_MAX = 8000


def from_text(text: str) -> str:
    """The text after the last ``## Summary`` heading, or empty if there is none."""
    matches = list(_HEADING.finditer(text))
    if not matches:
        return ""
    return text[matches[-1].end() :].strip()[:_MAX]


def read_summary(summary_file: Path, agent_text: str) -> str:
    """Summary precedence: the summary file if the agent wrote one, else the agent's text."""
    written = (read_agent_file(summary_file) or "").strip()
    return written[:_MAX] if written else from_text(agent_text)
