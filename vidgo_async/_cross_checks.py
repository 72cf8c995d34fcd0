"""The prose rules (``_cross_rules``) compiled into checks: one evaluator per rule kind.

``compile_rule(rule, model, defaults)`` returns the fields the rule reads and a closure
``check(data, issues)`` with the rule's limits and message bound once. A rule with ``when``
conditions is wrapped in one guard that reads each condition's field (or its documented
default when the input leaves it out); a rule for ``each`` item of a list runs on every
object of that list. Used by ``_validation`` alone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from ._cross_rule import CrossRule, ItemCount
from ._errors import ValidationIssue

__all__ = ["INPUT_PATH", "ObjectCheck", "compile_rule"]

Issues = list[ValidationIssue]
ObjectCheck = Callable[[Mapping[Any, Any], Issues], None]

INPUT_PATH = "$.input"


# A value is one of ``values`` only with the same type too: ``True == 1`` in Python, but
# ``sound: 1`` is not ``sound: true`` on the wire.
def _is_one_of(value: Any, values: tuple[Any, ...]) -> bool:
    return any(value == allowed and type(value) is type(allowed) for allowed in values)


def _holds(value: Any, values: tuple[Any, ...]) -> bool:
    """Whether ``value`` meets a ``when`` condition: one of ``values`` or a counted list."""
    return _is_one_of(value, values) or (
        isinstance(value, list | tuple)
        and any(
            isinstance(allowed, ItemCount) and len(value) == allowed.count for allowed in values
        )
    )


def _choices(values: tuple[Any, ...]) -> str:
    """Strings quoted as Python does (as the schema checks say them), the rest as JSON."""
    return ", ".join(
        repr(value) if isinstance(value, str) else json.dumps(value) for value in values
    )


def _has_issue(issues: Issues, path: str) -> bool:
    return any(issue.field == path for issue in issues)


def _is_number(value: object) -> TypeGuard[float]:
    return (type(value) is int or type(value) is float) and math.isfinite(value)


def _with_fix(text: str, fix: str) -> str:
    return f"{text} ({fix})" if fix else text


# -- one evaluator per kind ------------------------------------------------------------------


def _excludes(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    text = _with_fix("cannot be combined with {}", rule.fix or "leave one of them out")
    text = f"{text} {source}"

    def excludes(data: Mapping[Any, Any], issues: Issues) -> None:
        if data.get(rule.field) is None:
            return
        clashing = [other for other in rule.others if data.get(other) is not None]
        if clashing:
            issues.append(ValidationIssue(path, text.format(", ".join(clashing)), data[rule.field]))

    return excludes


def _needs_one_of(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    text = f"needs at least one of {', '.join(rule.others)} {source}"

    def needs_one_of(data: Mapping[Any, Any], issues: Issues) -> None:
        value = data.get(rule.field)
        if value is not None and all(data.get(other) is None for other in rule.others):
            issues.append(ValidationIssue(path, text, value))

    return needs_one_of


def _requires(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    fix = rule.fix or f"add {' and '.join(rule.others)} or leave {rule.field} out"

    def requires(data: Mapping[Any, Any], issues: Issues) -> None:
        value = data.get(rule.field)
        if value is None:
            return
        missing = [other for other in rule.others if data.get(other) is None]
        if missing:
            issues.append(
                ValidationIssue(path, f"needs {' and '.join(missing)} ({fix}) {source}", value)
            )

    return requires


def _required(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    unless = f" unless {' or '.join(rule.others)} is set" if rule.others else ""
    condition = rule.condition_text()
    text = f"is required for {model}{unless}{' ' + condition if condition else ''} {source}"

    def required(data: Mapping[Any, Any], issues: Issues) -> None:
        if data.get(rule.field) is not None or any(data.get(o) is not None for o in rule.others):
            return
        if not _has_issue(issues, path):  # the schema's own "is required" said it already
            issues.append(ValidationIssue(path, text, None))

    return required


def _forbidden(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    condition = rule.condition_text()
    text = _with_fix(
        f"is not supported by {model}{' ' + condition if condition else ''}",
        rule.fix or "leave it out",
    )
    text = f"{text} {source}"

    def forbidden(data: Mapping[Any, Any], issues: Issues) -> None:
        value = data.get(rule.field)
        if value is not None:
            issues.append(ValidationIssue(path, text, value))

    return forbidden


def _max_total(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    text = (
        f"must hold at most {rule.limit} {rule.noun} in total across "
        f"{', '.join(rule.others)} {source}"
    )

    def max_total(data: Mapping[Any, Any], issues: Issues) -> None:
        total = 0
        for name in rule.others:
            value = data.get(name)
            if isinstance(value, list | tuple):
                total += len(value)
            elif type(value) is int:
                total += value
        if total > rule.limit:
            issues.append(ValidationIssue(INPUT_PATH, text, total))

    return max_total


def _item_sum(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    key = rule.others[0]
    text = f"must have {key}s adding up to at most {rule.limit} {source}"

    def item_sum(data: Mapping[Any, Any], issues: Issues) -> None:
        items = data.get(rule.field)
        if not isinstance(items, list | tuple):
            return
        total: float = 0
        for item in items:
            part = item.get(key) if isinstance(item, Mapping) else None
            if _is_number(part):
                total += part
        if total > rule.limit:
            issues.append(ValidationIssue(path, text, total))

    return item_sum


def _only_values(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    condition = rule.condition_text()
    text = (
        f"must be {'one of ' if len(rule.values) > 1 else ''}{_choices(rule.values)} "
        f"for {model}{' ' + condition if condition else ''} {source}"
    )
    if not condition and all(isinstance(value, str) for value in rule.values):
        # The Seedance rules' words, kept as they were.
        text = f"must be one of {_choices(rule.values)} for {model} {source}"

    def only_values(data: Mapping[Any, Any], issues: Issues) -> None:
        value = data.get(rule.field)
        if value is None or _is_one_of(value, rule.values):
            return
        if not (issues and _has_issue(issues, path)):
            issues.append(ValidationIssue(path, text, value))

    return only_values


def _length(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    low, high = rule.values
    condition = rule.condition_text()
    condition = f" {condition}" if condition else ""

    def length(data: Mapping[Any, Any], issues: Issues) -> None:
        value = data.get(rule.field)
        if not isinstance(value, str) or (issues and _has_issue(issues, path)):
            return
        if len(value.strip()) < low:
            issues.append(
                ValidationIssue(
                    path,
                    f"must have at least {low} non-blank characters{condition} {source}",
                    value,
                )
            )
        elif len(value) > high:
            issues.append(
                ValidationIssue(
                    path,
                    f"must be at most {high} characters{condition} (has {len(value)}) {source}",
                    value,
                )
            )

    return length


def _items(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    low, high = rule.values
    condition = rule.condition_text()
    where = f"for {model}{' ' + condition if condition else ''}"
    exact = f"must have exactly {low} item{'' if low == 1 else 's'} {where}"

    def items(data: Mapping[Any, Any], issues: Issues) -> None:
        value = data.get(rule.field)
        if not isinstance(value, list | tuple) or (issues and _has_issue(issues, path)):
            return
        if low == high and len(value) != low:
            issues.append(ValidationIssue(path, f"{exact} (has {len(value)}) {source}", value))
        elif len(value) > high:
            rule_text = f"must have at most {high} items {where} (has {len(value)}) {source}"
            issues.append(ValidationIssue(path, rule_text, value))
        elif len(value) < low:
            issues.append(
                ValidationIssue(path, f"must have at least {low} items {where} {source}", value)
            )

    return items


def _greater_than(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    other = rule.others[0]

    def greater_than(data: Mapping[Any, Any], issues: Issues) -> None:
        value, floor = data.get(rule.field), data.get(other)
        if _is_number(value) and _is_number(floor) and not value > floor:
            issues.append(
                ValidationIssue(
                    path, f"must be greater than {other} (which is {floor:g}) {source}", value
                )
            )

    return greater_than


_SIZE = re.compile(r"^(\d+)[xX](\d+)$")


def _size(rule: CrossRule, path: str, source: str, model: str) -> ObjectCheck:
    multiple, max_edge, max_ratio, min_pixels, max_pixels = rule.values

    def size(data: Mapping[Any, Any], issues: Issues) -> None:
        value = data.get(rule.field)
        match = _SIZE.match(value) if isinstance(value, str) else None
        if match is None or (issues and _has_issue(issues, path)):
            return  # a preset such as "16:9", or refused by the schema already
        width, height = int(match[1]), int(match[2])
        long_edge, short_edge = max(width, height), min(width, height)
        if width % multiple or height % multiple:
            text = f"must have a width and a height divisible by {multiple}"
        elif long_edge > max_edge:
            text = f"must have edges of at most {max_edge} pixels"
        elif short_edge == 0 or long_edge > max_ratio * short_edge:
            text = f"must have an aspect ratio of at most {max_ratio}:1"
        elif not min_pixels <= width * height <= max_pixels:
            text = f"must have from {min_pixels} to {max_pixels} pixels (has {width * height})"
        else:
            return
        issues.append(ValidationIssue(path, f"{text} (or use a preset ratio) {source}", value))

    return size


_EVALUATORS: dict[str, Callable[[CrossRule, str, str, str], ObjectCheck]] = {
    "excludes": _excludes,
    "needs_one_of": _needs_one_of,
    "requires": _requires,
    "required": _required,
    "forbidden": _forbidden,
    "max_total": _max_total,
    "item_sum": _item_sum,
    "only_values": _only_values,
    "length": _length,
    "items": _items,
    "greater_than": _greater_than,
    "size": _size,
}


# -- compiling one rule ----------------------------------------------------------------------


def _guarded(rule: CrossRule, defaults: Mapping[str, Any], check: ObjectCheck) -> ObjectCheck:
    """Run ``check`` only while every ``when`` condition holds (defaults fill the gaps)."""
    conditions = tuple((name, values, defaults.get(name)) for name, values in rule.when)

    def guarded(data: Mapping[Any, Any], issues: Issues) -> None:
        for name, values, default in conditions:
            value = data.get(name)
            if value is None:
                value = default
            if value is None or (values and not _holds(value, values)):
                return
        check(data, issues)

    return guarded


def _each_item(rule: CrossRule, model: str) -> ObjectCheck:
    """Run ``rule`` on every object of the list ``rule.each``, naming the item in the path.

    The check of an item is compiled when it is met (its path holds the index): the lists
    are short and only some inputs have one. Items have no documented defaults.
    """
    evaluator, source = _EVALUATORS[rule.kind], f"(per {rule.page})"

    def each_item(data: Mapping[Any, Any], issues: Issues) -> None:
        items = data.get(rule.each)
        if not isinstance(items, list | tuple):
            return
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                continue  # the schema's own item check names it
            check = evaluator(
                rule, f"{INPUT_PATH}.{rule.each}[{index}].{rule.field}", source, model
            )
            if rule.when:
                check = _guarded(rule, {}, check)
            check(item, issues)

    return each_item


def compile_rule(
    rule: CrossRule, model: str, defaults: Mapping[str, Any]
) -> tuple[tuple[str, ...], ObjectCheck]:
    """Return the fields ``rule`` reads (``()``: run it always) and its compiled check.

    Absent all the fields it reads, a rule has nothing to do and is not called, as in
    most inputs for most rules; ``required`` rules read nothing and always run.
    """
    if rule.each:
        return (rule.each,), _each_item(rule, model)
    path = f"{INPUT_PATH}.{rule.field}"
    check = _EVALUATORS[rule.kind](rule, path, f"(per {rule.page})", model)
    if rule.when:
        check = _guarded(rule, defaults, check)
    if rule.kind == "required":
        return (), check
    if rule.kind == "max_total":
        return rule.others, check
    return (rule.field,), check
