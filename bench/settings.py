"""Settings of the benchmark server: production settings plus the bench's reference views.

Only `bench/toolset.py` uses this module; nothing in the product imports it.
"""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# The bench drives plain HTTP on loopback: no redirect to HTTPS.
SECURE_SSL_REDIRECT = False
