"""A model's check constraints, and its foreign keys, validated in one query each.

Django's `Model.validate_constraints()` asks the database about each `CheckConstraint` on its
own (`Q.check()`: one SELECT, wrapped in a savepoint when a transaction is open, so three
round trips each). Task has seven, StatusUpdate four: `task_create` spent 33 of its 56
queries on them, and a spreadsheet import of 500 rows runs it a thousand times.

`ChecksInOneQuery.validate_constraints()` asks the same conditions, built the same way
(`Coalesce(condition, True)` against the instance's values), as the columns of one SELECT
under one savepoint, and reports a failed one exactly as Django does: the same message and
code, in the same order, with unique constraints and any other kind checked by Django itself.
A condition naming an excluded field is skipped, as in Django. If the combined query fails at
the database, each check runs on its own as before (Django logs and passes such a check), so
the outcome never differs from Django's - tests/tracker/test_constraints.py compares the two.

Foreign keys likewise: `ForeignKey.validate()` asks whether the row exists, one query per key
(a new task: plan, workstream, lead organization, assignee, created_by, updated_by).
`clean_fields()` asks the same querysets (`_base_manager`, `limit_choices_to`) as EXISTS
columns of one SELECT; a key that exists is then cleaned as Django does minus that query
(to_python, Field.validate, validators); a missing one, or any the batch cannot take, goes
through Django's own `clean_fields()`, so its error is Django's.
"""

from contextlib import nullcontext

from django.core.exceptions import FieldError, ValidationError
from django.db import DatabaseError, connections, models, router, transaction
from django.db.models import BooleanField, CheckConstraint, Exists, ForeignKey, Q, Value
from django.db.models.expressions import DatabaseDefault
from django.db.models.functions import Coalesce
from django.db.models.sql import Query
from django.db.models.sql.constants import SINGLE


def checks_passed(instance, exclude=None, using=None) -> dict[int, bool]:
    """{id(constraint): passed} for the instance's check constraints, one query per model
    class; constraints left out (excluded fields, a failed query) are for Django to check."""
    using = using or router.db_for_write(type(instance), instance=instance)
    connection = connections[using]
    if not connection.features.supports_comparing_boolean_expr:
        return {}
    results = {}
    for model_class, constraints in instance.get_constraints():
        checks = [c for c in constraints if type(c) is CheckConstraint]
        if len(checks) < 2:
            continue  # one query either way
        against = instance._get_field_expression_map(meta=model_class._meta, exclude=exclude)
        query = Query(None)
        for name, value in against.items():
            if not hasattr(value, "resolve_expression"):
                value = Value(value)
            query.add_annotation(value, name, select=False)
        asked = []
        for n, check in enumerate(checks):
            condition = Coalesce(Q(check.condition), True, output_field=BooleanField())
            try:
                query.add_annotation(condition, f"_check_{n}")
            except FieldError:
                continue  # names an excluded field: Django skips it (CheckConstraint.validate)
            asked.append(check)
        if not asked:
            continue
        atomic = transaction.atomic(using=using) if connection.in_atomic_block else nullcontext()
        try:
            with atomic:
                row = query.get_compiler(using=using).execute_sql(SINGLE)
        except DatabaseError:
            continue  # each on its own, as Django does (it logs the error and passes)
        results.update({id(check): bool(value) for check, value in zip(asked, row, strict=True)})
    return results


def keys_found(instance, exclude=None) -> dict[str, object]:
    """{field name: cleaned value} of the foreign keys whose row exists, in one query; keys
    left out (empty, unreadable, missing, on another database) are for Django to check."""
    exclude = set(exclude or ())
    using = router.db_for_write(type(instance), instance=instance)
    asked = []
    for field in instance._meta.fields:
        if not isinstance(field, ForeignKey) or field.remote_field.parent_link:
            continue
        if field.name in exclude or field.generated:
            continue
        raw = getattr(instance, field.attname)
        if raw is None or isinstance(raw, DatabaseDefault) or raw in field.empty_values:
            continue
        try:
            value = field.to_python(raw)
        except ValidationError:
            continue
        if router.db_for_read(field.remote_field.model, instance=instance) != using:
            continue
        asked.append((field, value))
    if len(asked) < 2:
        return {}  # one query either way
    query = Query(None)
    for n, (field, value) in enumerate(asked):
        rows = (
            field.remote_field.model._base_manager.using(using)
            .filter(**{field.remote_field.field_name: value})
            .complex_filter(field.get_limit_choices_to())
        )
        query.add_annotation(Exists(rows), f"_key_{n}")
    row = query.get_compiler(using=using).execute_sql(SINGLE)
    return {field.name: value for (field, value), found in zip(asked, row, strict=True) if found}


class ChecksInOneQuery(models.Model):
    """Mixin for models with several check constraints and foreign keys (see the module's
    docstring)."""

    class Meta:
        abstract = True

    def clean_fields(self, exclude=None):
        found = keys_found(self, exclude)
        errors = {}
        for name, value in found.items():
            # ForeignKey.clean() without its query: the row was found above.
            field = self._meta.get_field(name)
            try:
                models.Field.validate(field, value, self)
                field.run_validators(value)
                setattr(self, field.attname, value)
            except ValidationError as e:
                errors[name] = e.error_list
        try:
            super().clean_fields(exclude={*(exclude or ()), *found})
        except ValidationError as e:
            if not errors:
                raise
            errors = e.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def validate_constraints(self, exclude=None):
        using = router.db_for_write(type(self), instance=self)
        passed = checks_passed(self, exclude, using)
        # The rest as Model.validate_constraints() (Django 5.2), in the same order.
        errors = {}
        for model_class, model_constraints in self.get_constraints():
            for constraint in model_constraints:
                try:
                    if id(constraint) in passed:
                        if not passed[id(constraint)]:
                            raise ValidationError(
                                constraint.get_violation_error_message(),
                                code=constraint.violation_error_code,
                            )
                    else:
                        constraint.validate(model_class, self, exclude=exclude, using=using)
                except ValidationError as e:
                    if getattr(e, "code", None) == "unique" and len(constraint.fields) == 1:
                        errors.setdefault(constraint.fields[0], []).append(e)
                    else:
                        errors = e.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)
