"""
SimilarCode comes over from the procedures app (procedures.0005) with its rows: the
model state is taken over as it was, then the table gets this app's name.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("index", "0004_split_vector_index"),
        ("procedures", "0005_similarcode_moves_to_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SimilarCode",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("rank", models.PositiveSmallIntegerField()),
                        ("score", models.FloatField()),
                        ("reasons", models.JSONField(default=list, help_text="Why the codes are similar, in plain words, strongest first.")),
                        ("computed_at", models.DateTimeField(auto_now=True)),
                        ("code", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="similar_codes", to="procedures.code")),
                        ("similar", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="procedures.code")),
                    ],
                    options={
                        "db_table": "procedures_similarcode",
                        "ordering": ["code", "rank"],
                        "indexes": [models.Index(fields=["code", "rank"], name="similarcode_rank_idx")],
                        "constraints": [
                            models.UniqueConstraint(fields=("code", "similar"), name="similarcode_unique_pair"),
                            models.CheckConstraint(condition=models.Q(("code", models.F("similar")), _negated=True), name="similarcode_not_itself"),
                        ],
                    },
                )
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="similarcode", table=None),
    ]
