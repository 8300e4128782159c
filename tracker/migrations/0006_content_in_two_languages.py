"""Organizations' names and acronyms in English and Korean (django-modeltranslation).

The existing values become the English version (name -> name_en, acronym -> acronym_en);
the Korean name the model already had stays in `name_ko`, now NULL where there is none (the
Korean name is unique like the English one, and NULL may repeat). The audit history gets
the same columns and values.
"""

import django.db.models.functions.text
import django.db.models.lookups
import tracker.validators
from django.db import migrations, models
from django.db.models import F


def forwards(apps, schema_editor):
    for name in ("Organization", "HistoricalOrganization"):
        model = apps.get_model("tracker", name)
        model.objects.update(name_en=F("name"))
        model.objects.exclude(acronym="").update(acronym_en=F("acronym"))
        model.objects.filter(name_ko="").update(name_ko=None)
    if schema_editor.connection.vendor == "postgresql":
        # Check the deferred foreign keys of the rows just updated now, so that the same
        # transaction may alter the tables next.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def backwards(apps, schema_editor):
    for name in ("Organization", "HistoricalOrganization"):
        model = apps.get_model("tracker", name)
        model.objects.filter(name_ko__isnull=True).update(name_ko="")


class Migration(migrations.Migration):

    dependencies = [
        ('tracker', '0005_user_session_epoch'),
    ]

    operations = [
        migrations.AddField(
            model_name='historicalorganization',
            name='acronym_en',
            field=models.CharField(blank=True, max_length=30, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicalorganization',
            name='acronym_ko',
            field=models.CharField(blank=True, max_length=30, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='historicalorganization',
            name='name_en',
            field=models.CharField(db_index=True, max_length=200, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='organization',
            name='acronym_en',
            field=models.CharField(blank=True, max_length=30, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='organization',
            name='acronym_ko',
            field=models.CharField(blank=True, max_length=30, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AddField(
            model_name='organization',
            name='name_en',
            field=models.CharField(max_length=200, null=True, unique=True, validators=[tracker.validators.validate_single_line]),
        ),
        # Nullable first, so that the copy can turn empty Korean names into NULL before the
        # Korean name becomes unique.
        migrations.AlterField(
            model_name='organization',
            name='name_ko',
            field=models.CharField(blank=True, max_length=200, null=True, verbose_name='name in Korean', validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AlterField(
            model_name='historicalorganization',
            name='name_ko',
            field=models.CharField(blank=True, max_length=200, null=True, verbose_name='name in Korean', validators=[tracker.validators.validate_single_line]),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.AlterField(
            model_name='historicalorganization',
            name='name_ko',
            field=models.CharField(db_index=True, max_length=200, null=True, validators=[tracker.validators.validate_single_line]),
        ),
        migrations.AlterField(
            model_name='organization',
            name='name_ko',
            field=models.CharField(max_length=200, null=True, unique=True, validators=[tracker.validators.validate_single_line]),
        ),
        # Same index; its condition written as a lookup that modeltranslation leaves alone.
        migrations.RemoveConstraint(
            model_name='organization',
            name='organization_acronym_unique',
        ),
        migrations.AddConstraint(
            model_name='organization',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Upper('acronym'), condition=models.Q(django.db.models.lookups.Exact(models.F('acronym'), models.Value('')), _negated=True), name='organization_acronym_unique', violation_error_message='Another organization already uses this acronym.'),
        ),
    ]
