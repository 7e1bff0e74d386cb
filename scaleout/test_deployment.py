"""Scale-out, proven on one machine: two web processes and two worker clusters sharing only
PostgreSQL, Redis and S3 (see scaleout/deployment.py), driven over HTTP, in this order:

1. /health on both web processes names the database, the broker and the storage.
2. The canonical emergency chain, every step on the other web process than the one before;
   photos uploaded through one process are read back through the other (S3).
3. 200 signed inbound text messages, half to each process, 10% redelivered to the other one
   at the same moment: each stored once, one ticket per conversation.
4. A worker cluster killed with SIGKILL while Twilio holds its send open, then started again.
5. Redis stopped for 10 seconds while both web processes keep taking requests.
6. The outbox drains: every message delivered exactly once, the killed worker's message
   recorded with the sid Twilio gave it, not sent a second time.
7. Scheduled jobs ran once per period, not once per worker cluster.
8. S3 unreachable: an upload fails with a clear 503 and nothing is stored.
9. The audit chains verify, and no web process answered a 5xx it was not meant to.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests

from bench.common import CHECKLIST_DONE
from scaleout.clients import Browser, api, jpeg, twilio_post, twilio_text
from scaleout.conftest import TECH_PASSWORD
from scaleout.deployment import BUCKET, CLAIM_LEASE_SECONDS, wait_until

# What the run expects to see as 503 in the access logs: the storage outage drill's requests.
EXPECTED_UNAVAILABLE: list[str] = []
# What a web process logs when a request crashes it: Django's 500, gunicorn's worker trouble.
CRASH = re.compile(r"Internal Server Error|Error handling request|WORKER TIMEOUT")
# Facts one step leaves for a later one.
story: dict = {}


def health(base: str) -> requests.Response:
    return requests.get(base + "/health", timeout=10)


# --- 1 --------------------------------------------------------------------------------------


def test_both_web_processes_report_the_database_the_broker_and_the_storage_reachable(deployment):
    for base in deployment.web_urls:
        answer = health(base)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["database"] == {"vendor": "postgresql", "reachable": True}
        assert body["broker"]["backend"] == "redis" and body["broker"]["reachable"] is True
        assert body["storage"]["backend"] == "s3" and body["storage"]["reachable"] is True


# --- 2 --------------------------------------------------------------------------------------


def test_the_emergency_chain_runs_across_both_web_processes_with_its_photos_on_s3(deployment, company, webs):
    from dispatch.closeout.models import Evidence
    from dispatch.tickets.models import Ticket

    tokens = company.tokens
    created = ticket_create(webs.next(), company, "Storefront door cannot be locked")
    assert created.status_code == 201, created.text
    ticket_id = created.json()["id"]
    path = f"/api/v1/tickets/{ticket_id}"
    steps = [
        (
            "dispatcher",
            "/triage",
            {"priority": "EMERGENCY", "incident_type": "CANNOT_SECURE_ENTRY", "nte_cents": 75000},
        ),
        (
            "dispatcher",
            "/assignment/dispatch",
            {
                "tech_id": company.technician_id,
                "dispatch_mode": "EMERGENCY_BYPASS",
                "dispatch_rationale": "Store cannot be secured overnight.",
                "dispatch_confirmation": True,
            },
        ),
        ("tech", "/tech/check-in", {"timestamp": _now_iso(), "location": {"lat": 37.8044, "lng": -122.2711}}),
    ]
    for role, suffix, body in steps:
        token = company.technician_token if role == "tech" else tokens[role]
        answer = api(webs.next(), "POST", path + suffix, token, body)
        assert answer.status_code == 200, (suffix, answer.text)

    # The technician's phone signs in on one process and uploads there; the other serves it back.
    phone = Browser()
    upload_web, read_web = deployment.web_urls
    phone.sign_in(upload_web, company.technician_username, TECH_PASSWORD)
    photos = {
        "photo_before_security_risk": jpeg((180, 40, 40)),
        "photo_after_temporary_or_permanent_securement": jpeg((40, 160, 60)),
    }
    for key, data in photos.items():
        answer = phone.act(upload_web, ticket_id, "photo", {"evidence_key": key}, files={"file": (f"{key}.jpg", data)})
        assert answer.status_code == 200 and answer.json()["ok"], answer.text
    for kind, key, extra in (
        ("NOTE", "note_risk_mitigation_and_customer_handoff", {"uri": f"s3://{BUCKET}/notes/{ticket_id}.txt"}),
        ("SIGNATURE", "signature_or_no_signature_reason", {"uri": f"s3://{BUCKET}/signatures/{ticket_id}.png"}),
    ):
        answer = api(
            webs.next(),
            "POST",
            path + "/evidence",
            company.technician_token,
            {"kind": kind, "evidence_key": key, **extra},
        )
        assert answer.status_code == 201, answer.text

    stored = list(Evidence.objects.filter(ticket_id=ticket_id, kind="PHOTO").order_by("created_at"))
    assert [item.evidence_key for item in stored] == list(photos)
    bucket_keys = _bucket_keys(deployment)
    for item in stored:
        assert item.file.name in bucket_keys and item.metadata["thumbnail"] in bucket_keys
        original = deployment.s3.client().get_object(Bucket=BUCKET, Key=item.file.name)["Body"].read()
        assert original == photos[item.evidence_key]
        # Read back through the process that did not take the upload.
        thumbnail = phone.request("GET", f"{read_web}/tech/jobs/{ticket_id}/evidence/{item.id}/thumbnail/")
        assert thumbnail.status_code == 200, thumbnail.text[:300]
        stored_thumbnail = deployment.s3.client().get_object(Bucket=BUCKET, Key=item.metadata["thumbnail"])
        assert thumbnail.content == stored_thumbnail["Body"].read()

    finish = [
        ("tech", "/tech/complete", {"checklist_status": CHECKLIST_DONE}),
        ("qa", "/qa/verify", {"timestamp": _now_iso(), "result": "PASS"}),
        ("finance", "/billing/generate-invoice", {}),
        ("dispatcher", "/close", {"reason": "Secured and invoiced."}),
    ]
    for role, suffix, body in finish:
        token = company.technician_token if role == "tech" else tokens[role]
        answer = api(webs.next(), "POST", path + suffix, token, body)
        assert answer.status_code == 200, (suffix, answer.text)
    assert Ticket.objects.get(pk=ticket_id).state == "CLOSED"
    # The closeout packet is compiled by a worker (whichever cluster takes it) into S3.
    from dispatch.closeout.models import CloseoutPacket

    packet = wait_until(
        lambda: CloseoutPacket.objects.filter(ticket_id=ticket_id).exclude(pdf_file="").first(),
        timeout=60,
        what="the closeout packet's PDF rendered by a worker",
    )
    assert packet.pdf_file.name in _bucket_keys(deployment)


# --- 3 --------------------------------------------------------------------------------------

MESSAGES = 200
REDELIVERED = 20


def test_two_hundred_signed_texts_half_to_each_process_are_stored_once_with_one_ticket_per_sender(deployment):
    from dispatch.intake.models import Conversation, InboundMessage

    # Twilio answers a little slowly from here on, so deliveries are in flight when step 4 kills one.
    deployment.twilio.delay = 0.15
    texts = [_text(index) for index in range(MESSAGES)]
    sends = []
    for index, text in enumerate(texts):
        sends.append((deployment.web_urls[index % 2], text))
        if index % (MESSAGES // REDELIVERED) == 0:
            # Redelivered to the other process, handed to the pool right after the original, so
            # both are in flight at once.
            sends.append((deployment.web_urls[(index + 1) % 2], text))
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda send: twilio_post(*send).status_code, sends))
    assert statuses == [200] * (MESSAGES + REDELIVERED)

    sids = [text["MessageSid"] for text in texts]
    stored = InboundMessage.objects.filter(channel="SMS", provider_message_id__in=sids)
    assert stored.count() == MESSAGES
    per_sender = {}
    for sender, ticket_id in stored.values_list("sender_phone", "ticket_id"):
        per_sender.setdefault(sender, set()).add(ticket_id)
    assert len(per_sender) == MESSAGES
    assert all(len(tickets) == 1 and None not in tickets for tickets in per_sender.values())
    assert Conversation.objects.filter(customer_phone__in=list(per_sender)).count() == MESSAGES
    story["texts"] = texts


# --- 4 --------------------------------------------------------------------------------------


def test_a_worker_killed_mid_send_is_started_again(deployment, webs):
    hold = deployment.twilio.hold_next()
    # The next message Twilio takes is held open: step 3's replies if some are still going out,
    # else the reply to this text.
    assert twilio_post(webs.next(), _text(MESSAGES + 999)).status_code == 200
    story["extra_texts"] = [_text(MESSAGES + 999)]
    assert hold.arrived.wait(timeout=60), "no delivery reached Twilio"
    held = hold.request
    sender = [index for index, worker in enumerate(deployment.workers) if worker.owns_connection_from(held.client_port)]
    assert len(sender) == 1, "the held send's connection belongs to exactly one worker cluster"
    index = sender[0]
    deployment.workers[index].kill()
    hold.release()
    from django.utils import timezone

    story["killed_at"] = timezone.now()
    restarted = deployment.worker_restart(index)
    story.update(held_sid=held.sid, held_to=held.form["To"], held_body=held.form["Body"], restarted=restarted)
    assert restarted.running


# --- 5 --------------------------------------------------------------------------------------


def test_web_requests_succeed_while_redis_is_down_for_ten_seconds(deployment, company, webs):
    deployment.redis.stop()
    down_at = time.monotonic()
    texts, answers = [], []
    for round_ in range(10):
        # A text and a new ticket a second, to alternate processes, for ten seconds.
        text = _text(MESSAGES + round_)
        texts.append(text)
        answers.append(twilio_post(webs.next(), text).status_code)
        answers.append(ticket_create(webs.next(), company, "Gate sensor beeping").status_code)
        time.sleep(max(0.0, down_at + round_ + 1 - time.monotonic()))
    deployment.redis.start()
    assert answers == [200, 201] * 10
    story["outage_texts"] = texts


# --- 6 --------------------------------------------------------------------------------------


def test_the_outbox_drains_with_every_message_delivered_exactly_once(deployment):
    from dispatch.intake.models import InboundMessage
    from dispatch.messaging.models import OutboundMessage

    senders = [text["From"] for text in story["texts"] + story["extra_texts"] + story["outage_texts"]]
    # Every text the web processes took, during the outage too, got its answer queued.
    assert InboundMessage.objects.filter(sender_phone__in=senders).count() == len(senders)

    def drained():
        return not OutboundMessage.objects.exclude(status="SENT").exists()

    wait_until(drained, timeout=150, every=1, what="every outbound message sent")
    sent = list(OutboundMessage.objects.filter(channel="SMS").values("recipient", "body", "provider_message_id"))
    replied_to = {row["recipient"] for row in sent}
    assert set(senders) <= replied_to

    posts: dict[tuple[str, str], int] = {}
    for request in deployment.twilio.sent:
        key = (request.form["To"], request.form["Body"])
        posts[key] = posts.get(key, 0) + 1
    twice = {key: count for key, count in posts.items() if count > 1}
    assert not twice, f"sent more than once: {twice}"
    assert sorted(posts) == sorted((row["recipient"], row["body"]) for row in sent)
    by_sid = {request.sid for request in deployment.twilio.sent}
    assert {row["provider_message_id"] for row in sent} == by_sid

    # The message whose worker was killed is recorded with the sid Twilio gave the first send,
    # and it was not left waiting: a lease and a sweep or two after the kill.
    held = OutboundMessage.objects.get(recipient=story["held_to"], body=story["held_body"])
    assert held.provider_message_id == story["held_sid"]
    # After the kill: the lease runs out, the next sweep (every minute, looked at every 30 s)
    # takes the row back, and the retry finds the message at Twilio.
    recorded_after = held.sent_at - story["killed_at"]
    assert recorded_after < timedelta(seconds=CLAIM_LEASE_SECONDS + 100), recorded_after
    # Both clusters delivered (each logs every task it processed, before and after a restart),
    # and the restarted one is still up, taking tasks from the same queue.
    for worker in deployment.workers:
        logs = deployment.directory.glob(f"{worker.name.split('+')[0]}*.log")
        delivered = sum(path.read_text().count("Processed 'dispatch.messaging.tasks.outbox_deliver'") for path in logs)
        assert delivered > 0, f"{worker.name} delivered nothing"
        assert worker.running


# --- 7 --------------------------------------------------------------------------------------


def test_each_scheduled_job_ran_once_per_period_not_once_per_worker_cluster(deployment):
    from django_q.models import Schedule, Task

    schedules = list(Schedule.objects.all())
    assert len(schedules) >= 3

    def every_schedule_ran_twice() -> bool:
        return all(Task.objects.filter(group=schedule.name).count() >= 2 for schedule in schedules)

    wait_until(every_schedule_ran_twice, timeout=120, every=2, what="every schedule's second period")
    for schedule in schedules:
        schedule.refresh_from_db()
        runs = sorted(Task.objects.filter(group=schedule.name).values_list("started", flat=True))
        # A schedule's periods are whole minutes from its next run; each run belongs to the period
        # it fell due in (it starts within one scheduler look, every 30 s, of falling due). Had
        # each cluster run it, two runs would share a period.
        periods = [math.floor((started - schedule.next_run).total_seconds() / 60) for started in runs]
        assert len(set(periods)) == len(periods), f"{schedule.name} ran twice in one period: {runs}"


# --- 8 --------------------------------------------------------------------------------------


def test_an_upload_while_s3_is_unreachable_fails_clearly_and_stores_nothing(deployment, company, webs):
    from dispatch.closeout.models import Evidence
    from dispatch.tickets.models import AuditEvent

    created = ticket_create(webs.next(), company, "Door closer leaking")
    ticket_id = created.json()["id"]
    keys_before = _bucket_keys(deployment)
    events_before = AuditEvent.objects.filter(ticket_id=ticket_id).count()

    deployment.s3.stop()
    try:
        for base in deployment.web_urls:
            started = time.monotonic()
            answer = api(
                base,
                "POST",
                f"/api/v1/tickets/{ticket_id}/evidence",
                company.tokens["dispatcher"],
                data={"kind": "PHOTO", "evidence_key": "photo_before"},
                files={"file": ("before.jpg", jpeg((10, 10, 200)))},
            )
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
            assert time.monotonic() - started < 15
            down = health(base)
            assert down.status_code == 503 and down.json()["storage"]["reachable"] is False
        EXPECTED_UNAVAILABLE.extend([f"/api/v1/tickets/{ticket_id}/evidence", "/health"])
    finally:
        deployment.s3.start()

    assert _bucket_keys(deployment) == keys_before
    assert not Evidence.objects.filter(ticket_id=ticket_id).exists()
    assert AuditEvent.objects.filter(ticket_id=ticket_id).count() == events_before
    for base in deployment.web_urls:
        assert health(base).status_code == 200


# --- 9 --------------------------------------------------------------------------------------


def test_the_audit_chains_verify_and_no_web_process_answered_an_unexpected_5xx(deployment):
    from django.core.management import call_command

    call_command("verify_audit")
    statuses = deployment.access_log_statuses()
    assert len(statuses) > MESSAGES
    unexpected = [
        (request, status)
        for request, status in statuses
        if status >= 500 and not (status == 503 and any(f" {path}" in request for path in EXPECTED_UNAVAILABLE))
    ]
    assert not unexpected
    # Nor did any web process crash on a request (Django and gunicorn log those).
    crashes = [line for line in deployment.server_log_errors() if CRASH.search(line) and line.startswith("web-")]
    assert not crashes


# --- helpers --------------------------------------------------------------------------------


def ticket_create(base: str, company, summary: str) -> requests.Response:
    body = {"account_id": company.account_id, "site_id": company.site_id, "summary": summary}
    return api(base, "POST", "/api/v1/tickets", company.tokens["dispatcher"], body)


def _now_iso() -> str:
    from django.utils import timezone

    return timezone.now().isoformat()


def _bucket_keys(deployment) -> set[str]:
    client = deployment.s3.client()
    keys, token = set(), None
    while True:
        page = client.list_objects_v2(Bucket=BUCKET, **({"ContinuationToken": token} if token else {}))
        keys |= {item["Key"] for item in page.get("Contents", [])}
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


_run = uuid.uuid4().hex[:10]


def _text(index: int) -> dict[str, str]:
    """One customer's first text."""
    return twilio_text(
        sid=f"SM{_run}{index:022d}",
        sender=f"+1503555{index:04d}",
        body=f"Hi, the back door at {100 + index} SE Main St, Portland OR 97214 won't latch. Can someone come?",
    )
