"""
What the page being drawn shows, as tags the page cache checks (carecodes.page_cache).

A leaf every layer may import: a view of the content apps says what its page shows
beyond the objects it loads (``cov:<code id>``, "which policies name this code"), and
the page cache adds a tag for every content object loaded while the page is drawn.
Nothing is kept unless a page is being drawn for the cache (``collecting()``).
"""

import threading

_local = threading.local()


class Collected:
    """The tags of one page, and the newest change time among what it loaded."""

    __slots__ = ("last_modified", "tags")

    def __init__(self):
        self.tags = set()
        self.last_modified = None


def start() -> Collected:
    _local.collected = Collected()
    return _local.collected


def stop() -> Collected | None:
    collected = getattr(_local, "collected", None)
    _local.collected = None
    return collected


def collecting() -> Collected | None:
    return getattr(_local, "collected", None)


def add(*tags: str) -> None:
    """Say that the page being drawn shows what these tags name."""
    collected = getattr(_local, "collected", None)
    if collected is not None:
        collected.tags.update(tags)


def changed_at(moment) -> None:
    """A content object shown on the page last changed at ``moment``."""
    collected = getattr(_local, "collected", None)
    if collected is not None and moment is not None:
        if collected.last_modified is None or moment > collected.last_modified:
            collected.last_modified = moment
