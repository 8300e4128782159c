"""Identity and access: users, organizations and their memberships (roles)."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Upper
from django.db.models.lookups import Exact
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop
from simple_history.models import HistoricalRecords

from .content_language import TranslatedContent
from .i18n import message
from .validators import validate_single_line, validate_time_zone, validate_web_url


class User(AbstractUser):
    # AbstractUser's name fields, with the rule every name shown to people follows.
    first_name = models.CharField(
        _("first name"), max_length=150, blank=True, validators=[validate_single_line]
    )
    last_name = models.CharField(
        _("last name"), max_length=150, blank=True, validators=[validate_single_line]
    )

    class Language(models.TextChoices):
        ENGLISH = "en", "English"
        KOREAN = "ko", "한국어 (Korean)"

    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="Asia/Seoul",
        validators=[validate_time_zone],
        help_text=_("IANA time zone used to show times and to time reminders, e.g. Asia/Seoul."),
    )
    language = models.CharField(
        _("language"), max_length=2, choices=Language.choices, default=Language.ENGLISH
    )
    is_system = models.BooleanField(
        _("is system"),
        default=False,
        editable=False,
        help_text=_("The account automated work (Celery, commands) acts and is recorded as."),
    )
    session_epoch = models.PositiveIntegerField(
        _("session epoch"),
        default=0,
        editable=False,
        help_text=_(
            "Raised to sign the user out everywhere (e.g. when they lose their last "
            "membership): every session carries a hash of it."
        ),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(
                fields=["is_system"],
                condition=Q(is_system=True),
                name="user_one_system_account",
                violation_error_message=_("There is only one system account."),
            ),
            models.CheckConstraint(
                condition=Q(language__in=["en", "ko"]),
                name="user_language_valid",
                violation_error_message=_("Language must be 'en' or 'ko'."),
            ),
        ]

    def __str__(self):
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username

    # Django keeps an HMAC of the password hash in each session and drops the session when
    # it no longer matches (django.contrib.auth.get_user). Mixing in `session_epoch` lets us
    # end every session of a user, on any session backend, by raising one number; at epoch
    # 0 the hash is Django's own, so existing sessions survive this code's deployment.
    def _with_epoch(self, base: str, secret=None) -> str:
        if not self.session_epoch:
            return base
        return salted_hmac(
            "tracker.User.session_epoch", f"{base}:{self.session_epoch}", secret=secret,
            algorithm="sha256",
        ).hexdigest()  # fmt: skip

    def get_session_auth_hash(self):
        return self._with_epoch(super().get_session_auth_hash())

    def get_session_auth_fallback_hash(self):
        bases = super().get_session_auth_fallback_hash()
        for secret, base in zip(settings.SECRET_KEY_FALLBACKS, bases, strict=True):
            yield self._with_epoch(base, secret)


ALIASES_NOT_A_LIST = gettext_noop('Aliases are a list of names, e.g. ["Commerce", "DOC"].')
ALIAS_INVALID = gettext_noop("Each alias is a name on one line, up to 200 characters.")


def validate_aliases(value) -> None:
    """A list of short one-line names."""
    if not isinstance(value, list):
        raise ValidationError(message(ALIASES_NOT_A_LIST), code="aliases_not_a_list")
    for alias in value:
        if not isinstance(alias, str) or not alias.strip() or len(alias) > 200:
            raise ValidationError(message(ALIAS_INVALID), code="alias_invalid")
        validate_single_line(alias)


class Organization(TranslatedContent):
    class Kind(models.TextChoices):
        MINISTRY = "ministry", _("Ministry")
        AGENCY = "agency", _("Agency")
        PUBLIC_INSTITUTION = "public_institution", _("Public institution")
        COMPANY = "company", _("Company")
        ASSOCIATION = "association", _("Association")
        RESEARCH_INSTITUTE = "research_institute", _("Research institute")
        UNIVERSITY = "university", _("University")
        FINANCIAL_INSTITUTION = "financial_institution", _("Financial institution")
        OTHER = "other", _("Other")

    GOVERNMENT_KINDS = (Kind.MINISTRY, Kind.AGENCY, Kind.PUBLIC_INSTITUTION)

    # In English and Korean: name_en, name_ko, acronym_en, acronym_ko (tracker/translation.py).
    name = models.CharField(
        _("name"), max_length=200, unique=True, validators=[validate_single_line]
    )
    acronym = models.CharField(
        _("acronym"), max_length=30, blank=True, validators=[validate_single_line]
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    country = models.CharField(
        _("country"), max_length=2, help_text=_("ISO 3166-1 alpha-2 code, e.g. KR, US, JP.")
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text=_("e.g. KATS under MOTIE, Absolics under SKC."),
    )
    website = models.URLField(_("website"), blank=True, validators=[validate_web_url])
    aliases = models.JSONField(
        _("aliases"),
        default=list,
        blank=True,
        validators=[validate_aliases],
        help_text=_(
            'Other names texts use for it, in any language, e.g. ["Commerce", "the Department '
            'of Commerce", "상무부"]. Readout intake finds the organization by them.'
        ),
    )
    # Incremental sync (`updated_after`, docs/decisions/0013-incremental-sync.md).
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        indexes = [models.Index(fields=["updated_at", "id"], name="organization_sync")]
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=[
                        "ministry",
                        "agency",
                        "public_institution",
                        "company",
                        "association",
                        "research_institute",
                        "university",
                        "financial_institution",
                        "other",
                    ]
                ),
                name="organization_kind_valid",
                violation_error_message=_("Organization kind is not one of the known kinds."),
            ),
            models.CheckConstraint(
                condition=Q(country__regex=r"^[A-Z]{2}$"),
                name="organization_country_iso2",
                violation_error_message=_(
                    "Country must be a two-letter ISO 3166-1 code in capitals, e.g. KR."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(parent=models.F("pk")),
                name="organization_not_own_parent",
                violation_error_message=_("An organization cannot be its own parent."),
            ),
            models.UniqueConstraint(
                Upper("acronym"),
                # A lookup, not `~Q(acronym="")`: modeltranslation rewrites keyword lookups on
                # `acronym` to the active language's column (acronym_en), in place.
                condition=~Q(Exact(F("acronym"), Value(""))),
                name="organization_acronym_unique",
                violation_error_message=_("Another organization already uses this acronym."),
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.acronym})" if self.acronym else self.name

    @property
    def is_government(self) -> bool:
        return self.kind in self.GOVERNMENT_KINDS


class Membership(models.Model):
    class Role(models.TextChoices):
        COORDINATOR = "coordinator", _("Coordinator")
        MANAGER = "manager", _("Manager")
        CONTRIBUTOR = "contributor", _("Contributor")
        VIEWER = "viewer", _("Viewer")

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization,
        verbose_name=_("organization"),
        on_delete=models.CASCADE,
        related_name="memberships",
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        ordering = ["organization__name", "user__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"],
                name="membership_one_per_user_and_organization",
                violation_error_message=_(
                    "This user already has a membership in this organization."
                ),
            ),
            models.CheckConstraint(
                condition=Q(role__in=["coordinator", "manager", "contributor", "viewer"]),
                name="membership_role_valid",
                violation_error_message=_(
                    "Role must be coordinator, manager, contributor or viewer."
                ),
            ),
        ]

    def __str__(self):
        return f"{self.user.username} — {self.get_role_display()} at {self.organization}"


class WorkerHeartbeat(models.Model):
    """One row per Celery worker host, stamped by the periodic heartbeat task."""

    hostname = models.CharField(_("hostname"), max_length=255, unique=True)
    last_seen_at = models.DateTimeField(
        _("last seen at"),
    )
    beats = models.PositiveBigIntegerField(_("beats"), default=0)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")
        ordering = ["-last_seen_at"]

    def __str__(self):
        return f"{self.hostname} at {self.last_seen_at:%Y-%m-%d %H:%M:%S %Z}"


class ApiToken(models.Model):
    """A bearer token for integrations: acts as its user, capped by its scope.

    Only a keyed hash of the secret is stored (HMAC-SHA256 with API_TOKEN_PEPPER); the full
    token is shown once, when it is created. The visible prefix finds the row.
    """

    class Scope(models.TextChoices):
        READ = "read", _("Read only")
        READ_WRITE = "read_write", _("Read and write")

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        _("name"),
        max_length=100,
        help_text=_("What the token is for, e.g. 'ERP sync'."),
        validators=[validate_single_line],
    )
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, editable=False)
    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name_plural = _("API tokens")
        verbose_name = _("API token")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scope__in=["read", "read_write"]),
                name="apitoken_scope_valid",
                violation_error_message=_("Scope must be 'read' or 'read_write'."),
            ),
        ]

    def __str__(self):
        return f"{self.prefix}… ({self.name}, {self.user.username})"

    def is_usable(self, now) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IdempotencyKey(models.Model):
    """A POST the API has seen with an `Idempotency-Key` header (tracker/idempotency.py).

    Neither the key nor the request is stored: `key_hash` is an HMAC (API_TOKEN_PEPPER) of the
    caller (token, or user for a session) and the key, `fingerprint` a SHA-256 of the method,
    path, query and body. The first successful answer is kept, its body encrypted under a key
    derived from the client's key, so only a client presenting the key can read it back.
    `response_status` is null while the request runs (or after it failed and the row was not
    yet removed).
    """

    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64, editable=False)
    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+"
    )
    token = models.ForeignKey(
        ApiToken,
        verbose_name=_("API token"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True)
    response_headers = models.JSONField(_("response headers"), default=dict)
    response_body = models.BinaryField(_("response body"), default=b"")
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"), db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")

    def __str__(self):
        return f"{self.key_hash[:12]}… ({self.response_status or 'in progress'})"
