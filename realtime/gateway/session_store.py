"""
The session engine (`SESSION_ENGINE = "realtime.gateway.session_store"`):
Django's `cached_db` (the database is the record, a cache in front of it: Redis
when `REDIS_URL` is set, this process's memory otherwise), so that a WebSocket
handshake reads its session at memory speed (issue 12), with two changes that
keep a cache from ever letting an ended session in:

- An ended session leaves the cache before the database: when the cache cannot
  be reached, the logout fails (and can be retried) rather than leaving a cached
  copy that would sign in a session the database no longer has.
- A cache that cannot be reached is read around, never trusted: reads go to the
  database and the failed write-back is ignored.

A socket's later checks (`sessions.session_still_valid`) read the database
itself, so logouts, expiries, password changes and deactivations close sockets
with 4401 exactly as before.
"""

import logging

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.contrib.sessions.backends.db import SessionStore as DBStore

logger = logging.getLogger(__name__)


class SessionStore(CachedDBStore):
    cache_key_prefix = "realtime.session."

    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception:
            data = None
        if data is not None:
            return data
        row = self._get_session_from_db()
        if not row:
            return {}
        data = self.decode(row.session_data)
        try:
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=row.expire_date))
        except Exception:
            logger.warning("session cache unreachable; read the session from the database")
        return data

    async def aload(self):
        try:
            data = await self._cache.aget(await self.acache_key())
        except Exception:
            data = None
        if data is not None:
            return data
        row = await self._aget_session_from_db()
        if not row:
            return {}
        data = self.decode(row.session_data)
        try:
            expiry_age = await self.aget_expiry_age(expiry=row.expire_date)
            await self._cache.aset(await self.acache_key(), data, expiry_age)
        except Exception:
            logger.warning("session cache unreachable; read the session from the database")
        return data

    def exists(self, session_key):
        # The database holds every session: a cache that cannot be reached must
        # not fail a sign-in.
        return DBStore.exists(self, session_key)

    async def aexists(self, session_key):
        return await DBStore.aexists(self, session_key)

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        # The cache first: a failure here raises before the database forgets the
        # session, so no cached copy can outlive it.
        self._cache.delete(self.cache_key_prefix + session_key)
        DBStore.delete(self, session_key)

    async def adelete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        await self._cache.adelete(self.cache_key_prefix + session_key)
        await DBStore.adelete(self, session_key)
