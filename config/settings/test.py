"""Test settings: fast hashing, in-memory email, synchronous queue unless a test says otherwise."""

from .base import *  # noqa: F403
from .base import DATABASES, Q_CLUSTER

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DISPATCH_AUTH_JWT_SECRET = "test-jwt-secret-of-sufficient-length-0123456789"
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
# One process per test run: an in-memory cache keeps rate limits from leaking across test runs.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    "limits": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "limits"},
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": None}
# The queue runs synchronously here: the autopilot would act inside every other test's changes.
# Its own tests run it by hand (autopilot_pass) or turn the nudges back on.
DISPATCH_AUTOPILOT_NUDGES = False
# The evening re-plan runs in the tests that ask for it, not in every pass a test makes after 16:00.
DISPATCH_AUTOPILOT_EVENING_PLAN = False
