"""slos_slo keeps half of each page free (fillfactor 50): every evaluation updates the cached
status of every SLO row once a minute, and with room on the page PostgreSQL writes the new
version there without touching the table's five indexes (a HOT update) and prunes the old
one. With full pages most of those updates inserted into every index, and bench/slos.py left
the table at 14 MB after ~100 evaluations of 1,000 SLOs (0.45 MB live).

Only the storage parameter changes (no rewrite, a SHARE UPDATE EXCLUSIVE lock): pages written
from now on keep the room; existing full pages gain it as their rows move or after a VACUUM
FULL. Reversing restores the default."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("slos", "0006_metric_slis"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE slos_slo SET (fillfactor = 50)",
            reverse_sql="ALTER TABLE slos_slo RESET (fillfactor)",
        ),
    ]
