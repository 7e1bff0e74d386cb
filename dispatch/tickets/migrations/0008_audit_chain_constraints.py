from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tickets', '0007_audit_rechain'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.UniqueConstraint(fields=('ticket', 'seq'), name='audit_ticket_seq_unique'),
        ),
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.UniqueConstraint(fields=('lane', 'lane_seq'), name='audit_lane_seq_unique'),
        ),
    ]
