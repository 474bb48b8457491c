"""``models.family`` -> its :class:`~timbre.embedding.family.Family`.

The one module that knows every family; nothing a family imports imports it back.
"""

from __future__ import annotations

from timbre.embedding.family import Family
from timbre.errors import ConfigError

FAMILY_NAMES = ("clamp3", "clap")


def get_family(name: str) -> Family:
    """The family called ``name``; each is imported on first use (clap's loads nothing of clamp3's).

    Raises:
        ConfigError: no family has that name.
    """
    if name == "clamp3":
        from timbre.embedding.clamp3 import CLAMP3

        return CLAMP3
    if name == "clap":
        from timbre.embedding.clap import CLAP

        return CLAP
    raise ConfigError(f"unknown model family {name!r}; models.family is one of {FAMILY_NAMES}")
