"""Seed the message texts and the outbox sweep schedule.

Texts say {company}, filled from settings.DISPATCH_COMPANY_NAME when a message is rendered, so
renaming the company needs no data change. Existing rows are left alone: once seeded, the
texts belong to whoever edits them in the admin.
"""
from django.db import migrations

TEMPLATES = [
    (
        "tech_dispatched",
        "SMS",
        "New job {ticket_ref}",
        "{company}: new job {ticket_ref} at {address}, {window}. Details are in your job list.",
    ),
    (
        "customer_confirmation",
        "SMS",
        "We received your request {ticket_ref}",
        "{company}: thank you, we received your request (ref {ticket_ref}). "
        "We will text you appointment times shortly. Status: {status_url}",
    ),
    (
        "proposal_windows",
        "SMS",
        "Appointment times for {ticket_ref}",
        "{company}: we can come {windows}. Please reply with the time that suits you (ref {ticket_ref}).",
    ),
    (
        "reminder",
        "SMS",
        "Reminder: your appointment {ticket_ref}",
        "{company}: a reminder that your technician is booked for {window} (ref {ticket_ref}).",
    ),
    (
        "on_my_way",
        "SMS",
        "Your technician is on the way",
        "{company}: {tech_first_name} is on the way and should arrive around {eta} (ref {ticket_ref}).",
    ),
    (
        "delay_notice",
        "SMS",
        "Your technician is running late",
        "{company}: sorry, we are running late. New arrival estimate: {eta} (ref {ticket_ref}).",
    ),
    (
        "needs_info",
        "SMS",
        "A question about your request {ticket_ref}",
        "{company}: thank you for your message (ref {ticket_ref}). {question}",
    ),
    (
        "schedule_confirmed",
        "SMS",
        "Your appointment is confirmed",
        "{company}: your visit is confirmed for {window} (ref {ticket_ref}). Reply here if you need to change it.",
    ),
]

SWEEP_NAME = "outbox sweep"
SWEEP_FUNC = "dispatch.messaging.tasks.outbox_sweep"


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    for code, channel, subject, body in TEMPLATES:
        # By code alone, whatever languages it has since been written in.
        if not MessageTemplate.objects.filter(code=code).exists():
            MessageTemplate.objects.create(code=code, channel=channel, subject=subject, body=body)
    Schedule = apps.get_model("django_q", "Schedule")
    # Schedule.name is not unique, so look it up by name and function to stay idempotent.
    if not Schedule.objects.filter(name=SWEEP_NAME, func=SWEEP_FUNC).exists():
        Schedule.objects.create(name=SWEEP_NAME, func=SWEEP_FUNC, schedule_type="I", minutes=1, repeats=-1)


def unseed(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SWEEP_NAME, func=SWEEP_FUNC).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
