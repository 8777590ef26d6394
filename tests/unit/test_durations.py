"""Durations written by people."""

from __future__ import annotations

import math

import pytest

from claudomator.durations import format_duration, parse_duration

FORMS = r"ms, s, m, h, d"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (2.5, 2.5),
        ("90", 90.0),
        ("0.5", 0.5),
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("500ms", 0.5),
        ("1d2h3m4s", 86400 + 7200 + 180 + 4.0),
        ("1m500ms", 60.5),
        ("  10m  ", 600.0),
        ("1h 30m", 5400.0),
        ("\t45s\n", 45.0),
    ],
)
def test_accepted(value: object, seconds: float) -> None:
    result = parse_duration(value)
    assert isinstance(result, float)
    assert result == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "10x", "-5", "m10", "10mm", "h", "1h30", "ten", "10 minutes", "1,5h", "10M"],
)
def test_rejects_bad_text_naming_the_accepted_forms(value: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(value)
    message = str(info.value)
    assert repr(value) in message
    assert FORMS in message
    assert "'10m'" in message
    assert "'1h30m'" in message


@pytest.mark.parametrize("value", [0, 0.0, -5, -0.5, "0", "0s", "0m0s"])
def test_rejects_zero_and_negative(value: object) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_rejects_booleans(value: bool) -> None:
    # bool is an int subclass: True would otherwise be one second
    with pytest.raises(ValueError, match="boolean") as info:
        parse_duration(value)
    assert "'10m'" in str(info.value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [([10], "list"), (None, "NoneType"), ({"m": 10}, "dict"), (b"10m", "bytes")],
)
def test_rejects_other_types(value: object, kind: str) -> None:
    with pytest.raises(ValueError, match=f"got {kind}") as info:
        parse_duration(value)
    assert "'10m'" in str(info.value)


def test_rejects_nan() -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(math.nan)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-3, "0s"),
        (0.4, "0s"),
        (45, "45s"),
        (59.6, "1m00s"),
        (72, "1m12s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (7500, "2h05m"),
        (86400 + 4 * 3600 + 59, "1d4h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
