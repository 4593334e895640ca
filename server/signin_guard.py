"""Password sign-in that resists guessing: per account and per client address, a progressive
delay and then a temporary lockout, shared by every provider process.

Each failed password counts against the account (keyed by user id, so username and email
share one count) and against the client address; a count is forgotten after ``signin_window``
seconds without a failure. Once a key has ``delay_after`` failures in
the window, the next attempt must wait 1, 2, 4, ... seconds (at most ``signin_max_delay``);
at ``max_failures`` the key is locked for ``signin_lockout`` seconds. While a key waits or is
locked, every attempt, even with the right password, is answered exactly like a wrong one (the
password is still hashed, so the timing is the same too) and is not counted, so hammering does
not extend the lock. A success clears the account's count; the address count only ages out (an
attacker's own account must not reset it).

Counts live in the database (table ``rate_counters``), or in Redis when ``CIBA_REDIS_URL`` is set.
Passkey sign-in is not limited: it cannot be guessed, and it lets a person in while a guesser
keeps their password locked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .storage import counters

if TYPE_CHECKING:
    from .ports import ProviderCore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    delay_after: int
    max_failures: int
    window: int
    lockout: int
    max_delay: int


@dataclass(frozen=True)
class Failure:
    count: int
    blocked_until: float
    locked: bool  # this failure started a lockout


class Counters(Protocol):
    def blocked_until(self, key: str, now: float) -> float: ...

    def fail(self, key: str, now: float, policy: Policy) -> Failure: ...

    def clear(self, key: str) -> None: ...


def next_block(count: int, now: float, policy: Policy) -> tuple[float, bool]:
    """(blocked until, locked) after the ``count``-th failure in the window."""
    if count >= policy.max_failures:
        return now + policy.lockout, count == policy.max_failures
    if count >= policy.delay_after:
        return now + min(2 ** (count - policy.delay_after), policy.max_delay), False
    return 0.0, False


class DatabaseCounters:
    """Counts in the ``rate_counters`` table (row lock per key)."""

    def __init__(self, provider: "ProviderCore") -> None:
        self.p = provider

    def blocked_until(self, key: str, now: float) -> float:
        with self.p.db.session() as s:
            return counters.locked_until(s, key)

    def fail(self, key: str, now: float, policy: Policy) -> Failure:
        with self.p.db.session() as s:
            row = counters.counter(s, key, now, policy.window)
            if row.locked_until is not None and row.locked_until > now:
                return Failure(row.count, row.locked_until, False)
            row.count += 1
            row.window_start = now  # the window runs from the latest failure
            until, locked = next_block(row.count, now, policy)
            row.locked_until = until or None
            return Failure(row.count, until, locked)

    def clear(self, key: str) -> None:
        with self.p.db.session() as s:
            counters.reset(s, key)


# KEYS[1] = counter; ARGV = now, window, delay_after, max_failures, lockout, max_delay.
# Returns {count, blocked_until (string), locked (0/1)}; the same rule as next_block.
_FAIL_SCRIPT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local delay_after, max_failures = tonumber(ARGV[3]), tonumber(ARGV[4])
local lockout, max_delay = tonumber(ARGV[5]), tonumber(ARGV[6])
local h = redis.call('HMGET', KEYS[1], 'count', 'start', 'until')
local count, start, untl = tonumber(h[1]) or 0, tonumber(h[2]) or now, tonumber(h[3]) or 0
if untl > now then return {count, tostring(untl), 0} end
if start + window <= now then count = 0; start = now end
count = count + 1
start = now
local locked = 0
untl = 0
if count >= max_failures then
  untl = now + lockout
  if count == max_failures then locked = 1 end
elseif count >= delay_after then
  untl = now + math.min(2 ^ (count - delay_after), max_delay)
end
redis.call('HSET', KEYS[1], 'count', count, 'start', start, 'until', untl)
local ttl = math.max(window, untl - now, 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
return {count, tostring(untl), locked}
"""


class RedisCounters:
    """Counts in Redis hashes (``<namespace>:signin:<key>``), updated by one Lua script."""

    def __init__(self, url: str, namespace: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5)
        self._prefix = f"{namespace}:signin:"
        self._fail = self._redis.register_script(_FAIL_SCRIPT)

    def blocked_until(self, key: str, now: float) -> float:
        value = self._redis.hget(self._prefix + key, "until")
        return float(value) if value else 0.0

    def fail(self, key: str, now: float, policy: Policy) -> Failure:
        count, until, locked = self._fail(keys=[self._prefix + key], args=[
            now, policy.window, policy.delay_after, policy.max_failures, policy.lockout,
            policy.max_delay])
        return Failure(int(count), float(until), bool(locked))

    def clear(self, key: str) -> None:
        self._redis.delete(self._prefix + key)


class SigninGuard:
    """``provider.signin_guard``: asked before and told after each password check."""

    def __init__(self, provider: "ProviderCore") -> None:
        s = provider.settings
        self.clock = provider.clock
        self.account = Policy(s.signin_delay_after, s.signin_max_failures, s.signin_window,
                              s.signin_lockout, s.signin_max_delay)
        self.address = Policy(max(s.signin_delay_after, s.signin_address_max_failures // 2),
                              s.signin_address_max_failures, s.signin_window, s.signin_lockout,
                              s.signin_max_delay)
        self.counters: Counters = RedisCounters(s.redis_url, "ciba:" + provider.issuer) \
            if s.redis_url else DatabaseCounters(provider)

    def _keys(self, account: str | None, address: str | None) -> list[tuple[str, Policy, str]]:
        keys = [(f"signin:account:{account}", self.account, "account")] if account else []
        if address:
            keys.append((f"signin:address:{address}", self.address, "address"))
        return keys

    def blocked(self, account: str | None, address: str | None) -> bool:
        """True while the account (a user id) or the address must wait or is locked out."""
        now = self.clock.now()
        return any(self.counters.blocked_until(key, now) > now
                   for key, _, _ in self._keys(account, address))

    def failed(self, account: str | None, address: str | None) -> list[str]:
        """Count a failure (``account`` None: an unknown name, counted for the address only);
        the kinds ("account", "address") that this failure locked out."""
        now = self.clock.now()
        return [kind for key, policy, kind in self._keys(account, address)
                if self.counters.fail(key, now, policy).locked]

    def succeeded(self, account: str) -> None:
        self.counters.clear(f"signin:account:{account}")
