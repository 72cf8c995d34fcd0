"""Every input rule that only the prose pages of the docs state, and which apply to a model.

The rules are data (``_cross_rule.CrossRule``), written once by docs series in
``_rules_seedance``, ``_rules_video`` and ``_rules_image_music``; each names the page it
comes from (relative to the docs' ``api-manual/``) and the model ids it applies to.
``_cross_checks`` compiles them per model at load; ``vidgo-async models MODEL`` prints them.
"""

from __future__ import annotations

import functools

from ._cross_rule import CrossRule
from ._rules_image_music import IMAGE_RULES, MUSIC_RULES
from ._rules_seedance import SEEDANCE_MODELS, SEEDANCE_RULES
from ._rules_video import VIDEO_RULES

__all__ = ["CROSS_RULES", "SEEDANCE_MODELS", "CrossRule", "rules_for"]

# Every rule, by docs series: Seedance, the other video families, images, music.
CROSS_RULES: tuple[CrossRule, ...] = (*SEEDANCE_RULES, *VIDEO_RULES, *IMAGE_RULES, *MUSIC_RULES)


@functools.cache
def rules_for(model: str) -> tuple[CrossRule, ...]:
    """Return the prose rules of ``model`` (none for some models)."""
    return tuple(rule for rule in CROSS_RULES if model in rule.models)
