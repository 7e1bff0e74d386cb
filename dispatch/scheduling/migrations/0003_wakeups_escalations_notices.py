"""Wake-ups and customer communication: escalations, dispatch acknowledgements, departures
with their arrival estimate, the ledger of customer notices, and the django-q2 schedule that
runs the wake-ups every minute (created once; running the migration again adds nothing).
"""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.db import migrations, models

WAKEUPS_NAME = "scheduling wake-ups"
WAKEUPS_FUNC = "dispatch.scheduling.tasks.wakeups_run"


def schedule_seed(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Schedule.name is not unique, so look it up by name and function to stay idempotent.
    if not Schedule.objects.filter(name=WAKEUPS_NAME, func=WAKEUPS_FUNC).exists():
        Schedule.objects.create(name=WAKEUPS_NAME, func=WAKEUPS_FUNC, schedule_type="I", minutes=1, repeats=-1)


def schedule_unseed(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=WAKEUPS_NAME, func=WAKEUPS_FUNC).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0002_seed_templates_and_sweep'),
        ('scheduling', '0002_appointment_no_overlap'),
        ('technicians', '0001_initial'),
        ('tickets', '0004_audit_head_seal'),
        ('django_q', '0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more'),
    ]

    operations = [
        migrations.CreateModel(
            name='Departure',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('departed_at', models.DateTimeField()),
                ('origin', models.JSONField(blank=True, default=dict)),
                ('origin_source', models.CharField(choices=[('DEVICE', 'Reported location'), ('PREVIOUS_SITE', "Previous job's site"), ('HOME_BASE', 'Home base'), ('REPORTED_ETA', "Technician's own estimate")], max_length=16)),
                ('eta_at', models.DateTimeField()),
                ('notified_eta_at', models.DateTimeField()),
                ('delay_notices', models.PositiveSmallIntegerField(default=0)),
                ('recorded_by', models.CharField(max_length=200)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('dispatch_transition', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='departure', to='tickets.statetransition')),
                ('technician', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='departures', to='technicians.technician')),
                ('ticket', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='departures', to='tickets.ticket')),
            ],
            options={
                'ordering': ['departed_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='DispatchAcknowledgement',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('acknowledged_at', models.DateTimeField()),
                ('recorded_by', models.CharField(max_length=200)),
                ('dispatch_transition', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='acknowledgement', to='tickets.statetransition')),
                ('technician', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='acknowledgements', to='technicians.technician')),
                ('ticket', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='dispatch_acknowledgements', to='tickets.ticket')),
            ],
            options={
                'ordering': ['acknowledged_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='CustomerNotice',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('kind', models.CharField(choices=[('PROPOSAL', 'Proposed windows'), ('PROPOSAL_REMINDER', 'Proposal reminder'), ('BOOKING', 'Booking confirmation'), ('REMINDER', 'Day-before reminder'), ('ON_MY_WAY', 'On my way'), ('DELAY', 'Delay notice'), ('REPLY_HELP', 'Reply not understood'), ('REPLY_UNAVAILABLE', 'Chosen window no longer available'), ('ALREADY_BOOKED', 'Already booked')], max_length=20)),
                ('occasion', models.CharField(max_length=120)),
                ('channel', models.CharField(blank=True, max_length=8)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('message', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='messaging.outboundmessage')),
                ('ticket', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='customer_notices', to='tickets.ticket')),
            ],
            options={
                'ordering': ['created_at', 'id'],
                'constraints': [models.UniqueConstraint(fields=('kind', 'occasion'), name='customer_notice_once')],
            },
        ),
        migrations.CreateModel(
            name='Escalation',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('kind', models.CharField(choices=[('STALE_PROPOSAL', 'Proposal unanswered'), ('UNACKNOWLEDGED_DISPATCH', 'Dispatch not acknowledged'), ('SLA_RISK', 'At risk of missing the SLA')], max_length=32)),
                ('trigger_key', models.CharField(max_length=120)),
                ('details', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('resolved_by', models.CharField(blank=True, max_length=200)),
                ('resolution', models.TextField(blank=True)),
                ('ticket', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='escalations', to='tickets.ticket')),
            ],
            options={
                'ordering': ['-created_at'],
                'indexes': [models.Index(fields=['resolved_at', 'created_at'], name='escalation_open_created'), models.Index(fields=['ticket', 'kind'], name='escalation_ticket_kind')],
                'constraints': [models.UniqueConstraint(fields=('ticket', 'kind', 'trigger_key'), name='escalation_once_per_trigger')],
            },
        ),
        migrations.RunPython(schedule_seed, schedule_unseed),
    ]
