"""Readout intake over the real forum records (../shared/seeds), against expected lists
written by reading them. Skipped, with the reason, where the records are absent."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from plans.intake.services import propose

from .intake_support import SEEDS, demo_registry, seed

pytestmark = pytest.mark.skipif(
    not SEEDS.is_dir(),
    reason=f"The forum records are not here ({SEEDS}); set TRACKER_SEEDS_DIR to check them.",
)

JUNE_2024 = dt.date(2024, 6, 28)


def _sccd_readout_of_001() -> str:
    """The 2nd SCCD Ministerial's joint readout, one of the articles of record 001."""
    articles = re.split(r"\n-\n", seed("001"))
    (readout,) = [a for a in articles if a.startswith("Joint Readout: United States-Korea")]
    return readout


# The 2nd SCCD Ministerial: what a reader of the readout takes away, in text order.
# (sentence contains, kind, parties that must be among the draft's parties, title contains)
SCCD = [
    ("working groups", "decision", {"DOC", "MOTIE"}, ["Working groups", "Dual-Use Export"]),
    ("critical minerals Sub-Working group", "decision", {"DOC", "MOTIE"}, ["critical minerals"]),
    ("memoranda", "mou", {"DOC", "SAMSUNG", "ABSOLICS"}, ["Samsung Electronics", "Absolics"]),
    ("healthcare", "commitment", {"DOC", "MOTIE"}, ["healthcare"]),
    ("export control", "commitment", {"DOC", "MOTIE"}, ["export control"]),
    ("third countries", "commitment", {"DOC", "MOTIE"}, ["third countries"]),
]


def _check_sccd(text: str):
    proposals = propose(text, JUNE_2024, demo_registry())
    assert len(proposals) == len(SCCD), [p.sentence[:60] for p in proposals]
    for proposal, (words, kind, parties, title_words) in zip(proposals, SCCD, strict=True):
        assert words.lower() in proposal.sentence.lower()
        assert proposal.kind == kind, proposal.sentence
        assert parties <= set(proposal.party_ids), (proposal.sentence, proposal.party_ids)
        for word in title_words:
            assert word.lower() in proposal.title.lower(), proposal.title
        assert text[proposal.start : proposal.end] == proposal.sentence
    return proposals


def test_the_2nd_sccd_ministerial_summary_004():
    proposals = _check_sccd(seed("004"))
    groups = proposals[0].title
    for name in ("Advanced Manufacturing", "Healthcare", "Digital Economy"):
        assert name in groups
    # Nothing merely noted, celebrated or discussed: digital economy, the forum, showcases.
    assert not [p for p in proposals if "Further discussions included" in p.sentence]


def test_the_2nd_sccd_ministerial_joint_readout_in_001():
    _check_sccd(_sccd_readout_of_001())


def test_the_5th_industrial_cooperation_conference_002():
    (plan,) = propose(seed("002"), dt.date(2025, 4, 15), demo_registry())
    assert "Joint Plan 2.0" in plan.title
    assert plan.kind == "commitment"
    assert (plan.deadline, plan.deadline_phrase) == (dt.date(2025, 12, 31), "within the year")


# Every record in full: the sentences proposed (their openings), and what each says.
RECORD_000 = [
    ("Korea, US ink 23 MOUs", "mou", set()),
    ("Business leaders from South Korea and the United States signed dozens", "mou", set()),
    ("During the business forum, companies and institutions", "mou", set()),
    ("According to the MOUs", "mou", set()),
    ("In the field of robots, Doosan and Doosan Robotics signed an MOU with Rockwell", "mou",
     {"DOOSAN", "DOOSANROBO", "ROCKWELL"}),
    ("In the aviation industry", "decision", {"KEIT", "BOEING"}),
    ("SK Innovation and SK Inc. have agreed", "commitment", {"SKINNO", "SKINC", "KHNP"}),
    ("Korea National Oil Corporation and SK Materials signed", "mou",
     {"KNOC", "SKMAT", "EXXONMOBIL"}),
]  # fmt: skip
RECORD_001 = [
    ("Korea Semiconductor Industry Association (KSIA)", "mou", {"KSIA", "SIA"}),
    *[("", kind, parties) for _, kind, parties, _ in SCCD],
    ("The Ministry of Trade, Industry and Energy (MOTIE) launched", "decision",
     {"MOTIE", "YALE", "PURDUE", "JHU", "GATECH"}),
    ("Beginning in the latter half of this year, MOTIE will", "commitment", {"MOTIE"}),
    ("Six more universities will be selected", "commitment", {"MIT"}),
    ("United by the vision", "commitment", {"DOC", "METI", "MOTIE"}),
    ("Recognizing these two goals", "commitment", {"DOC", "METI", "MOTIE"}),
    ("Together, we seek", "commitment", {"DOC", "METI", "MOTIE"}),
    ("To address the resulting", "commitment", {"DOC", "METI", "MOTIE"}),
    ("Towards that end, we intend", "commitment", {"DOC", "METI", "MOTIE"}),
    ("At the ceremony, Ewha Womans University and Syensqo sealed", "mou", set()),
    ("The delegations of both sides", "commitment", {"MOTIE", "METI"}),
    ("The two sides also agreed", "commitment", {"MOTIE", "METI"}),
    ("The Korean and Japanese delegations agreed", "commitment", {"MOTIE", "METI"}),
    ("The Ministry of Trade, Industry and Energy (MOTIE) announced", "investment_pledge",
     {"ONSEMI", "CORNING", "PACIFICO"}),
    ("Having invested over", "commitment", {"CORNING"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("prefix", "published", "expected"),
    [("000", dt.date(2023, 4, 26), RECORD_000), ("001", JUNE_2024, RECORD_001)],
)
def test_whole_records(prefix, published, expected):
    proposals = propose(seed(prefix), published, demo_registry())
    assert len(proposals) == len(expected), [p.sentence[:60] for p in proposals]
    for proposal, (opening, kind, parties) in zip(proposals, expected, strict=True):
        assert proposal.sentence.startswith(opening), proposal.sentence
        assert proposal.kind == kind, proposal.sentence
        assert parties <= set(proposal.party_ids), (proposal.sentence, proposal.party_ids)


def test_figures_and_dates_in_record_001():
    by_opening = {p.sentence[:40]: p for p in propose(seed("001"), JUNE_2024, demo_registry())}
    pledge = next(p for k, p in by_opening.items() if "announced on June 26" in p.sentence)
    assert (pledge.amount, pledge.currency) == (Decimal("600000000"), "USD")
    rnd = next(p for p in by_opening.values() if p.sentence.startswith("Beginning in"))
    assert (rnd.deadline, rnd.amount, rnd.currency) == (
        dt.date(2024, 12, 31),
        Decimal("10000000000"),
        "KRW",
    )
    centers = next(p for p in by_opening.values() if p.sentence.startswith("Six more"))
    assert (centers.deadline, centers.deadline_phrase) == (dt.date(2027, 12, 31), "by 2027")
    ewha = next(p for p in by_opening.values() if "Ewha" in p.sentence)
    assert ewha.new_party_names == ["Ewha Womans University"]
    # Money already spent is no pledge: Corning's plan states no amount.
    corning = next(p for p in by_opening.values() if p.sentence.startswith("Having invested"))
    assert corning.amount is None
