"""Constraints of the identity models: enforced by the database, reported by full_clean()."""

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction

from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tracker.models import Membership, Organization, User
from tracker.validators import UNKNOWN_TIME_ZONE


def constraint_message(model, name: str) -> str:
    """The readable message of one of the model's constraints (never Django's default)."""
    (constraint,) = [c for c in model._meta.constraints if c.name == name]
    assert constraint.violation_error_message != constraint.default_violation_error_message
    return constraint.get_violation_error_message()


def assert_integrity_error(queryset, **values):
    with pytest.raises(IntegrityError), transaction.atomic():
        queryset.update(**values)


# --- Organization ------------------------------------------------------------------------


@pytest.mark.django_db
def test_organization_factory_makes_a_valid_row():
    organization = OrganizationFactory()
    organization.full_clean()
    assert not organization.is_government


@pytest.mark.django_db
@pytest.mark.parametrize("kind", Organization.Kind.values)
def test_organization_accepts_every_known_kind(kind):
    organization = OrganizationFactory(kind=kind)
    organization.full_clean()
    assert organization.is_government == (kind in Organization.GOVERNMENT_KINDS)


@pytest.mark.django_db
def test_organization_kind_is_checked_by_the_database():
    organization = OrganizationFactory()
    assert_integrity_error(Organization.objects.filter(pk=organization.pk), kind="startup")


@pytest.mark.django_db
def test_organization_kind_is_reported_by_validation():
    organization = OrganizationFactory()
    organization.kind = "startup"
    with pytest.raises(ValidationError) as exc:
        organization.full_clean()
    assert "kind" in exc.value.message_dict
    # The field's choices catch it first; the constraint carries the readable message.
    with pytest.raises(ValidationError) as exc:
        organization.validate_constraints()
    assert exc.value.messages == [constraint_message(Organization, "organization_kind_valid")]


@pytest.mark.django_db
@pytest.mark.parametrize("country", ["kr", "K1", "K", "Kr"])
def test_organization_country_is_checked_by_the_database(country):
    organization = OrganizationFactory()
    assert_integrity_error(Organization.objects.filter(pk=organization.pk), country=country)


@pytest.mark.django_db
@pytest.mark.parametrize("country", ["kr", "K1", "K", "Kr"])
def test_organization_country_message(country):
    organization = OrganizationFactory.build(country=country)
    with pytest.raises(ValidationError) as exc:
        organization.full_clean()
    assert exc.value.message_dict[NON_FIELD_ERRORS] == [
        constraint_message(Organization, "organization_country_iso2")
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("country", ["KR", "US", "JP"])
def test_organization_country_accepts_iso2_capitals(country):
    OrganizationFactory(country=country).full_clean()


@pytest.mark.django_db
def test_organization_cannot_be_its_own_parent_in_the_database():
    organization = OrganizationFactory()
    assert_integrity_error(Organization.objects.filter(pk=organization.pk), parent=organization)


@pytest.mark.django_db
def test_organization_cannot_be_its_own_parent_message():
    organization = OrganizationFactory()
    organization.parent = organization
    with pytest.raises(ValidationError) as exc:
        organization.full_clean()
    assert exc.value.message_dict[NON_FIELD_ERRORS] == [
        constraint_message(Organization, "organization_not_own_parent")
    ]


@pytest.mark.django_db
def test_organization_may_have_another_parent():
    motie = OrganizationFactory(kind=Organization.Kind.MINISTRY)
    kats = OrganizationFactory(kind=Organization.Kind.AGENCY, parent=motie)
    kats.full_clean()
    assert list(motie.children.all()) == [kats]


@pytest.mark.django_db
def test_acronym_is_unique_ignoring_case_in_the_database():
    OrganizationFactory(acronym="KATS")
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.bulk_create(
            [Organization(name="Another", acronym="kats", kind="agency", country="KR")]
        )


@pytest.mark.django_db
def test_acronym_is_unique_ignoring_case_message():
    OrganizationFactory(acronym="KATS")
    duplicate = OrganizationFactory.build(acronym="Kats")
    with pytest.raises(ValidationError) as exc:
        duplicate.full_clean()
    assert exc.value.messages == [constraint_message(Organization, "organization_acronym_unique")]


@pytest.mark.django_db
def test_many_organizations_may_have_no_acronym():
    OrganizationFactory(acronym="")
    second = OrganizationFactory.build(acronym="")
    second.full_clean()
    second.save()
    assert Organization.objects.filter(acronym="").count() == 2


@pytest.mark.django_db
def test_an_organization_keeps_its_own_acronym_when_edited():
    organization = OrganizationFactory(acronym="KEIT")
    organization.name = "Korea Evaluation Institute of Industrial Technology"
    organization.full_clean()  # does not clash with itself


# --- Membership ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_membership_is_unique_per_user_and_organization_in_the_database():
    membership = MembershipFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.bulk_create(
            [
                Membership(
                    user=membership.user,
                    organization=membership.organization,
                    role=Membership.Role.VIEWER,
                )
            ]
        )


@pytest.mark.django_db
def test_membership_is_unique_per_user_and_organization_message():
    membership = MembershipFactory()
    duplicate = MembershipFactory.build(
        user=membership.user, organization=membership.organization, role=Membership.Role.VIEWER
    )
    with pytest.raises(ValidationError) as exc:
        duplicate.full_clean()
    assert exc.value.messages == [
        constraint_message(Membership, "membership_one_per_user_and_organization")
    ]


@pytest.mark.django_db
def test_a_user_may_be_member_of_several_organizations():
    membership = MembershipFactory()
    other = MembershipFactory.build(user=membership.user, organization=OrganizationFactory())
    other.full_clean()
    other.save()
    assert membership.user.memberships.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("role", Membership.Role.values)
def test_membership_accepts_every_role(role):
    MembershipFactory(role=role).full_clean()


@pytest.mark.django_db
def test_membership_role_is_checked_by_the_database():
    membership = MembershipFactory()
    assert_integrity_error(Membership.objects.filter(pk=membership.pk), role="owner")


@pytest.mark.django_db
def test_membership_role_is_reported_by_validation():
    membership = MembershipFactory()
    membership.role = "owner"
    with pytest.raises(ValidationError) as exc:
        membership.full_clean()
    assert "role" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        membership.validate_constraints()
    assert exc.value.messages == [constraint_message(Membership, "membership_role_valid")]


# --- User ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_user_factory_makes_an_ordinary_user():
    user = UserFactory()
    user.full_clean()
    assert not user.is_superuser
    assert not user.is_staff


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "ko"])
def test_user_accepts_english_and_korean(language):
    UserFactory(language=language).full_clean()


@pytest.mark.django_db
def test_user_language_is_checked_by_the_database():
    user = UserFactory()
    assert_integrity_error(User.objects.filter(pk=user.pk), language="fr")


@pytest.mark.django_db
def test_user_language_is_reported_by_validation():
    user = UserFactory()
    user.language = "fr"
    with pytest.raises(ValidationError) as exc:
        user.full_clean()
    assert "language" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        user.validate_constraints()
    assert exc.value.messages == [constraint_message(User, "user_language_valid")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "time_zone", ["Mars/Olympus_Mons", "KST", "asia/seoul", "", "localtime", "Factory"]
)
def test_user_time_zone_must_be_a_known_iana_zone(time_zone):
    user = UserFactory()
    user.time_zone = time_zone
    with pytest.raises(ValidationError) as exc:
        user.full_clean()
    if time_zone:
        assert exc.value.message_dict["time_zone"] == [UNKNOWN_TIME_ZONE % {"value": time_zone}]
    else:
        assert "time_zone" in exc.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize("time_zone", ["Asia/Seoul", "America/New_York", "UTC"])
def test_user_time_zone_accepts_iana_zones(time_zone):
    UserFactory(time_zone=time_zone).full_clean()
