"""Money in a sentence: "USD 0.6 billion", "$7 billion", "KRW 850 billion", "₩13 trillion",
"KRW 10 bln", "8,500억 원", "6억 달러" -> (Decimal amount, ISO 4217 code)."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

SYMBOLS = {
    "usd": "USD", "us$": "USD", "$": "USD", "dollars": "USD", "dollar": "USD", "달러": "USD",
    "krw": "KRW", "₩": "KRW", "won": "KRW", "원": "KRW",
    "eur": "EUR", "€": "EUR", "euros": "EUR", "euro": "EUR", "유로": "EUR",
    "jpy": "JPY", "¥": "JPY", "yen": "JPY", "엔": "JPY",
}  # fmt: skip
SCALES = {
    "trillion": 10**12, "tn": 10**12, "trn": 10**12,
    "billion": 10**9, "bln": 10**9, "bn": 10**9,
    "million": 10**6, "mln": 10**6, "mn": 10**6,
    "thousand": 10**3,
    "조": 10**12, "억": 10**8, "만": 10**4, "천만": 10**7,
}  # fmt: skip
NUMBER = r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
SCALE = r"(?:\s*(?P<scale>trillion|billion|million|thousand|bln|bn|mln|mn|tn|trn)\b\.?)?"
PREFIXED = re.compile(r"(?P<cur>US\$|USD|KRW|EUR|JPY|\$|₩|€|¥)\s?" + NUMBER + SCALE, re.IGNORECASE)
SUFFIXED = re.compile(
    NUMBER + r"\s*(?P<scale>trillion|billion|million|bln|bn|mln)?\s*"
    r"(?P<cur>U\.?S\.? dollars|dollars|won|euros|yen|USD|KRW|EUR|JPY)\b",
    re.IGNORECASE,
)
KOREAN = re.compile(
    r"(?:(?P<jo>\d[\d,]*(?:\.\d+)?)\s*조\s*)?(?:(?P<number>\d[\d,]*(?:\.\d+)?)\s*"
    r"(?P<scale>천만|억|만)\s*)?(?P<cur>달러|원|유로|엔)"
)


@dataclass(frozen=True)
class Amount:
    value: Decimal
    currency: str
    phrase: str
    start: int


def _decimal(number: str) -> Decimal | None:
    try:
        return Decimal(number.replace(",", ""))
    except InvalidOperation:
        return None


def _currency(symbol: str) -> str:
    symbol = symbol.lower().replace(".", "")
    if symbol.startswith("us") and "dollar" in symbol:
        return "USD"
    return SYMBOLS.get(symbol, symbol.upper())


def find_amounts(text: str) -> list[Amount]:
    """Every amount in `text`, in order of appearance."""
    found: list[Amount] = []
    for pattern in (PREFIXED, SUFFIXED):
        for match in pattern.finditer(text):
            value = _decimal(match.group("number"))
            if value is None:
                continue
            scale = (match.group("scale") or "").lower()
            found.append(
                Amount(
                    (value * SCALES.get(scale, 1)).quantize(Decimal("0.01")),
                    _currency(match.group("cur")),
                    match.group(0).strip(),
                    match.start(),
                )
            )
    for match in KOREAN.finditer(text):
        if not (match.group("jo") or match.group("number")):
            continue
        value = Decimal(0)
        if match.group("jo"):
            value += (_decimal(match.group("jo")) or 0) * SCALES["조"]
        if match.group("number"):
            value += (_decimal(match.group("number")) or 0) * SCALES[match.group("scale")]
        found.append(
            Amount(
                value.quantize(Decimal("0.01")),
                _currency(match.group("cur")),
                match.group(0).strip(),
                match.start(),
            )  # fmt: skip
        )
    # One amount per place: where patterns overlap the earlier, longer reading wins.
    found.sort(key=lambda a: (a.start, -len(a.phrase)))
    kept: list[Amount] = []
    for amount in found:
        if kept and amount.start < kept[-1].start + len(kept[-1].phrase):
            continue
        kept.append(amount)
    return kept


def find_amount(text: str) -> Amount | None:
    """The first amount in `text` (a pledge's headline figure comes first)."""
    amounts = find_amounts(text)
    return amounts[0] if amounts else None
