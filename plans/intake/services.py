"""Readout intake, as services: paste a text, review the drafts, confirm them into outcomes,
turn confirmed ones into tasks of a plan.

`propose()` is the reading itself (no database writes, deterministic): every commitment
sentence of the text with its kind, title, parties, amount and suggested deadline.
`readout_intake()` stores the text and its drafts; `draft_update`, `draft_confirm`,
`draft_drop`, `draft_add_organization` and `drafts_create_tasks` are the review. Each checks
the one policy (plans.permissions) for its actor and runs in one transaction.
"""

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_noop

from tracker.i18n import message
from tracker.models import Organization, User
from tracker.validators import validate_date_in_range

from .. import permissions as policy
from .. import services as plan_services
from ..exceptions import DomainError
from ..models import Forum, Outcome, OutcomeKind, Plan, PlanParticipant, Task, Workstream
from . import amounts, deadlines, sentences
from .models import OutcomeDraft, Readout
from .parties import HANGUL, Registry

MAX_TEXT = 100_000
TEXT_REQUIRED = gettext_noop("Paste the text of a joint statement, readout or press release.")
TEXT_TOO_LONG = gettext_noop("The text is too long: at most {limit} characters.")
NO_COMMITMENT = gettext_noop("No commitment was found in this text.")
DRAFT_REVIEWED = gettext_noop("This draft is already {status}: it can no longer be changed.")
DRAFT_NOT_CONFIRMED = gettext_noop("Draft {id} is not confirmed yet: confirm it first.")
DRAFT_OTHER_FORUM = gettext_noop("Draft {id} belongs to another forum.")
DRAFT_HAS_TASK = gettext_noop(
    "Draft {id}: its outcome already has task {ref} in this plan; a second one would repeat it."
)
NO_DRAFTS = gettext_noop("Pick at least one confirmed draft.")
NO_LEAD = gettext_noop(
    "None of the draft's parties takes part in this plan: choose the lead organization."
)
REF_PREFIX_INVALID = gettext_noop(
    "A ref prefix is letters, digits and dashes, up to 20 characters (e.g. SC)."
)
NAME_NOT_OFFERED = gettext_noop("{name} is not one of the draft's new organizations.")
WORKSTREAM_OTHER_PLAN = gettext_noop("The workstream belongs to another plan.")

# Subjects that stand for the parties of the whole text ("They agreed", "The Secretary and
# Minister committed", "양측은 합의했다").
COLLECTIVE = re.compile(
    r"\b(?:they|we|both|two sides|two countries|two governments|secretary|minister|ministers|"
    r"officials|delegations|leaders|sides|the two)\b|양측|양국|양 장관|두 장관|양 정부",
    re.IGNORECASE,
)
SEPARATOR_LINE = re.compile(r"[-–—*_=#~·•\s]+")
INVESTMENT = re.compile(r"invest|pledg|투자", re.IGNORECASE)
MOU_MENTION = re.compile(
    r"\b(?:MOUs?|MOAs?|memorand(?:um|a)(?: of (?:understanding|terms))?|letters? of intent)\b"
    r"|양해각서|업무협약",
    re.IGNORECASE,
)


@dataclass
class Proposal:
    sentence: str
    start: int
    end: int
    trigger: str
    kind: str
    title: str
    party_ids: list = field(default_factory=list)
    new_party_names: list = field(default_factory=list)
    amount: Decimal | None = None
    currency: str = ""
    deadline: dt.date | None = None
    deadline_phrase: str = ""


def _kind(finding: sentences.Finding, text: str, amount) -> str:
    if finding.kind == sentences.MOU or (
        finding.kind != sentences.INVESTMENT_PLEDGE and MOU_MENTION.search(text)
        and finding.kind != sentences.DECISION
    ):  # fmt: skip
        return OutcomeKind.MOU
    if finding.kind == sentences.INVESTMENT_PLEDGE or (amount and INVESTMENT.search(text)):
        return OutcomeKind.INVESTMENT_PLEDGE
    if finding.kind == sentences.DECISION:
        return OutcomeKind.DECISION
    return OutcomeKind.COMMITMENT


PAST_SPENDING = re.compile(r"\b(?:having|has|have|had)\s+(?:already\s+)?(?:invested|spent)\b",
                           re.IGNORECASE)  # fmt: skip


def _amount(text: str, finding: sentences.Finding):
    """The amount committed: the first after the commitment phrase, else the first before it;
    never one of money already spent ("Having invested $9.3 billion, Corning plans to")."""
    found = []
    for amount in amounts.find_amounts(text):
        clause = re.split(r"[,;]", text[: amount.start])[-1]
        if not PAST_SPENDING.search(clause):
            found.append(amount)
    after = [amount for amount in found if amount.start >= finding.trigger_start]
    return (after or found or [None])[0]


def propose(text: str, published_on: dt.date, registry: Registry | None = None) -> list[Proposal]:
    """Every commitment of `text`, read against the organization registry (built from the
    database unless given) and the publication date. Descriptive sentences are left out."""
    registry = registry if registry is not None else Registry.build()
    split = sentences.split(text)
    proposals = []
    text_parties: list = []
    seen = 0  # sentences of the current document (a line of dashes starts another)
    for sentence in split:
        if SEPARATOR_LINE.fullmatch(sentence.text):
            text_parties, seen = [], 0
            continue
        seen += 1
        if seen <= 3:
            # The parties of the whole text: those its first sentences name.
            named, _ = registry.find(sentence.text)
            text_parties += [pk for pk in named if pk not in text_parties]
        finding = sentences.classify(sentence.text)
        if finding is None:
            continue
        party_ids, new_names = registry.find(sentence.text)
        subject = sentence.text[: finding.trigger_start]
        if COLLECTIVE.search(subject) or (not party_ids and finding.mechanism):
            party_ids = [*text_parties, *(pk for pk in party_ids if pk not in text_parties)]
        amount = None if finding.mechanism else _amount(sentence.text, finding)
        deadline = deadlines.find_deadline(sentence.text, published_on, not_before=True)
        title = sentences.title_for(sentence.text, finding)
        if finding.mechanism:
            title = f"Working groups: {title}"[:300]
        proposals.append(
            Proposal(
                sentence=sentence.text,
                start=sentence.start,
                end=sentence.end,
                trigger=finding.trigger[:200],
                kind=_kind(finding, sentence.text, amount),
                title=title,
                party_ids=party_ids,
                new_party_names=new_names,
                amount=amount.value if amount else None,
                currency=amount.currency if amount else "",
                deadline=deadline.due if deadline else None,
                deadline_phrase=deadline.phrase[:200] if deadline else "",
            )
        )
    return proposals


def _check_text(text, published_on) -> None:
    errors = {}
    if not isinstance(text, str) or not text.strip():
        errors["text"] = message(TEXT_REQUIRED)
    elif len(text) > MAX_TEXT:
        errors["text"] = message(TEXT_TOO_LONG, limit=MAX_TEXT)
    if not isinstance(published_on, dt.date):
        errors["published_on"] = message(gettext_noop("Give the date the text was published."))
    else:
        try:
            validate_date_in_range(published_on)
        except ValidationError as exc:
            errors["published_on"] = exc.messages
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def readout_intake(*, actor: User, forum: Forum, text: str, published_on: dt.date) -> Readout:
    """Store the text and a draft for each commitment found in it (none found: a 400 on
    `text`, nothing stored)."""
    policy.ensure(actor, policy.VIEW, forum)
    policy.ensure(actor, policy.ADD, OutcomeDraft)
    _check_text(text, published_on)
    text = text.replace("\r\n", "\n")
    proposals = propose(text, published_on)
    if not proposals:
        raise ValidationError({"text": message(NO_COMMITMENT)})
    readout = Readout(forum=forum, text=text, published_on=published_on, created_by=actor)
    readout.full_clean()
    readout.save()
    drafts = []
    for position, proposal in enumerate(proposals, start=1):
        draft = OutcomeDraft(
            readout=readout,
            forum=forum,
            position=position,
            sentence=proposal.sentence,
            start=proposal.start,
            end=proposal.end,
            trigger=proposal.trigger,
            kind=proposal.kind,
            title=proposal.title[:300],
            new_party_names=proposal.new_party_names,
            amount=proposal.amount,
            currency=proposal.currency,
            deadline=proposal.deadline,
            deadline_phrase=proposal.deadline_phrase,
        )
        draft.full_clean(exclude=["readout", "forum"])
        drafts.append(draft)
    OutcomeDraft.objects.bulk_create(drafts)
    through = OutcomeDraft.parties.through
    through.objects.bulk_create(
        through(outcomedraft_id=draft.pk, organization_id=pk)
        for draft, proposal in zip(drafts, proposals, strict=True)
        for pk in proposal.party_ids
    )
    return readout


def _lock(actor: User, draft: OutcomeDraft | int) -> OutcomeDraft:
    pk = draft.pk if isinstance(draft, OutcomeDraft) else draft
    visible = policy.for_user(actor, policy.VIEW, OutcomeDraft)
    try:
        locked = visible.select_for_update().get(pk=pk)
    except (OutcomeDraft.DoesNotExist, ValueError, TypeError):
        raise policy.NotVisible() from None
    policy.ensure(actor, policy.CHANGE, locked)
    return locked


def _ensure_open(draft: OutcomeDraft) -> None:
    if draft.status != OutcomeDraft.Status.DRAFT:
        raise DomainError(
            message(DRAFT_REVIEWED, status=draft.status, status_label=draft.get_status_display())
        )


EDITABLE = ("kind", "title", "amount", "currency", "deadline", "deadline_phrase")


@transaction.atomic
def draft_update(
    *, actor: User, draft, parties: Iterable[Organization] | None = None,
    new_party_names: list | None = None, **fields
) -> OutcomeDraft:  # fmt: skip
    """Edit a draft under review: its kind, title, parties, amount, currency, deadline."""
    draft = _lock(actor, draft)
    _ensure_open(draft)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError({name: "Not an editable field." for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(draft, name, value)
    if "amount" in fields and fields["amount"] is None and "currency" not in fields:
        draft.currency = ""
    if new_party_names is not None:
        draft.new_party_names = [str(name) for name in new_party_names]
    draft.full_clean(exclude=["readout", "forum", "outcome"])
    draft.save()
    if parties is not None:
        draft.parties.set(parties)
    return draft


@transaction.atomic
def draft_drop(*, actor: User, draft) -> OutcomeDraft:
    """Not an outcome after all: kept, marked dropped, out of the review list."""
    draft = _lock(actor, draft)
    _ensure_open(draft)
    draft.status = OutcomeDraft.Status.DROPPED
    draft.save(update_fields=["status", "updated_at"])
    return draft


@transaction.atomic
def draft_add_organization(
    *, actor: User, draft, name: str, kind: str, country: str
) -> Organization:
    """Register one of the draft's unknown names as a new organization, and make it a party."""
    draft = _lock(actor, draft)
    _ensure_open(draft)
    if name not in draft.new_party_names:
        raise ValidationError({"name": message(NAME_NOT_OFFERED, name=name)})
    policy.ensure(actor, policy.ADD, Organization)
    language = "ko" if HANGUL.search(name) else "en"
    organization = Organization(kind=kind, country=country, **{f"name_{language}": name})
    organization.full_clean()
    organization._history_user = actor
    organization.save()
    draft.new_party_names = [other for other in draft.new_party_names if other != name]
    draft.save(update_fields=["new_party_names", "updated_at"])
    draft.parties.add(organization)
    return organization


def _title_fields(title: str) -> dict:
    return {"title_ko" if HANGUL.search(title) else "title_en": title}


@transaction.atomic
def draft_confirm(*, actor: User, draft) -> Outcome:
    """The draft becomes an outcome of its forum (plans.services.outcome_create), quoting
    the sentence it came from."""
    draft = _lock(actor, draft)
    _ensure_open(draft)
    clause = f"{draft.readout.published_on:%Y-%m-%d}, ¶{draft.position} ({draft.start}-{draft.end})"
    outcome = plan_services.outcome_create(
        actor=actor,
        forum=draft.forum,
        kind=draft.kind,
        parties=list(draft.parties.all()),
        text=draft.sentence,
        clause_ref=clause[:100],
        amount=draft.amount,
        currency=draft.currency,
        **_title_fields(draft.title),
    )
    draft.status = OutcomeDraft.Status.CONFIRMED
    draft.outcome = outcome
    draft.save(update_fields=["status", "outcome", "updated_at"])
    return outcome


def _next_refs(plan: Plan, prefix: str, count: int) -> list[str]:
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)$")
    used = [
        int(match[1])
        for ref in Task.objects.filter(plan=plan, ref__startswith=f"{prefix}-").values_list(
            "ref", flat=True
        )
        if (match := pattern.match(ref))
    ]
    start = max(used, default=0) + 1
    return [f"{prefix}-{number:02d}" for number in range(start, start + count)]


@transaction.atomic
def drafts_create_tasks(
    *,
    actor: User,
    forum: Forum,
    plan: Plan,
    drafts: Iterable,
    ref_prefix: str,
    lead_organization: Organization | None = None,
    workstream: Workstream | None = None,
) -> list[Task]:
    """One task in `plan` per confirmed draft, each keeping its source outcome
    (Task.source_outcomes): titled like the draft, due on its suggested deadline (else at the
    plan's end), led by `lead_organization` or else the first of the draft's parties that
    takes part in the plan, supported by its other parties in the plan. All or nothing."""
    policy.ensure(actor, policy.VIEW, plan)
    policy.ensure(actor, policy.CHANGE, plan)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,19}", ref_prefix or ""):
        raise ValidationError({"ref_prefix": message(REF_PREFIX_INVALID)})
    if workstream is not None and workstream.plan_id != plan.pk:
        raise ValidationError({"workstream": message(WORKSTREAM_OTHER_PLAN)})
    ids = [draft.pk if isinstance(draft, OutcomeDraft) else draft for draft in drafts]
    if not ids:
        raise ValidationError({"drafts": message(NO_DRAFTS)})
    rows = {
        draft.pk: draft
        for draft in policy.for_user(actor, policy.VIEW, OutcomeDraft)
        .filter(pk__in=ids)
        .select_related("outcome", "readout")
    }
    in_plan = set(
        PlanParticipant.objects.filter(plan=plan).values_list("organization_id", flat=True)
    )
    chosen = []
    for pk in ids:
        draft = rows.get(pk)
        if draft is None:
            raise policy.NotVisible()
        if draft.forum_id != forum.pk:
            raise ValidationError({"drafts": message(DRAFT_OTHER_FORUM, id=pk)})
        if draft.status != OutcomeDraft.Status.CONFIRMED or draft.outcome is None:
            raise ValidationError({"drafts": message(DRAFT_NOT_CONFIRMED, id=pk)})
        chosen.append(draft)
    # Creating twice would make the same tasks twice: an outcome gets one task in a plan here.
    taken = (
        Task.objects.filter(plan=plan, source_outcomes__in=[draft.outcome_id for draft in chosen])
        .values_list("source_outcomes", "ref")
        .order_by("ref")
    )
    done = dict(reversed(list(taken)))
    for draft in chosen:
        if draft.outcome_id in done:
            raise ValidationError(
                {"drafts": message(DRAFT_HAS_TASK, id=draft.pk, ref=done[draft.outcome_id])}
            )
    # Parties in the order the text named them (the order they were stored in).
    named: dict[int, list[Organization]] = {draft.pk: [] for draft in chosen}
    through = OutcomeDraft.parties.through.objects.filter(outcomedraft_id__in=named)
    for row in through.select_related("organization").order_by("pk"):
        named[row.outcomedraft_id].append(row.organization)
    tasks = []
    for draft, ref in zip(chosen, _next_refs(plan, ref_prefix, len(chosen)), strict=True):
        parties = [org for org in named[draft.pk] if org.pk in in_plan]
        lead = lead_organization or (parties[0] if parties else None)
        if lead is None:
            raise ValidationError({"lead_organization": message(NO_LEAD)})
        due = draft.deadline or plan.period_end
        tasks.append(
            plan_services.task_create(
                actor=actor,
                plan=plan,
                ref=ref,
                lead_organization=lead,
                supporting_organizations=[org for org in parties if org.pk != lead.pk],
                due_date=due,
                workstream=workstream,
                source_outcomes=[draft.outcome],
                description=draft.sentence,
                note=f"From the readout of {draft.readout.published_on:%Y-%m-%d}"
                + (f" ({draft.deadline_phrase})" if draft.deadline_phrase else ""),
                **_title_fields(draft.title),
            )
        )
    return tasks


def draft_list(*, user: User, forum: Forum, statuses=None):
    """The drafts of a forum the user may review, in text order (newest readout first)."""
    drafts = policy.for_user(user, policy.VIEW, OutcomeDraft).filter(forum=forum)
    if statuses:
        drafts = drafts.filter(status__in=statuses)
    return (
        drafts.select_related("readout", "outcome")
        .prefetch_related("parties")
        .order_by("-readout__created_at", "-readout_id", "position")
    )


def forum_for_intake(*, user: User, pk) -> Forum:
    """The forum, when the user may see it (else NotVisible -> 404)."""
    try:
        forum = policy.for_user(user, policy.VIEW, Forum).get(pk=pk)
    except (Forum.DoesNotExist, ValueError, TypeError):
        raise policy.NotVisible() from None
    return forum
