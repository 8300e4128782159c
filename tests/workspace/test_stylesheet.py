"""The stylesheet's colour pairs meet WCAG 2.2 AA contrast (4.5:1 for text), and the pages
load nothing from another host."""

import re
from pathlib import Path

import pytest
from django.conf import settings

CSS = Path(settings.BASE_DIR) / "workspace" / "static" / "workspace" / "workspace.css"
TEMPLATES = Path(settings.BASE_DIR) / "workspace" / "templates"


def _tokens() -> dict[str, str]:
    return dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})", CSS.read_text()))


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_formula():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert contrast("#777777", "#ffffff") < 4.5  # a known failing grey


TEXT_PAIRS = [
    ("--color-text", "--color-bg"),
    ("--color-text", "--color-bg-subtle"),
    ("--color-text-muted", "--color-bg"),
    ("--color-text-muted", "--color-bg-subtle"),
    ("--color-primary", "--color-bg"),
    ("--color-primary-dark", "--color-primary-light"),
    ("--color-on-primary", "--color-primary"),
    ("--color-on-primary", "--color-primary-dark"),
    ("--color-error", "--color-bg"),
    ("--color-error", "--color-error-bg"),
    ("--color-text", "--color-error-bg"),
    ("--color-text", "--color-success-bg"),
    ("--color-text", "--color-info-bg"),
]


@pytest.mark.parametrize(("fg", "bg"), TEXT_PAIRS)
def test_text_colours_meet_aa(fg, bg):
    tokens = _tokens()
    assert contrast(tokens[fg], tokens[bg]) >= 4.5


def test_every_status_tag_meets_aa():
    tokens = _tokens()
    tags = {name[len("--tag-") : -len("-fg")] for name in tokens if name.startswith("--tag-")}
    assert {"planned", "in_progress", "done", "verified", "overdue"} <= tags
    for tag in tags:
        ratio = contrast(tokens[f"--tag-{tag}-fg"], tokens[f"--tag-{tag}-bg"])
        assert ratio >= 4.5, (tag, round(ratio, 2))


def test_focus_ring_is_visible_on_white():
    tokens = _tokens()
    assert ":focus-visible" in CSS.read_text()
    assert contrast(tokens["--color-focus"], tokens["--color-bg"]) >= 3


def test_nothing_is_loaded_from_another_host():
    for path in TEMPLATES.rglob("*.html"):
        source = path.read_text()
        assert not re.search(r"""(src|href)=["']https?://""", source), path
    assert "@import" not in CSS.read_text() and "url(http" not in CSS.read_text()
