"""The documented input rules of each typed model, as one declarative table.

This module is pure (no I/O, no client imports) so that both the client (which checks
inputs before sending) and the emulator (which checks them again on the server side)
use the same limits. Rules labelled [V] are documented by Vidgo; [P] come from the
same platform's other brand (PoYo) and are applied because they are the best evidence
available: strict in what we send.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import urlsplit

import attrs

from ._errors import ValidationIssue
from ._hosts import host_problem, is_loopback_host, url_host

__all__ = [
    "ASPECT_RATIOS",
    "MAX_CALLBACK_URL_LENGTH",
    "RULES",
    "FieldRule",
    "ModelRules",
    "check_callback_url",
    "check_input",
    "check_model_id",
    "rules_for",
]

FieldKind = Literal["string", "integer", "boolean", "url_list"]

ASPECT_RATIOS = ("1:1", "21:9", "4:3", "3:4", "16:9", "9:16")
MAX_CALLBACK_URL_LENGTH = 2048
MAX_URL_LENGTH = 2048
# The seed range is not documented; this is the upstream (ByteDance) convention,
# where -1 asks for a random seed. [I]
SEED_MIN = -1
SEED_MAX = 2**32 - 1


@attrs.frozen(kw_only=True)
class FieldRule:
    """The rule of one ``input`` field."""

    name: str
    kind: FieldKind
    required: bool = False
    choices: tuple[str | int, ...] | None = None
    min_value: int | None = None
    max_value: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    max_items: int | None = None
    min_items: int | None = None


@attrs.frozen(kw_only=True)
class ModelRules:
    """The rules of one model family (one typed input class)."""

    models: tuple[str, ...]
    fields: tuple[FieldRule, ...]
    # (field, others): ``field`` cannot be combined with any of ``others``.
    exclusive: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (field, alternatives): ``field`` needs at least one of ``alternatives``.
    requires_any: tuple[tuple[str, tuple[str, ...]], ...] = ()
    evidence: str = "V"

    def field(self, name: str) -> FieldRule | None:
        """Return the rule of the field called ``name``, if the model has one."""
        for rule in self.fields:
            if rule.name == name:
                return rule
        return None

    @functools.cached_property
    def field_names(self) -> tuple[str, ...]:
        """The names of every field the model accepts."""
        return tuple(rule.name for rule in self.fields)

    @functools.cached_property
    def known_fields(self) -> frozenset[str]:
        """The names of every field the model accepts, for membership tests."""
        return frozenset(self.field_names)


_REFERENCES = ("reference_image_urls", "reference_video_urls", "reference_audio_urls")

SEEDANCE_2 = ModelRules(
    models=("seedance-2", "seedance-2-fast"),
    fields=(
        FieldRule(name="prompt", kind="string", required=True, min_length=3, max_length=20000),
        FieldRule(name="resolution", kind="string", required=True, choices=("480p", "720p")),
        FieldRule(name="duration", kind="integer", required=True, min_value=4, max_value=15),
        FieldRule(name="aspect_ratio", kind="string", choices=ASPECT_RATIOS),
        FieldRule(name="generate_audio", kind="boolean"),
        FieldRule(name="seed", kind="integer", min_value=SEED_MIN, max_value=SEED_MAX),
        FieldRule(name="image_urls", kind="url_list", max_items=2),
        FieldRule(name="reference_image_urls", kind="url_list", max_items=9),
        FieldRule(name="reference_video_urls", kind="url_list", max_items=3),
        FieldRule(name="reference_audio_urls", kind="url_list", max_items=3),
    ),
    exclusive=(("image_urls", _REFERENCES),),
    requires_any=(("reference_audio_urls", ("reference_image_urls", "reference_video_urls")),),
    evidence="V",
)

SEEDANCE_1_5_PRO = ModelRules(
    models=("seedance-1.5-pro",),
    fields=(
        FieldRule(name="prompt", kind="string", required=True, min_length=3, max_length=2500),
        FieldRule(name="aspect_ratio", kind="string", required=True, choices=ASPECT_RATIOS),
        FieldRule(name="duration", kind="integer", required=True, choices=(4, 8, 12)),
        FieldRule(name="resolution", kind="string", choices=("480p", "720p", "1080p")),
        FieldRule(name="fixed_lens", kind="boolean"),
        FieldRule(name="generate_audio", kind="boolean"),
        FieldRule(name="image_urls", kind="url_list", max_items=2),
    ),
    evidence="P",
)

SEEDANCE_1_0_PRO = ModelRules(
    models=("seedance-1.0-pro",),
    fields=(
        FieldRule(name="prompt", kind="string", required=True, min_length=1, max_length=10000),
        FieldRule(name="duration", kind="integer", choices=(5, 10)),
        FieldRule(name="resolution", kind="string", choices=("720p", "1080p")),
        FieldRule(name="image_urls", kind="url_list", max_items=1),
    ),
    evidence="P",
)

RULES: Mapping[str, ModelRules] = {
    model: family
    for family in (SEEDANCE_2, SEEDANCE_1_5_PRO, SEEDANCE_1_0_PRO)
    for model in family.models
}


def rules_for(model: str) -> ModelRules | None:
    """Return the rules of a typed model, or ``None`` for a model passed through as given."""
    return RULES.get(model)


def check_model_id(model: object, *, path: str = "$.model") -> list[ValidationIssue]:
    """Check that a model id is a plausible, non-empty id."""
    if type(model) is str and model in RULES:
        return []  # a typed model's own id: valid (and the usual case, checked per submit)
    if not isinstance(model, str):
        return [ValidationIssue(path, "must be a string model id such as 'seedance-2'", model)]
    if not model or len(model) > 128 or any(ch.isspace() or ord(ch) < 32 for ch in model):
        return [
            ValidationIssue(
                path, "must be a non-empty model id of at most 128 characters without spaces", model
            )
        ]
    return []


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe_range(rule: FieldRule) -> str:
    if rule.min_value is not None and rule.max_value is not None:
        return f"from {rule.min_value} to {rule.max_value}"
    if rule.min_value is not None:
        return f"of at least {rule.min_value}"
    return f"of at most {rule.max_value}"


def _choices_text(choices: Sequence[str | int]) -> str:
    return ", ".join(repr(c) if isinstance(c, str) else str(c) for c in choices)


def check_http_url(url: object, path: str) -> list[ValidationIssue]:
    """Check that ``url`` is an absolute http(s) URL with a host (media the API must fetch)."""
    if not isinstance(url, str):
        return [ValidationIssue(path, "must be a URL string", url)]
    if len(url) > MAX_URL_LENGTH:
        return [ValidationIssue(path, f"must be at most {MAX_URL_LENGTH} characters", url)]
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return [ValidationIssue(path, "must be an absolute http(s) URL without spaces", url)]
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return [ValidationIssue(path, "must be an absolute http(s) URL", url)]
    if parts.scheme not in ("http", "https") or not host:
        return [ValidationIssue(path, "must be an absolute http(s) URL with a host", url)]
    return []


def _check_field(rule: FieldRule, value: object, path: str) -> list[ValidationIssue]:
    if rule.kind == "string":
        if not isinstance(value, str):
            return [ValidationIssue(path, "must be a string", value)]
        if rule.choices is not None:
            if value not in rule.choices:
                return [
                    ValidationIssue(path, f"must be one of {_choices_text(rule.choices)}", value)
                ]
            return []
        issues = []
        if rule.min_length is not None and len(value.strip()) < rule.min_length:
            issues.append(
                ValidationIssue(
                    path, f"must have at least {rule.min_length} non-blank characters", value
                )
            )
        if rule.max_length is not None and len(value) > rule.max_length:
            issues.append(
                ValidationIssue(
                    path, f"must be at most {rule.max_length} characters (has {len(value)})", value
                )
            )
        return issues
    if rule.kind == "integer":
        if not _is_int(value):
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                hint = f"must be an integer, not a float (use {int(value)})"
            else:
                hint = "must be an integer"
            return [ValidationIssue(path, hint, value)]
        assert isinstance(value, int)  # noqa: S101 - narrowed by _is_int for the type checker
        if rule.choices is not None:
            if value not in rule.choices:
                return [
                    ValidationIssue(path, f"must be one of {_choices_text(rule.choices)}", value)
                ]
            return []
        low = rule.min_value if rule.min_value is not None else -math.inf
        high = rule.max_value if rule.max_value is not None else math.inf
        if not low <= value <= high:
            return [ValidationIssue(path, f"must be an integer {_describe_range(rule)}", value)]
        return []
    if rule.kind == "boolean":
        if not isinstance(value, bool):
            return [ValidationIssue(path, "must be true or false", value)]
        return []
    # url_list
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return [ValidationIssue(path, "must be a list of URL strings", value)]
    issues = []
    if rule.max_items is not None and len(value) > rule.max_items:
        issues.append(
            ValidationIssue(
                path, f"must have at most {rule.max_items} items (has {len(value)})", value
            )
        )
    if rule.min_items is not None and len(value) < rule.min_items:
        issues.append(ValidationIssue(path, f"must have at least {rule.min_items} items", value))
    for index, item in enumerate(value):
        issues.extend(check_http_url(item, f"{path}[{index}]"))
    return issues


# Value types that are always present when not ``None`` (never an empty sequence).
_SCALARS = frozenset({str, int, bool, float})


def _present(data: Mapping[str, object], name: str) -> bool:
    value = data.get(name)
    if value is None:
        return False
    return not (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 0)


def check_input(model: str, data: object, *, path: str = "$.input") -> list[ValidationIssue]:
    """Return every rule that ``data`` (the ``input`` object) breaks for ``model``.

    A model without typed rules only has to be a JSON object. ``None`` values count as
    absent: they are never sent.
    """
    if not isinstance(data, Mapping):
        return [
            ValidationIssue(path, "must be an object (a mapping of field names to values)", data)
        ]
    family = rules_for(model)
    if family is None:
        return [
            ValidationIssue(f"{path}.{key}", "must be a string field name", key)
            for key in data
            if not isinstance(key, str)
        ]
    issues: list[ValidationIssue] = []
    known = family.known_fields
    for key in data:
        if key not in known:
            issues.append(
                ValidationIssue(
                    f"{path}.{key}",
                    f"is not a field of {model} (known fields: {', '.join(family.field_names)})",
                    data[key],
                )
            )
    for rule in family.fields:
        value = data.get(rule.name)
        # Scalars are present without the ABC check of ``_present`` (the usual fields).
        if value is None or (type(value) not in _SCALARS and not _present(data, rule.name)):
            if rule.required and value is None:
                issues.append(ValidationIssue(f"{path}.{rule.name}", "is required", None))
            elif rule.required:
                issues.append(
                    ValidationIssue(
                        f"{path}.{rule.name}", "is required and must not be empty", value
                    )
                )
            continue
        issues.extend(_check_field(rule, value, f"{path}.{rule.name}"))
    for field_name, others in family.exclusive:
        if _present(data, field_name):
            clashing = [other for other in others if _present(data, other)]
            if clashing:
                issues.append(
                    ValidationIssue(
                        f"{path}.{field_name}",
                        f"cannot be combined with {', '.join(clashing)} "
                        "(use first/last frames or references, not both)",
                        data[field_name],
                    )
                )
    for field_name, alternatives in family.requires_any:
        if _present(data, field_name) and not any(_present(data, alt) for alt in alternatives):
            issues.append(
                ValidationIssue(
                    f"{path}.{field_name}",
                    f"needs at least one of {', '.join(alternatives)}",
                    data[field_name],
                )
            )
    return issues


def check_callback_url(url: object, *, path: str = "$.callback_url") -> list[ValidationIssue]:
    """Check a ``callback_url`` against Vidgo's receiver rules.

    Vidgo only calls public HTTPS URLs of at most 2048 characters. Loopback URLs
    (http or https) are accepted too, for testing against the emulator.
    """
    issues = check_http_url(url, path)
    if issues:
        return issues
    assert isinstance(url, str)  # noqa: S101 - checked by check_http_url
    if len(url) > MAX_CALLBACK_URL_LENGTH:
        return [ValidationIssue(path, f"must be at most {MAX_CALLBACK_URL_LENGTH} characters", url)]
    host = url_host(url)  # as the transport folds it: full-width or IDNA digits included
    if is_loopback_host(host):
        return []
    if urlsplit(url).scheme != "https":
        return [ValidationIssue(path, "must use https (Vidgo does not call plain http URLs)", url)]
    if host_problem(host) is not None:
        return [
            ValidationIssue(
                path, "must be publicly reachable (Vidgo refuses private and internal hosts)", url
            )
        ]
    return []
