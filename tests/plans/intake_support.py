"""Shared by the intake tests: the demo's organizations as a registry (keys as ids, no
database), and where the real forum records are."""

import os
from pathlib import Path

from fixtures import demo, demo_ko
from plans.intake.parties import Registry

ROOT = Path(__file__).resolve().parents[2]
# The public forum records: $TRACKER_SEEDS_DIR, else ../shared/seeds beside the project (one
# level further up from a git worktree kept in a folder of worktrees).
SEEDS_CANDIDATES = [ROOT.parent / "shared" / "seeds", ROOT.parent.parent / "shared" / "seeds"]
SEEDS = (
    Path(os.environ["TRACKER_SEEDS_DIR"])
    if os.environ.get("TRACKER_SEEDS_DIR")
    else next((path for path in SEEDS_CANDIDATES if path.is_dir()), SEEDS_CANDIDATES[0])
)


def demo_rows():
    return [
        (key, org.name, org.name_ko, org.acronym, demo_ko.ACRONYMS.get(key, ""),
         demo.ALIASES.get(key, []))
        for key, org in demo.ORGANIZATIONS.items()
    ]  # fmt: skip


def demo_registry() -> Registry:
    """Organization keys ("MOTIE", "DOC") stand for ids."""
    return Registry.build(demo_rows())


def seed(prefix: str) -> str | None:
    """The text of the record whose file name starts with `prefix`, or None without it."""
    if not SEEDS.is_dir():
        return None
    for path in sorted(SEEDS.glob(f"{prefix}_*.txt")):
        return path.read_text(encoding="utf-8")
    return None


def load_demo_organizations() -> dict:
    """The demo's organizations in the database (names, acronyms, aliases; no parents):
    {key: Organization}."""
    from tracker.models import Organization

    made = {}
    for key, org in demo.ORGANIZATIONS.items():
        made[key] = Organization.objects.create(
            name_en=org.name,
            name_ko=org.name_ko or None,
            acronym_en=org.acronym or None,
            acronym_ko=demo_ko.ACRONYMS.get(key) or None,
            kind=org.kind,
            country=org.country,
            aliases=demo.ALIASES.get(key, []),
        )
    return made
