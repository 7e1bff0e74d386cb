"""QA FAIL over HTTP: a 409 envelope, and the verdict stays on record (it is not rolled back)."""

from __future__ import annotations

import json
import uuid

import pytest

from dispatch.closeout.models import QaReview
from dispatch.tickets.models import AuditEvent, IdempotencyRecord, Ticket
from tests.factories import DOOR_CHECKLIST, TechnicianFactory, actor_for, door_evidence_add, jwt_for, ticket_at

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_qa_fail_answers_409_and_keeps_the_review_and_its_audit_event(client):
    from dispatch.closeout.services import tech_complete

    technician = TechnicianFactory()
    job = ticket_at("IN_PROGRESS", technician=technician)
    door_evidence_add(job)
    tech_complete(
        actor=actor_for("technician", technician=technician), ticket_id=job.id, checklist_status=DOOR_CHECKLIST
    )
    events_before = AuditEvent.objects.filter(ticket=job).count()
    key = str(uuid.uuid4())
    body = {"timestamp": "2026-11-24T16:00:00Z", "result": "FAIL", "notes": "Strike plate still misaligned"}

    def post():
        return client.post(
            f"/api/v1/tickets/{job.id}/qa/verify",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
            HTTP_AUTHORIZATION=f"Bearer {jwt_for('qa-lead', 'qa')}",
        )

    first = post()
    assert first.status_code == 409
    error = first.json()["error"]
    assert (error["code"], error["notes"]) == ("QA_VERIFICATION_FAILED", "Strike plate still misaligned")
    assert list(QaReview.objects.filter(ticket=job).values_list("result", "notes")) == [
        ("FAIL", "Strike plate still misaligned")
    ]
    assert AuditEvent.objects.filter(ticket=job).count() == events_before + 1
    assert Ticket.objects.get(pk=job.pk).state == "COMPLETED_PENDING_VERIFICATION"

    again = post()
    assert again.status_code == 409 and again["Idempotency-Replayed"] == "true"
    assert again.json() == first.json()
    assert QaReview.objects.filter(ticket=job).count() == 1
    assert IdempotencyRecord.objects.filter(key=key).count() == 1
