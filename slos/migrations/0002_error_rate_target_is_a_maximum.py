"""An error-rate SLO's target is the maximum percent of failed checks (issue 10, item 13).

Before, every target was read as the percent of good checks: an error-rate SLO with target 1
was compliant with 50 % of its checks failing. Stored error-rate targets are converted by what
they must have meant, which the side of 50 tells (50 reads the same both ways):

- 50 or more was written as a success percent, as the API documented (99.9): it becomes
  100 − target (0.1), the same promise and the same verdicts;
- under 50 was written as the maximum error rate (1, as people say "1 % errors"), which the
  code judged as 1 % success: it is kept, and is now judged as meant.

The SLO's cached verdict is cleared (the next evaluation, within a minute, writes it again) so
nothing shows one judged the old way. History rows get the same conversion of their target, so
the target line of a chart does not jump; their verdicts stay as they were evaluated.

Backwards: every error-rate target t becomes 100 − t, the success percent that the code before
judges as this code judges t.
"""

from decimal import Decimal

import django.core.validators
from django.db import migrations, models

FORWARD = """
    UPDATE slos_slo SET target = 100 - target
     WHERE sli_type = 'error_rate' AND target >= 50;
    UPDATE slos_slo SET current_value = NULL, compliant = NULL, budget_total_minutes = NULL,
           budget_remaining_minutes = NULL, budget_used_minutes = NULL,
           budget_remaining_percent = NULL, burn_rate = NULL, violation_risk = 'none',
           budget_exhausted_at = NULL, calculated_at = NULL
     WHERE sli_type = 'error_rate';
    -- float8 history: the difference in numeric, or 100 - 99.9 is 0.09999999999999432.
    UPDATE slos_slostatus SET target = (100 - target::numeric)::float8
     WHERE sli_type = 'error_rate' AND target >= 50;
"""
BACKWARD = """
    UPDATE slos_slo SET target = 100 - target WHERE sli_type = 'error_rate';
    UPDATE slos_slostatus SET target = (100 - target::numeric)::float8
     WHERE sli_type = 'error_rate';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("slos", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="slo",
            name="target",
            field=models.DecimalField(
                decimal_places=4,
                help_text=(
                    "Percent, strictly between 0 and 100. Availability and latency: the percent "
                    "of good checks promised (e.g. 99.9). Error rate: the maximum percent of "
                    "failed checks (e.g. 1); compliant while the error rate is at or under it."
                ),
                max_digits=7,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0.0001")),
                    django.core.validators.MaxValueValidator(Decimal("99.9999")),
                ],
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
