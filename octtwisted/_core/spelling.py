"""
Near misses: the key a misspelled one was meant to be.

A config may hold a script's own keys, so an unknown key is allowed; but
one a letter or two away from a key of the turret (``arival_rate``,
``pacng``, ``cannon``) is almost surely that key misspelled, and gets a
warning that names both (:func:`meant`).
"""

from __future__ import annotations

from typing import Iterable


def distance(a: str, b: str) -> int:
    """
    The edit distance between ``a`` and ``b``: insertions, deletions,
    substitutions, and transpositions of two neighbours, one each
    (optimal string alignment).
    """
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[-1]


def _allowed(word: str) -> int:
    """How many edits still make a near miss of a word this long."""
    return 1 if len(word) <= 5 else 2


def meant(word: str, known: Iterable[str]) -> str | None:
    """
    The known word ``word`` is a near miss of (the nearest; the first of
    equals), or None: ``word`` is known, or none is near (at most one edit
    for words of up to 5 letters, two for longer ones; case is ignored).
    """
    known = tuple(known)
    if word in known:
        return None
    lowered = word.lower()
    best: tuple[int, str] | None = None
    for candidate in known:
        found = distance(lowered, candidate.lower())
        if found <= _allowed(candidate) and (best is None or found < best[0]):
            best = (found, candidate)
    return None if best is None else best[1]
