"""JSON text from clients, decoded without surprises.

``json.loads`` fails in more ways than ``JSONDecodeError``: bytes that are not UTF-8
(``UnicodeDecodeError``), nesting deeper than the interpreter's recursion limit (``RecursionError``),
integers longer than 4,300 digits (``ValueError``). And it accepts escapes of lone UTF-16 surrogates
(``"\\ud800"``) that no store can encode later. :func:`loads` turns every one of these into a
``json.JSONDecodeError``, so a caller has exactly one failure to map (``400 invalid_json``), and the
value it returns is I-JSON (RFC 7493) as far as strings go: every string encodes to UTF-8.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: A ``\\uD800``-``\\uDFFF`` escape: the only way a lone surrogate gets into a decoded string.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def loads(text: str | bytes) -> Any:
    """Decode one JSON text; every failure is a ``json.JSONDecodeError`` (never a message with input).

    Raises
    ------
    json.JSONDecodeError
        Not UTF-8, not JSON, nested too deep, an integer too long, or a lone surrogate in a string.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise json.JSONDecodeError("not UTF-8", "", 0) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError):
        raise json.JSONDecodeError("not acceptable JSON", "", 0) from None
    if _SURROGATE_ESCAPE.search(text) and not _encodes(value):
        raise json.JSONDecodeError("lone surrogate", "", 0)
    return value


def _encodes(value: Any) -> bool:
    """Whether every string in ``value`` (keys included) encodes to UTF-8 (no lone surrogates)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True
