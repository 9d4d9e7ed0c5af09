"""Code tokens for lexical models: identifier parts and numbers, lower-cased."""

from __future__ import annotations

import re

_SUBWORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
"""One identifier part: an acronym (``HTTP`` in ``HTTPServer``), a word with at most one leading capital, or
digits. Everything else (``_``, operators, spaces, non-ASCII) separates parts, so one pass over the text splits
``snake_case`` and ``camelCase`` alike."""


def code_tokens(text: str) -> list[str]:
    """Lower-cased identifier parts and numbers, so ``readBuffer`` and ``read_buffer`` match.

    Example:
        >>> code_tokens("int readBuffer(char *read_buf, int n2) { return 0x1F; }")
        ['int', 'read', 'buffer', 'char', 'read', 'buf', 'int', 'n', '2', 'return', '0', 'x', '1', 'f']
        >>> code_tokens("HTTPServer parseURL2")
        ['http', 'server', 'parse', 'url', '2']
    """
    return [part.lower() for part in _SUBWORD.findall(text)]
