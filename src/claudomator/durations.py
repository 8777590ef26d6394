"""Durations written by people: ``90``, ``"90s"``, ``"10m"``, ``"1h30m"``, ``"2d"``; and read
by them (:func:`format_duration`)."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Seconds in ``value``; raise ``ValueError`` naming the accepted forms otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90, '90s', '10m' or '1h30m', got a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and _PART.sub("", text) == "" and re.fullmatch(rf"(?:{_PART.pattern})+", text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ValueError(
                f"invalid duration {value!r}: use seconds or a number with a unit "
                "(ms, s, m, h, d), e.g. '90s', '10m', '1h30m'"
            )
    else:
        raise ValueError(f"expected a duration such as '10m', got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(
            f"duration must be positive and finite, got {value!r}; use seconds or a number "
            "with a unit, e.g. '90s', '10m', '1h30m'"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` as people read it: ``"0s"``, ``"45s"``, ``"1m12s"``, ``"2h05m"``, ``"3d4h"``
    (whole seconds; the two largest units from a minute on)."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"
