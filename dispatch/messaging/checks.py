"""The outbox's timing must keep a live worker's claim from expiring under it.

The sweep takes back a SENDING row whose claim is older than the lease and hands it to another
worker. If a delivery can run longer than the lease, a row is taken back while its first worker
is still sending, and the message goes out twice. What bounds a delivery: the task queue kills a
task after its timeout (Q_CLUSTER["timeout"]); a send waits at most the send timeout to connect
and again for the answer, on each socket operation. Registered without a deploy flag, so every management command that runs checks
(runserver, migrate, qcluster) refuses such settings before delivering anything.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

LEASE_CHECK_ID = "dispatch.E002"
TIMEOUT_CHECK_ID = "dispatch.E003"


@register()
def outbox_timing_check(app_configs=None, **kwargs) -> list[Error]:
    timeout = settings.DISPATCH_SEND_TIMEOUT_SECONDS
    lease = settings.DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS
    if timeout <= 0:
        # urllib and smtplib read 0 as "never wait": every send would fail at once.
        return [
            Error(
                f"DISPATCH_SEND_TIMEOUT_SECONDS is {timeout}; it must be a positive number of seconds.",
                id=TIMEOUT_CHECK_ID,
            )
        ]
    task_timeout = settings.Q_CLUSTER.get("timeout") or 0
    longest = max(2 * timeout, task_timeout)
    if lease <= longest:
        # Equal is refused too: it leaves no time to ask the provider about a lost attempt, so
        # such a message would never be sent again (outbox_deliver will not start a send that
        # could outlast its claim).
        return [
            Error(
                f"DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS ({lease}) must be longer than the longest a delivery can run: "
                f"twice DISPATCH_SEND_TIMEOUT_SECONDS ({timeout}) and the task queue's timeout ({task_timeout}), "
                "or a slow delivery is taken back and sent twice.",
                hint=f"Leave DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS unset (default {longest + 30}) or raise it.",
                id=LEASE_CHECK_ID,
            )
        ]
    return []
