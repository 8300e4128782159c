# ruff: noqa: E501 (the readouts are paragraphs, one a line)
"""Readout intake's reading: commitments found (with parties, kind, amount and deadline),
descriptions left out, every deadline phrase resolved against a publication date. Texts are
written for these tests (no text copied from the records)."""

import datetime as dt
from decimal import Decimal

import pytest

from plans.intake import amounts, deadlines, sentences
from plans.intake.services import propose

from .intake_support import demo_registry

PUBLISHED = dt.date(2025, 3, 14)

READOUT_EN = """Joint Readout: Third Korea-US Industrial Policy Dialogue
SEOUL, March 14, 2025 - Today, the Ministry of Trade, Industry and Energy (MOTIE) and the U.S. Department of Commerce held the third Industrial Policy Dialogue in Seoul. The two sides reviewed the implementation of the joint plan adopted the year before.
They noted the opening of two cooperation centers at U.S. universities. The ministers welcomed the growing number of joint research projects. They discussed recent developments in battery supply chains. The ministers welcomed the news that a third center will open in Atlanta. They noted that Korean firms plan to expand their U.S. plants.
MOTIE and Commerce agreed to launch a joint early warning system for battery supply chains by the end of Q3. Both sides committed to publishing a joint report on critical minerals within the year. KEIT will open a call for joint R&D projects in the second half of 2025. Commerce plans to host the next dialogue in Washington next year.
The Korea Semiconductor Industry Association and the Semiconductor Industry Association signed an MOU on workforce training. Samsung pledged USD 2.5 billion for an advanced packaging plant in Texas (2025-2027). Three U.S. companies submitted declarations of investment in Korea totaling KRW 850 billion. Hanmi Battery Corporation pledged $7 billion for a cathode plant in Georgia by 2028.
The ministers decided to set up a standards working group this May. They directed staff to prepare a work plan for the critical minerals sub-working group by 2027. KOTRA launched an investment desk for U.S. firms in Seoul.
In 2023, the two ministries had signed a memorandum on hydrogen, which has since been carried out. Minister Ahn said, "We will keep building this partnership together."
"""

# (start of the sentence, kind, parties, amount, currency, deadline, phrase)
EXPECTED_EN = [
    ("MOTIE and Commerce agreed", "commitment", ["MOTIE", "DOC"], None, "",
     dt.date(2025, 9, 30), "by the end of Q3"),
    ("Both sides committed", "commitment", ["MOTIE", "DOC"], None, "",
     dt.date(2025, 12, 31), "within the year"),
    ("KEIT will open", "commitment", ["KEIT"], None, "",
     dt.date(2025, 12, 31), "in the second half of 2025"),
    ("Commerce plans to host", "commitment", ["DOC"], None, "",
     dt.date(2026, 12, 31), "next year"),
    ("The Korea Semiconductor Industry Association", "mou", ["KSIA", "SIA"], None, "",
     None, ""),
    ("Samsung pledged", "investment_pledge", ["SAMSUNG"], Decimal("2500000000"), "USD",
     dt.date(2027, 12, 31), "2025-2027"),
    ("Three U.S. companies submitted", "investment_pledge", [], Decimal("850000000000"), "KRW",
     None, ""),
    ("Hanmi Battery Corporation pledged", "investment_pledge", [], Decimal("7000000000"), "USD",
     dt.date(2028, 12, 31), "by 2028"),
    ("The ministers decided", "decision", ["MOTIE", "DOC"], None, "",
     dt.date(2025, 5, 31), "this May"),
    ("They directed staff", "decision", ["MOTIE", "DOC"], None, "",
     dt.date(2027, 12, 31), "by 2027"),
    ("KOTRA launched", "decision", ["KOTRA"], None, "", None, ""),
]  # fmt: skip
DESCRIPTIVE_EN = [
    "held the third Industrial Policy Dialogue",
    "reviewed the implementation",
    "noted the opening",
    "welcomed the growing number",
    "discussed recent developments",
    "a third center will open",
    "Korean firms plan to expand",
    "had signed a memorandum on hydrogen",
    "We will keep building",
]

READOUT_KO = """2025년 4월 15일 서울에서 산업통상자원부와 미국 상무부는 제4차 산업협력대화를 개최했다.
양측은 지난 1년간의 협력 성과를 점검했다.
양측은 반도체 공급망 조기경보 체계를 연내 구축하기로 합의했다.
한국반도체산업협회와 미국반도체산업협회는 인력 양성 협력을 위한 양해각서를 체결했다.
삼성전자는 텍사스 공장에 6억 달러 투자를 약속했다.
산업부는 2027년까지 협력센터 6곳을 추가로 선정할 계획이다.
양측은 핵심광물 소위원회를 하반기에 출범시키기로 결정했다.
양측은 청정에너지 분야 협력 현황을 논의했다.
"""
EXPECTED_KO = [
    ("양측은 반도체", "commitment", ["MOTIE", "DOC"], None, "", dt.date(2025, 12, 31), "연내"),
    ("한국반도체산업협회", "mou", ["KSIA", "SIA"], None, "", None, ""),
    ("삼성전자는", "investment_pledge", ["SAMSUNG"], Decimal("600000000"), "USD", None, ""),
    ("산업부는", "commitment", ["MOTIE"], None, "", dt.date(2027, 12, 31), "2027년까지"),
    ("양측은 핵심광물", "decision", ["MOTIE", "DOC"], None, "", dt.date(2025, 12, 31),
     "하반기"),
]  # fmt: skip


def _check(proposals, expected, text):
    starts = [row[0] for row in expected]
    found = [p.sentence for p in proposals]
    assert len(found) == len(starts), found
    assert all(f.startswith(start) for f, start in zip(found, starts, strict=True)), found
    for proposal, (_, kind, parties, amount, currency, due, phrase) in zip(
        proposals, expected, strict=True
    ):
        assert text[proposal.start : proposal.end] == proposal.sentence
        assert proposal.kind == kind, proposal.sentence
        assert proposal.party_ids == parties, proposal.sentence
        assert proposal.amount == amount, proposal.sentence
        assert proposal.currency == currency, proposal.sentence
        assert proposal.deadline == due, proposal.sentence
        assert proposal.deadline_phrase == phrase, proposal.sentence


def test_every_commitment_of_an_english_readout_with_parties_kind_amount_and_deadline():
    proposals = propose(READOUT_EN, PUBLISHED, demo_registry())
    _check(proposals, EXPECTED_EN, READOUT_EN)
    hanmi = next(p for p in proposals if p.sentence.startswith("Hanmi"))
    assert hanmi.new_party_names == ["Hanmi Battery Corporation"]
    assert all(not p.new_party_names for p in proposals if p is not hanmi)


def test_no_descriptive_sentence_is_proposed():
    proposals = propose(READOUT_EN, PUBLISHED, demo_registry())
    for words in DESCRIPTIVE_EN:
        assert words in READOUT_EN
        assert not [p for p in proposals if words in p.sentence], words


def test_a_korean_readout():
    proposals = propose(READOUT_KO, dt.date(2025, 4, 15), demo_registry())
    _check(proposals, EXPECTED_KO, READOUT_KO)


def test_titles_say_what_was_committed():
    titles = {p.sentence[:12]: p.title for p in propose(READOUT_EN, PUBLISHED, demo_registry())}
    assert titles["MOTIE and Co"].startswith("Launch a joint early warning system")
    assert titles["The Korea Se"].startswith("An MOU on workforce training")


def test_the_reading_is_deterministic():
    first = propose(READOUT_EN, PUBLISHED, demo_registry())
    assert propose(READOUT_EN, PUBLISHED, demo_registry()) == first


# --- Deadline phrases -------------------------------------------------------------------------

PHRASES = [
    # (phrase, published, due)
    ("by 2027", dt.date(2024, 6, 27), dt.date(2027, 12, 31)),
    ("within the year", dt.date(2025, 4, 15), dt.date(2025, 12, 31)),
    ("within the year", dt.date(2024, 12, 31), dt.date(2024, 12, 31)),
    ("within the year", dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
    ("in the second half of 2024", dt.date(2024, 6, 28), dt.date(2024, 12, 31)),
    ("the latter half of 2024", dt.date(2024, 6, 28), dt.date(2024, 12, 31)),
    ("the latter half of this year", dt.date(2024, 6, 28), dt.date(2024, 12, 31)),
    ("in the first half of next year", dt.date(2024, 12, 31), dt.date(2025, 6, 30)),
    ("Joint Plan 2.0 (2025-2027)", dt.date(2025, 4, 15), dt.date(2027, 12, 31)),
    ("Joint Plan 2.0 (2025–2027)", dt.date(2025, 4, 15), dt.date(2027, 12, 31)),
    ("Joint Plan 2.0 (2025~2027)", dt.date(2025, 4, 15), dt.date(2027, 12, 31)),
    ("by the end of Q3", dt.date(2025, 3, 14), dt.date(2025, 9, 30)),
    ("by the end of Q3", dt.date(2024, 11, 2), dt.date(2025, 9, 30)),
    ("by the end of Q3", dt.date(2024, 9, 30), dt.date(2024, 9, 30)),
    ("by the end of Q3 2026", dt.date(2024, 11, 2), dt.date(2026, 9, 30)),
    ("this May", dt.date(2025, 3, 14), dt.date(2025, 5, 31)),
    ("this May", dt.date(2024, 12, 31), dt.date(2024, 5, 31)),
    ("by May", dt.date(2024, 12, 31), dt.date(2025, 5, 31)),
    ("next year", dt.date(2024, 12, 31), dt.date(2025, 12, 31)),
    ("next year", dt.date(2025, 1, 1), dt.date(2026, 12, 31)),
    ("by year-end", dt.date(2025, 12, 31), dt.date(2025, 12, 31)),
    ("2027년까지", dt.date(2024, 12, 31), dt.date(2027, 12, 31)),
    ("연내", dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
    ("하반기", dt.date(2024, 12, 31), dt.date(2024, 12, 31)),
    ("내년 상반기", dt.date(2024, 12, 31), dt.date(2025, 6, 30)),
    ("3분기까지", dt.date(2024, 11, 2), dt.date(2025, 9, 30)),
    ("내년", dt.date(2025, 1, 1), dt.date(2026, 12, 31)),
]


@pytest.mark.parametrize(("phrase", "published", "due"), PHRASES)
def test_deadline_phrases_against_the_publication_date(phrase, published, due):
    deadline = deadlines.find_deadline(phrase, published)
    assert deadline is not None, phrase
    assert deadline.due == due


def test_a_named_deadline_beats_the_period_in_a_title():
    text = "The government plans to set up Joint Plan 2.0 (2025-2027) within the year."
    deadline = deadlines.find_deadline(text, dt.date(2025, 4, 15))
    assert (deadline.due, deadline.phrase) == (dt.date(2025, 12, 31), "within the year")


@pytest.mark.parametrize(
    "text", ["They may agree later.", "Revenue grew 5% in the quarter.", "A 2024 report."]
)
def test_no_deadline_where_there_is_none(text):
    assert deadlines.find_deadline(text, PUBLISHED) is None


# --- Amounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "currency"),
    [
        ("totaling USD 0.6 billion (KRW 850 billion)", "600000000", "USD"),
        ("pledged $7 billion", "7000000000", "USD"),
        ("KRW 850 billion", "850000000000", "KRW"),
        ("₩13 trillion", "13000000000000", "KRW"),
        ("app. KRW 10 bln", "10000000000", "KRW"),
        ("EUR 40 million", "40000000", "EUR"),
        ("8,500억 원", "850000000000", "KRW"),
        ("1조 2,000억 원", "1200000000000", "KRW"),
        ("6억 달러", "600000000", "USD"),
    ],
)
def test_amounts_become_a_decimal_and_an_iso_code(text, value, currency):
    amount = amounts.find_amount(text)
    assert (amount.value, amount.currency) == (Decimal(value), currency)


def test_sentences_keep_their_offsets_and_abbreviations():
    text = "The U.S. Department of Commerce met MOTIE. They agreed to meet again.\nNext line."
    split = sentences.split(text)
    assert [s.text for s in split] == [
        "The U.S. Department of Commerce met MOTIE.",
        "They agreed to meet again.",
        "Next line.",
    ]
    assert all(text[s.start : s.end] == s.text for s in split)
