"""Request bodies refused before they are parsed: JSON nested deeper than `MAX_DEPTH`.

Python's JSON parser recurses once per level and fails (RecursionError, a 500) near a
thousand levels; `[` x 100,000 is 100 kB, well under the size limit. So a JSON body is
measured first. A body with at most `MAX_DEPTH` brackets cannot be deeper (one C-speed count
decides that for ordinary bodies); otherwise a scan that skips strings follows the depth
and stops as soon as it passes the limit.
"""

from __future__ import annotations

import re

MAX_DEPTH = 64  # the deepest body any route takes is under 10 levels
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPEN = frozenset(b"[{")


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(body):
        token = match.group()
        if len(token) != 1:
            continue  # a string: brackets inside it do not nest
        if token[0] in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
