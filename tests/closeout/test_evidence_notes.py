"""A note is evidence in its own right: its text is kept with the item, no file or object store
needed, and the evidence gate counts it like any other item."""

from __future__ import annotations

import uuid

import pytest

from dispatch.closeout.models import Evidence
from dispatch.closeout.services import evidence_add, tech_complete
from dispatch.common.errors import DispatchError
from dispatch.tickets.models import AuditEvent
from tests.factories import DOOR_CHECKLIST, door_evidence_add, jwt_for

pytestmark = pytest.mark.django_db

NOTE = "Strike plate moved 2 mm up; closer speed reduced; 20 test cycles, latches every time."


def refusal(call) -> DispatchError:
    with pytest.raises(DispatchError) as caught:
        call()
    return caught.value


def test_a_note_is_kept_as_its_text_without_a_uri(job, tech_actor):
    outcome = evidence_add(
        actor=tech_actor,
        ticket_id=job.id,
        kind="NOTE",
        text=f"  {NOTE}\n",
        evidence_key="note_adjustments_and_test_cycles",
    )
    item = Evidence.objects.get(pk=outcome.result.pk)
    assert (item.kind, item.uri, bool(item.file)) == ("NOTE", "", False)
    assert item.metadata == {"text": NOTE, "evidence_key": "note_adjustments_and_test_cycles"}
    assert outcome.event.payload["text"] == NOTE


def test_a_job_whose_note_is_text_completes_through_the_gate(job, tech_actor):
    door_evidence_add(job, keys=["photo_before_door_edge_and_strike", "photo_after_latched_alignment"])
    evidence_add(
        actor=tech_actor, ticket_id=job.id, kind="NOTE", text=NOTE, evidence_key="note_adjustments_and_test_cycles"
    )
    outcome = tech_complete(actor=tech_actor, ticket_id=job.id, checklist_status=DOOR_CHECKLIST)
    assert outcome.ticket.state == "COMPLETED_PENDING_VERIFICATION"
    assert outcome.event.payload["closeout_check"]["invalid_evidence_refs"] == []


@pytest.mark.parametrize("text, message", [(None, "needs its text"), ("   ", "needs its text"), ("x" * 4001, "4000")])
def test_a_note_without_text_or_with_too_much_is_refused_and_nothing_is_written(job, tech_actor, text, message):
    events = AuditEvent.objects.count()
    error = refusal(lambda: evidence_add(actor=tech_actor, ticket_id=job.id, kind="NOTE", text=text))
    assert (error.code, error.status, error.details["field"]) == ("INVALID_REQUEST", 400, "text")
    assert message in error.message
    assert (Evidence.objects.count(), AuditEvent.objects.count()) == (0, events)


def test_other_kinds_still_need_a_uri_or_a_file(job, tech_actor):
    error = refusal(lambda: evidence_add(actor=tech_actor, ticket_id=job.id, kind="PHOTO", text="The door"))
    assert (error.code, error.details["field"]) == ("INVALID_REQUEST", "uri")
    assert not Evidence.objects.exists()


def test_a_note_may_also_carry_a_uri_and_then_the_uri_is_checked(job, tech_actor):
    item = evidence_add(actor=tech_actor, ticket_id=job.id, kind="NOTE", uri="s3://b/note.txt", text=NOTE).result
    assert (item.uri, item.metadata["text"]) == ("s3://b/note.txt", NOTE)
    error = refusal(
        lambda: evidence_add(actor=tech_actor, ticket_id=job.id, kind="NOTE", uri="https://x.y/n", text=NOTE)
    )
    assert error.code == "INVALID_EVIDENCE_REFERENCE"


def test_the_toolset_takes_a_notes_text_beside_its_uri(client, job, technician):
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {jwt_for(technician.user.username, 'technician')}",
        "content_type": "application/json",
    }
    path = f"/api/v1/tickets/{job.id}/evidence"
    added = client.post(
        path,
        data={"kind": "NOTE", "uri": "s3://b/note.txt", "text": NOTE},
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **headers,
    )
    assert added.status_code == 201, added.content
    assert added.json()["metadata"]["text"] == NOTE
    # The contract's JSON form still requires a uri.
    text_only = client.post(
        path, data={"kind": "NOTE", "text": NOTE}, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **headers
    )
    assert (text_only.status_code, text_only.json()["error"]["field"]) == (400, "uri")


@pytest.mark.parametrize("key", ["signature_or_no_signature_reason", "photo_after_latched_alignment"])
def test_a_typed_note_cannot_stand_for_the_signature_or_a_photo(job, tech_actor, key):
    error = refusal(
        lambda: evidence_add(actor=tech_actor, ticket_id=job.id, kind="NOTE", text="Signed.", evidence_key=key)
    )
    assert error.code == "EVIDENCE_KIND_MISMATCH"
    assert not job.evidence.exists()
