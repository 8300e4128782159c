"""Splitting a text into sentences (with their offsets) and telling commitments from
descriptions.

A sentence is proposed when it holds a commitment phrase outside quotation marks ("agreed to",
"committed to", "will", "plans to", "signed an MOU", "pledged", "submitted declarations of
investment", "decided to", "directed staff to", "launched", "합의", "체결", "추진하기로", ...).
Strong phrases (agreeing, committing, signing, pledging, deciding, directing, launching)
count wherever they stand; weak ones ("will", "plans to", "intend to") do not when the
sentence only describes: its verb before them is "noted", "welcomed", "reviewed",
"discussed", "highlighted" and the like. A sentence that lists the dialogue's standing working
groups ("working groups, which include: ...") is proposed as a decision to keep them.
"""

import re
from dataclasses import dataclass

ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "corp", "co", "ltd", "no",
    "vs", "etc", "e.g", "i.e", "approx", "app", "est", "dept", "gov", "sen", "rep", "gen",
    "u.s", "u.k", "d.c", "e.u", "r.o.k", "p.m", "a.m", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "bln", "mln",
}  # fmt: skip


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


def split(text: str) -> list[Sentence]:
    """Sentences of `text` with their character offsets (text[start:end] == sentence.text)."""
    sentences: list[Sentence] = []
    for line in re.finditer(r"[^\n]+", text):
        begin = line.start()
        chunk = line.group(0)
        cursor = 0
        for stop in re.finditer(r"[.!?。](?:[\"”’')\]]*)(?=\s+|$)", chunk):
            end = stop.end()
            word = re.search(r"([\w.]+)\.$", chunk[cursor : stop.start() + 1])
            rest = chunk[end:].lstrip()
            if word and word.group(1).lower() in ABBREVIATIONS and rest[:1].isupper():
                # "U.S. Department", "Dr. Kim": not a sentence end, unless a clear new
                # sentence starts ("D.C. The Forum" stays one sentence: rare, harmless).
                continue
            if rest[:1].islower():
                continue
            _add(sentences, chunk, begin, cursor, end)
            cursor = end
        _add(sentences, chunk, begin, cursor, len(chunk))
    return sentences


def _add(sentences, chunk, begin, start, end):
    piece = chunk[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    lead = len(piece) - len(piece.lstrip())
    first = begin + start + lead
    sentences.append(Sentence(stripped, first, first + len(stripped)))


# --- Commitment phrases ---------------------------------------------------------------------

MOU = "mou"
INVESTMENT_PLEDGE = "investment_pledge"
COMMITMENT = "commitment"
DECISION = "decision"

_W = r"(?:\s+[\w-]+){0,4}?"  # a few words between a verb and its object ("signed non-binding ...")
MOU_WORDS = (
    r"(?:MOUs?|MOAs?|memorand(?:ums?|a)|letters? of intent|LOIs?|agreements?|deals?|"
    r"양해각서|업무협약|협약|MOU)"
)

# (kind hint, strong, pattern). Kind hints: the kind the phrase suggests unless the sentence
# says more (an amount makes a pledge; an MOU word an MOU).
TRIGGERS = [
    (
        MOU,
        True,
        r"\b(?:signed|signing|sign|signs|inked|inking|ink|sealed|entered(?: into)?|"
        r"concluded|exchanged|entering into)" + _W + r"\s+" + MOU_WORDS + r"\b",
    ),
    (INVESTMENT_PLEDGE, True, r"\b(?:pledged|pledges to|pledge to|pledging)\b"),
    (INVESTMENT_PLEDGE, True, r"\bsubmitted" + _W + r"\s+declarations? of investment"),
    (INVESTMENT_PLEDGE, True, r"\bdeclared" + _W + r"\s+investments?\b"),
    (COMMITMENT, True, r"\b(?:agreed|agree|agrees)\s+(?:to|on|that)\b"),
    (COMMITMENT, True, r"\b(?:committed|commit|commits)\s+to\b"),
    (COMMITMENT, True, r"\b(?:resolved?|resolves)\s+to\b"),
    (DECISION, True, r"\b(?:decided|decide|decides)\s+(?:to|on|that)\b"),
    (
        DECISION,
        True,
        r"\b(?:directed|instructed|tasked)\s+(?:their\s+|the\s+)?"
        r"(?:staff|officials|teams?|working[- ]level officials)\s+to\b",
    ),
    (DECISION, True, r"\blaunched\b"),
    (COMMITMENT, False, r"\bwill\b"),
    (COMMITMENT, False, r"\b(?:plans|plan|planning|intends?|intend)\s+to\b"),
    (COMMITMENT, False, r"\b(?:aims?|seeks?|aim|seek)\s+to\b"),
    (
        COMMITMENT,
        False,
        r"\bis\s+to\s+be\b|\bto be (?:set up|established|held|"
        r"launched|selected)\b",
    ),
    # Korean
    (MOU, True, r"(?:양해각서|업무협약|협약|MOU)[^.]{0,20}?(?:체결|서명)"),
    (INVESTMENT_PLEDGE, True, r"투자[^.]{0,12}?(?:약속|서약|신고|의향서)"),
    (COMMITMENT, True, r"합의|약속"),
    (DECISION, True, r"결정|출범|발족"),
    (COMMITMENT, False, r"추진하기로|하기로\s*(?:했|하였)|예정이다|계획이다|추진한다|할 방침"),
]
TRIGGER_RES = [(kind, strong, re.compile(p, re.IGNORECASE)) for kind, strong, p in TRIGGERS]

# "will" that predicts or describes rather than commits ("hydrogen will play a role", "the
# plan will include ...", "will be a symbol"); a passive future ("will be selected") commits.
WILL_DESCRIBES = re.compile(
    r"\bwill\s+(?:also\s+)?(?:play|include|remain|have|need|enjoy|become|help|depend|"
    r"be\s+(?!\w+ed\b)\w+)",
    re.IGNORECASE,
)
# "plans to" after a determiner or verb is the noun ("introduced plans to localize").
PLANS_NOUN = re.compile(
    r"\b(?:with|introduced|announced|unveiled|its|their|his|her|our|the|of|and|has|have|"
    r"future|new|business|investment)\s+plans\s+to\b",
    re.IGNORECASE,
)
# Verbs of a sentence that only describes, recalls or welcomes.
DESCRIPTIVE = re.compile(
    r"\b(?:noted|note|notes|welcomed|welcome|welcomes|reviewed|discussed|highlighted|"
    r"acknowledged|recognized|recognised|celebrated|reaffirmed|recalled|expressed|emphasized|"
    r"emphasised|stated|said|attended|appreciated|praised|commended|congratulated|"
    r"explained|introduced|shared|suggested|pointed out|added|mentioned|described)\b"
    r"|환영|평가했|논의했|점검했|검토했|강조했|밝혔",
    re.IGNORECASE,
)
# The standing bodies a dialogue works through, listed: proposed as a decision to keep them.
WORKING_GROUPS = re.compile(
    r"\bworking groups?,?\s+(?:which\s+include|including|namely)\s*:?\s*", re.IGNORECASE
)
WORKING_GROUPS_PLURAL = re.compile(r"\bworking groups\b", re.IGNORECASE)
# A sentence recalling what was done before ("had signed", "last year", "has since") is a past
# achievement, not a new commitment, unless it also looks ahead ("will").
RECALL = re.compile(
    r"\b(?:last year|previously|in the past|has since|have since|since then|"
    r"had (?:already )?(?:signed|agreed|committed|pledged|decided|launched))\b|지난해|작년",
    re.IGNORECASE,
)
QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|「[^」]*」")


@dataclass(frozen=True)
class Finding:
    kind: str  # a kind hint (see above)
    trigger: str
    trigger_start: int  # offsets within the sentence
    trigger_end: int
    mechanism: bool = False  # a list of working groups


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in QUOTED.finditer(text)]


def _inside(spans, position: int) -> bool:
    return any(start <= position < end for start, end in spans)


def classify(text: str) -> Finding | None:
    """The commitment `text` (one sentence) states, or None when it only describes."""
    quoted = _quoted_spans(text)
    if RECALL.search(text) and not re.search(r"\bwill\b|예정|계획", text):
        return None
    described = [m.start() for m in DESCRIPTIVE.finditer(text) if not _inside(quoted, m.start())]
    best: Finding | None = None
    best_strong = False
    for kind, strong, pattern in TRIGGER_RES:
        for match in pattern.finditer(text):
            if _inside(quoted, match.start()):
                continue
            phrase = match.group(0)
            if not strong:
                if phrase.lower() == "will" and WILL_DESCRIBES.match(text, match.start()):
                    continue
                if phrase.lower().startswith("plans") and _plans_noun(text, match.start()):
                    continue
                if any(position < match.start() for position in described):
                    continue
            if kind == DECISION and any(position < match.start() for position in described):
                continue  # "welcomed the launch of", "said the ministry launched"
            candidate = Finding(kind, phrase, match.start(), match.end())
            if best is None or (strong, -match.start()) > (best_strong, -best.trigger_start):
                best, best_strong = candidate, strong
            break
    if best is None:
        groups = WORKING_GROUPS.search(text)
        if groups and WORKING_GROUPS_PLURAL.search(text[: groups.end()]):
            return Finding(DECISION, groups.group(0).strip(), groups.start(), groups.end(),
                           mechanism=True)  # fmt: skip
    return best


def _plans_noun(text: str, position: int) -> bool:
    return any(m.start() <= position < m.end() for m in PLANS_NOUN.finditer(text))


def title_for(text: str, finding: Finding, limit: int = 160) -> str:
    """A short title: what follows the commitment phrase ("committed to further cooperation on
    healthcare" -> "Further cooperation on healthcare"), cut at a word near `limit`."""
    if finding.mechanism:
        rest, limit = text[finding.trigger_end :], 280
    elif finding.kind in (MOU, INVESTMENT_PLEDGE) and re.search(r"[A-Za-z]", finding.trigger):
        # Keep the object: "signed preliminary memoranda with ..." -> "Preliminary memoranda ..."
        verb = re.match(r"\S+(?:\s+(?:into|to))?", finding.trigger)
        rest = text[finding.trigger_start + (verb.end() if verb else 0) :]
    elif re.search(r"[A-Za-z]", finding.trigger):
        rest = text[finding.trigger_end :]
    else:
        rest = text  # Korean: the sentence itself
    rest = re.sub(r"^[\s,:;\-–—]+", "", rest).rstrip(" .。")
    if len(rest) < 12:
        rest = text.rstrip(" .。")
    if len(rest) > limit:
        cut = rest[:limit].rsplit(" ", 1)[0].rstrip(",;:")
        rest = cut + "…"
    return rest[:1].upper() + rest[1:]
