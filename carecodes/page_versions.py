"""
Content versions shared by every process that serves pages (carecodes.page_cache).

A tag names something a page shows (``code:12``, ``policy:3``, ``cov:12``). Each tag
has a version, and one counter counts every bump: bumping tags sets each of them to
the counter's next value. A cached page keeps the versions its tags had when it was
drawn and is served only while they are unchanged.

Two stores, one interface:

- ``RedisVersions`` when the cache is django-redis: the versions live in the Redis
  every app server shares, read with a stored page in one round trip (a script)
  and bumped with one script.
- ``FileVersions`` otherwise (``make run``: two gunicorn workers, each with its own
  local-memory cache): one memory-mapped file of 2**20 unsigned 64-bit slots, the
  counter in slot 0 and each tag hashed to one other slot. Two tags sharing a slot
  only make a page miss when the other changes, never serve a stale one. Reading is
  a numpy gather (microseconds); bumps take an exclusive ``flock`` on the file.
"""

import fcntl
import hashlib
import mmap
import os
import re
import zlib
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils.functional import cached_property
from redis.exceptions import NoScriptError

SLOTS = 1 << 20
COUNTER = "@counter"


class FileVersions:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with self._locked():
            if os.fstat(self._fd).st_size < SLOTS * 8:
                os.ftruncate(self._fd, SLOTS * 8)
        self._map = mmap.mmap(self._fd, SLOTS * 8)
        self._slots = np.frombuffer(self._map, dtype=np.uint64)

    def _locked(self):
        return _FileLock(self._fd)

    @staticmethod
    def keys(tags) -> np.ndarray:
        """Where each tag's version lives; kept with a cached page."""
        return np.fromiter(
            (1 + zlib.crc32(tag.encode()) % (SLOTS - 1) for tag in tags),
            dtype=np.int64,
        )

    def counter(self) -> int:
        return int(self._slots[0])

    def lookup(self, key):
        """The page stored under ``key`` and its tags' current versions, or Nones."""
        entry = cache.get(key)
        if entry is None:
            return None, None
        return entry, self.read(entry.keys)

    @staticmethod
    def keep(key, entry, timeout):
        cache.set(key, entry, timeout)

    def read(self, keys) -> np.ndarray:
        return self._slots[keys]

    @staticmethod
    def newest(versions) -> int:
        return int(versions.max()) if len(versions) else 0

    @staticmethod
    def same(stored, current) -> bool:
        return bool(np.array_equal(stored, current))

    def bump(self, tags) -> int:
        keys = self.keys(tags)
        with self._locked():
            value = self._slots[0] + np.uint64(1)
            self._slots[0] = value
            self._slots[keys] = value
        return int(value)


class _FileLock:
    def __init__(self, fd):
        self.fd = fd

    def __enter__(self):
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)


# Beside a stored page (RedisVersions.keep): its version keys, one per line.
LISTED = ":versions"

# The current versions of the keys listed beside a stored page; nothing when the list
# is missing (expired, or the cache was cleared).
LOOKUP_SCRIPT = """
local listed = redis.call('GET', KEYS[1])
if not listed then
  return false
end
local keys = {}
for key in string.gmatch(listed, '[^\\n]+') do
  keys[#keys + 1] = key
end
if #keys == 0 then
  return {}
end
return redis.call('MGET', unpack(keys))
"""

# Counts a bump and sets each tag's version to it, atomically.
BUMP_SCRIPT = """
local value = redis.call('INCR', KEYS[1])
for tag in string.gmatch(ARGV[2], '[^\\n]+') do
  redis.call('SET', ARGV[1] .. tag, value)
end
return value
"""


class RedisVersions:
    def __init__(self):
        from django_redis import get_redis_connection

        self._redis = get_redis_connection("default")
        # The cache's own key for "pcv:" (prefix and version), once: 40,000 calls
        # to make_key cost more than the MSET they feed.
        self._prefix = cache.make_key("pcv:")
        self._counter = self._prefix + COUNTER

    def keys(self, tags) -> list[str]:
        return [self._prefix + tag for tag in tags]

    def counter(self) -> int:
        return int(self._redis.get(self._counter) or 0)

    def lookup(self, key):
        """
        The page stored under ``key`` and its tags' current versions, or Nones, in
        one round trip: a pipeline of the page's GET and a script that reads the
        version keys kept beside the page and their versions. (A GET then an MGET
        took two round trips; a script returning the page too copied it through
        Lua, 52 us a call on the server.)
        """
        page = cache.make_key(key)
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(page)
            # By its digest: a Script in a pipeline asks SCRIPT EXISTS first, a
            # second round trip.
            pipe.evalsha(self._lookup_digest, 1, page + LISTED)
            try:
                raw, current = pipe.execute()
            except NoScriptError:
                # The server lost its scripts (a restart): load it again; a miss.
                del self._lookup_digest
                return None, None
        if raw is None or current is None:
            return None, None
        return cache.client.decode(raw), current

    def keep(self, key, entry, timeout):
        # The page and its version keys together (MULTI/EXEC): a lookup never pairs
        # one page with another drawing's keys.
        page = cache.make_key(key)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(page, cache.client.encode(entry), ex=timeout)
            pipe.set(page + LISTED, "\n".join(entry.keys), ex=timeout)
            pipe.execute()

    def read(self, keys) -> list:
        return self._redis.mget(keys) if keys else []

    @staticmethod
    def newest(versions) -> int:
        return max((int(value) for value in versions if value), default=0)

    @staticmethod
    def same(stored, current) -> bool:
        return stored == current

    def bump(self, tags) -> int:
        # One round trip however many tags (a policy range reaches ~40,000 codes),
        # the tags sent as one string: redis-py took 0.48 s to pack the 80,000
        # arguments of an MSET of 40,000 keys, this takes a tenth of that.
        return int(
            self._bump(args=[self._prefix, "\n".join(tags)], keys=[self._counter])
        )

    @cached_property
    def _bump(self):
        return self._redis.register_script(BUMP_SCRIPT)

    @cached_property
    def _lookup_digest(self):
        return self._redis.script_load(LOOKUP_SCRIPT)


_stores: dict = {}


def store():
    """The version store for this database and cache (one per process and name)."""
    name = str(connection.settings_dict["NAME"])
    if "memory" in name:
        # An in-memory SQLite database (the tests') lives in one process only; two
        # test runs at once must not share versions under its one name.
        name = f"{name}-{os.getpid()}"
    if _uses_redis():
        key = ("redis", name, cache.key_prefix)
        if key not in _stores:
            _stores[key] = RedisVersions()
        return _stores[key]
    key = ("file", name)
    if key not in _stores:
        _stores[key] = FileVersions(version_file(name))
        if "memory" in name:
            # No other process can see this database: the mapping is enough.
            _stores[key].path.unlink(missing_ok=True)
    return _stores[key]


def _uses_redis() -> bool:
    return settings.CACHES["default"]["BACKEND"].startswith("django_redis.")


def version_file(database_name: str) -> Path:
    """One file per database, so test databases and parallel runs share none."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(database_name).name)[:40]
    digest = hashlib.sha1(database_name.encode()).hexdigest()[:10]
    return Path(settings.PAGE_CACHE_VERSIONS_DIR) / f"{readable}-{digest}.versions"
