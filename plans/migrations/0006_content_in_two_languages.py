"""Titles and descriptions in English and Korean (django-modeltranslation).

Adds an `_en` and a `_ko` column to forums' name and summary, outcomes' title, and plans',
workstreams' and tasks' title and description, in the models and their audit history. The
existing values become the English version; the Korean one starts empty (NULL). The original
columns keep their values (see tracker/content_language.py).
"""

import tracker.validators
from django.db import migrations, models
from django.db.models import F

FIELDS = {
    "Forum": ("name", "summary"),
    "Outcome": ("title",),
    "Plan": ("title", "description"),
    "Workstream": ("title", "description"),
    "Task": ("title", "description"),
}


def forwards(apps, schema_editor):
    for name, fields in FIELDS.items():
        for model_name in (name, f"Historical{name}"):
            model = apps.get_model("plans", model_name)
            for field in fields:
                # An empty description has no version in any language (NULL).
                model.objects.exclude(**{field: ""}).update(**{f"{field}_en": F(field)})
    if schema_editor.connection.vendor == "postgresql":
        # Check the deferred foreign keys of the rows just updated now, so that the same
        # transaction may alter the tables next.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def backwards(apps, schema_editor):
    pass  # the original columns kept their values


class Migration(migrations.Migration):

    dependencies = [
        ('plans', '0005_input_rules'),
        ('tracker', '0006_content_in_two_languages'),
    ]

    operations = [
        migrations.AddField(
            model_name='forum',
            name='name_en',
            field=models.CharField(max_length=255, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='forum',
            name='name_ko',
            field=models.CharField(max_length=255, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='forum',
            name='summary_en',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='forum',
            name='summary_ko',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='historicalforum',
            name='name_en',
            field=models.CharField(max_length=255, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicalforum',
            name='name_ko',
            field=models.CharField(max_length=255, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicalforum',
            name='summary_en',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='historicalforum',
            name='summary_ko',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='historicaloutcome',
            name='title_en',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicaloutcome',
            name='title_ko',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicalplan',
            name='description_en',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='historicalplan',
            name='description_ko',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='historicalplan',
            name='title_en',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicalplan',
            name='title_ko',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicaltask',
            name='description_en',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='historicaltask',
            name='description_ko',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='historicaltask',
            name='title_en',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicaltask',
            name='title_ko',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicalworkstream',
            name='description_en',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='historicalworkstream',
            name='description_ko',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='historicalworkstream',
            name='title_en',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicalworkstream',
            name='title_ko',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='outcome',
            name='title_en',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='outcome',
            name='title_ko',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='plan',
            name='description_en',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='plan',
            name='description_ko',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='plan',
            name='title_en',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='plan',
            name='title_ko',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='task',
            name='description_en',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='task',
            name='description_ko',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='task',
            name='title_en',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='task',
            name='title_ko',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='workstream',
            name='description_en',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='workstream',
            name='description_ko',
            field=models.TextField(blank=True, null=True, validators=[tracker.validators.validate_text]),
        ),
        migrations.AddField(
            model_name='workstream',
            name='title_en',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='workstream',
            name='title_ko',
            field=models.CharField(max_length=300, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.AddConstraint(
            model_name='forum',
            constraint=models.UniqueConstraint(fields=('name_en', 'held_on'), name='forum_unique_name_and_date-en', violation_error_message='A forum with this name is already recorded on this date.'),
        ),
        migrations.AddConstraint(
            model_name='forum',
            constraint=models.UniqueConstraint(fields=('name_ko', 'held_on'), name='forum_unique_name_and_date-ko', violation_error_message='A forum with this name is already recorded on this date.'),
        ),
    ]
