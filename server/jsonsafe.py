"""Parsing JSON that strangers send: bounded depth, finite numbers, one error type.

Python's ``json`` recurses once per nesting level, so ``"[" * 50_000`` raises RecursionError
(not ValueError) wherever it is parsed, and it accepts ``NaN``, ``Infinity`` and ``1e400``
(which becomes inf), which then compare false with everything. Everything the provider reads
from a request (form fields holding JSON, JSON bodies, WebSocket frames, the segments of a
compact JWS before a library parses them) goes through ``loads`` or ``compact_jws_ok`` here.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

#: Default deepest nesting of arrays and objects (CIBA_JSON_MAX_DEPTH overrides it per provider).
DEFAULT_MAX_DEPTH = 32

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


class JSONInputError(ValueError):
    """The text is not JSON we accept; the message says why, for error_description."""


def _reject_constant(name: str) -> Any:
    raise JSONInputError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError("a number is too large")
    return value


def nesting_depth(text: str) -> int:
    """Deepest nesting of ``[`` and ``{`` outside strings, without recursion."""
    if text.count("[") + text.count("{") == 0:
        return 0
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


#: Made once: json.loads builds a decoder per call when given parse_* hooks (two thirds of its
#: time on a small JWS payload). The C scanner keeps no state between calls.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def loads(text: str | bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted text; raises JSONInputError for anything it refuses."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise JSONInputError("the JSON is not UTF-8") from None
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JSONInputError(f"the JSON is nested deeper than {max_depth} levels")
    if text.startswith("\ufeff"):  # json.loads refuses a BOM; the decoder alone would not
        raise JSONInputError("the text is not valid JSON")
    try:
        return _DECODER.decode(text)
    except JSONInputError:
        raise
    except (ValueError, RecursionError):
        raise JSONInputError("the text is not valid JSON") from None


def compact_jws_ok(token: str, max_depth: int = DEFAULT_MAX_DEPTH) -> bool:
    """True when a compact JWS's header is a JSON object and its payload, if JSON, is sane.

    Run before a JOSE library parses the token, so hostile segments fail as a bad token."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = loads(_b64url(parts[0]), max_depth)
        payload = _b64url(parts[1])
        if payload.lstrip()[:1] in (b"{", b"["):
            loads(payload, max_depth)
    except (JSONInputError, binascii.Error, ValueError):
        return False
    return isinstance(header, dict)


def _b64url(segment: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", segment):
        raise binascii.Error("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def finite_number(value: Any, bound: float = 2.0 ** 53) -> bool:
    """A JSON number usable as a time: not bool, not NaN/inf, within +-bound."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and -bound < value < bound
