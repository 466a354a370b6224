"""Rate limits: job-creating POSTs per credential, and authentication failures per client address.

Counters live in the default cache (Redis when REDIS_URL is set, so every server process
shares them). When that cache is unreachable the limits step aside rather than fail the
request: the job limit still bounds the work, and the enqueue answers 503 by itself.
"""
import logging

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

from sparkexport.metrics import auth_failure_count

logger = logging.getLogger(__name__)


class JobCreateThrottle(SimpleRateThrottle):
    """POSTs that create jobs, per tenant credential (API key or user)."""

    scope = "job_create"

    def get_rate(self):
        # Read at use, not at import as DRF does, so the rate follows settings.
        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except RedisError as exc:
            logger.warning("rate limit skipped, cache unreachable: %s", exc)
            return True

    def get_cache_key(self, request, view):
        caller = getattr(request, "caller", None)
        if request.method != "POST" or caller is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"{caller.tenant.pk}:{caller.credential_id}"}


class AuthFailureLimiter:
    """Counts failed authentications per client address; past the limit they answer 429."""

    scope = "auth_failure"

    def __init__(self):
        self.limit, self.period = SimpleRateThrottle.parse_rate(
            None, settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]
        )

    def _key(self, request) -> str:
        return f"throttle_{self.scope}_{request.META.get('REMOTE_ADDR', 'unknown')}"

    def record_failure(self, request, scheme: str) -> None:
        """Count one failure of `scheme` (in the metrics too); raise Throttled once the address
        is over its limit."""
        auth_failure_count(scheme)
        key = self._key(request)
        try:
            cache.add(key, 0, timeout=self.period)
            try:
                failures = cache.incr(key)
            except ValueError:  # the counter expired between add and incr
                cache.set(key, 1, timeout=self.period)
                failures = 1
        except RedisError as exc:
            logger.warning("auth failure not counted, cache unreachable: %s", exc)
            return
        if failures > self.limit:
            raise Throttled(
                wait=self.period,
                detail=(
                    f"Too many failed authentications from this address ({failures} in "
                    f"{self.period} s). Check your credentials and retry later."
                ),
            )
