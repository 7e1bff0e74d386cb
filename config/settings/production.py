"""Production: refuses to start without a real SECRET_KEY and ALLOWED_HOSTS.

Run with DJANGO_SETTINGS_MODULE=config.settings.production. Development actor headers are
always off here, whatever DISPATCH_DEV_AUTH says.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env_bool, env_list

if not os.environ.get("SECRET_KEY"):
    raise ImproperlyConfigured("SECRET_KEY must be set in production.")
if not os.environ.get("ALLOWED_HOSTS"):
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production (comma separated).")

SECRET_KEY = os.environ["SECRET_KEY"]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
DEBUG = False
DISPATCH_DEV_AUTH = False
DISPATCH_AUDIT_CHAIN_KEY = os.environ.get("DISPATCH_AUDIT_CHAIN_KEY", SECRET_KEY)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
# Back-office accounts open every customer's address, phone and invoice: two-factor is on.
DISPATCH_TWO_FACTOR_REQUIRED = env_bool("DISPATCH_TWO_FACTOR_REQUIRED", True)
