"""Organization names in a sentence, resolved against the registry.

Every organization is found by its English and Korean names, its acronyms and its aliases
(`Organization.aliases`: "Commerce", "the Department of Commerce", "Samsung", "상무부"). Names
match whatever their case, spacing and punctuation ("Ministry of Trade, Industry, and Energy"
finds "Ministry of Trade, Industry and Energy"; "&" is "and"); one-word names, aliases and
acronyms match as written ("Commerce", not "commerce"), so common words stay words. The
longest name wins where names overlap ("Korea Semiconductor Industry Association" is KSIA,
not SIA inside it). Capitalized names ending like an organization ("... Corporation",
"... University") that the registry does not know are offered as new organizations.
"""

import re
from dataclasses import dataclass, field

from tracker.models import Organization

HANGUL = re.compile(r"[\uac00-\ud7a3]")
SEPARATOR = r"[\s,.'’\-]*"
SUFFIXES = {
    "association", "associations", "corporation", "corp", "inc", "company", "co", "ltd",
    "university", "institute", "ministry", "department", "agency", "bank", "foundation",
    "council", "electronics", "group", "holdings", "industries", "chemical", "chemicals",
    "semiconductor", "authority", "administration", "commission",
    "laboratory", "laboratories", "motors", "motor", "power", "enerbility",
    "robotics", "aerospace", "airlines", "pharmaceuticals", "biologics", "steel",
}  # fmt: skip
CAPITALIZED = re.compile(
    r"(?<![\w.])[A-Z][\w&'’.\-]*(?:\s+(?:(?:of|and|for|the|&)\s+)?[A-Z0-9][\w&'’.\-]*)*"
)
LEADING = re.compile(r"^(?:The|A|An|Korea-based|U\.S\.-based|Korean|American)\s+")


@dataclass
class Registry:
    """The patterns of every organization's names, longest first."""

    # (pattern, organization id, a word the text must hold for the pattern to match at all:
    # checking it first makes a sentence cost microseconds per organization, not a scan)
    patterns: list[tuple[re.Pattern, int, str]] = field(default_factory=list)

    @classmethod
    def build(cls, organizations=None) -> "Registry":
        rows = (
            organizations
            if organizations is not None
            else Organization.objects.values_list(
                "pk", "name_en", "name_ko", "acronym_en", "acronym_ko", "aliases"
            )
        )
        phrases: list[tuple[str, int, bool]] = []
        for pk, name_en, name_ko, acronym_en, acronym_ko, aliases in rows:
            for name in (name_en, name_ko, *(aliases or [])):
                if name:
                    phrases.append((name, pk, False))
            for acronym in (acronym_en, acronym_ko):
                if acronym:
                    phrases.append((acronym, pk, True))
        phrases.sort(key=lambda item: len(item[0]), reverse=True)
        registry = cls()
        seen = set()
        for phrase, pk, exact in phrases:
            pattern = _pattern(phrase, exact)
            if pattern is not None and (pattern.pattern, pk) not in seen:
                seen.add((pattern.pattern, pk))
                word = re.findall(r"[^\W_]+", phrase)
                registry.patterns.append((pattern, pk, word[-1].lower() if word else ""))
        return registry

    def find(self, text: str) -> tuple[list[int], list[str]]:
        """(ids of the organizations `text` names, in order of first mention; names that look
        like organizations the registry does not hold)."""
        taken: list[tuple[int, int]] = []
        found: list[tuple[int, int]] = []
        lowered = text.lower()
        for pattern, pk, word in self.patterns:
            if word not in lowered:
                continue
            for match in pattern.finditer(text):
                span = match.span()
                if any(span[0] < end and start < span[1] for start, end in taken):
                    continue
                taken.append(span)
                found.append((span[0], pk))
        ids: list[int] = []
        for _, pk in sorted(found):
            if pk not in ids:
                ids.append(pk)
        return ids, _unknown(text, taken)


def _pattern(phrase: str, exact: bool) -> re.Pattern | None:
    phrase = re.sub(r"^(?:the|The)\s+", "", phrase.strip())
    if HANGUL.search(phrase):
        # Korean: particles follow a name directly ("산업부는"), so no boundary after it.
        tokens = phrase.split()
        return re.compile(r"\s*".join(re.escape(t) for t in tokens))
    tokens = re.findall(r"[^\W_]+|&", phrase)
    if not tokens:
        return None
    body = SEPARATOR.join(
        "(?:and|&)" if t.lower() in ("and", "&") else re.escape(t) for t in tokens
    )
    flags = 0 if exact or len(tokens) == 1 else re.IGNORECASE
    return re.compile(r"(?<![^\W_])" + body + r"(?![^\W_])", flags)


def _unknown(text: str, taken: list[tuple[int, int]]) -> list[str]:
    names: list[str] = []
    masked = list(text)
    for start, end in taken:  # known names break a run of capitalized words
        masked[start:end] = "\0" * (end - start)
    for match in CAPITALIZED.finditer("".join(masked)):
        name = LEADING.sub("", match.group(0).strip(" .,'’-"))
        pieces = [LEADING.sub("", piece) for piece in re.split(r"\s+(?:and|&)\s+", name)]
        if _looks_like_organization(name) and not all(map(_looks_like_organization, pieces)):
            candidates = [name]  # "Korea Chamber of Commerce and Industry Association"
        else:
            candidates = pieces  # "Hanmi Steel Corporation and Daehan University": two
        for candidate in candidates:
            if _looks_like_organization(candidate) and candidate not in names:
                names.append(candidate)
    return names


def _looks_like_organization(name: str) -> bool:
    words = name.split()
    if len(words) < 2 or re.search(r"working group$", name, re.IGNORECASE):
        return False
    return re.sub(r"[^\w]", "", words[-1].lower()) in SUFFIXES
