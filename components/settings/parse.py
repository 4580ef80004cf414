"""Load a stack's config into Settings, reporting every problem at once with its key and value."""

import json
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel

from components.platform.budget import budget_problems
from components.settings.model import PROJECT, Settings, nested_model

_SECRET_KEYS = {"credentials"}


@dataclass(frozen=True)
class Problem:
    """One invalid setting: the full config key, the offending value and what is allowed."""

    key: str
    value: str
    message: str

    def __str__(self) -> str:
        shown = f" = {self.value}" if self.value else ""
        return f"{self.key}{shown}: {self.message}"


class SettingsError(Exception):
    """The stack's config is invalid; nothing has been declared."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.stack = stack
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        count = f"{len(problems)} invalid setting{'s' if len(problems) != 1 else ''}"
        super().__init__(f"stack '{stack}': {count} in Pulumi.{stack}.yaml:\n{lines}")


def parse_settings(stack: str, raw: Mapping[str, str], secret_keys: Collection[str] = ()) -> Settings:
    """Build Settings from the project's config entries (all strings, as Pulumi passes them)."""
    prefix = f"{PROJECT}:"
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    for full_key, text in sorted(raw.items()):
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        if key in _SECRET_KEYS and full_key not in secret_keys:
            problems.append(
                Problem(
                    full_key,
                    "[secret]",
                    f"must be set as a secret: pulumi config set --secret --path '{key}.NAME' VALUE",
                )
            )
            continue
        data[key] = _decode(key, text)
    high_availability = data.get("highAvailability") is True
    try:
        settings = Settings.model_validate(data, context={"high_availability": high_availability})
    except pydantic.ValidationError as error:
        problems.extend(p for e in error.errors(include_url=False) for p in _problems(prefix, e))
        raise SettingsError(stack, problems) from None
    problems.extend(Problem(prefix + key, value, message) for key, value, message in budget_problems(settings))
    if problems:
        raise SettingsError(stack, problems)
    return settings


def _decode(key: str, text: str) -> Any:
    """Decode a config value the way its field expects: text stays text, the rest is JSON."""
    field = next((f for f in Settings.model_fields.values() if f.alias == key), None)
    if field is not None and _is_text(field.annotation):
        return text
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def _is_text(annotation: Any) -> bool:
    """Tell whether a field holds plain text (optionally None)."""
    return annotation is str or (
        typing.get_origin(annotation) in (typing.Union, types.UnionType)
        and set(typing.get_args(annotation)) == {str, type(None)}
    )


def _problems(prefix: str, error: Mapping[str, Any]) -> list[Problem]:
    """Turn one pydantic error into Problems naming the full key, value and what is allowed."""
    loc = [str(part) for part in error["loc"]]
    if error["type"] == "invalid_setting":
        return [
            _problem(prefix, [*loc, *key.split(".")], value, message)
            for key, value, message in error["ctx"]["findings"]
        ]
    value: Any = error.get("input")
    message = str(error["msg"]).removeprefix("Value error, ")
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(loc[:-1]))
        message = f"unknown key; allowed keys here: {allowed}"
    elif kind == "missing":
        message = "required key is missing"
        value = None
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        allowed = ", ".join(_allowed_keys(loc))
        message = f"must be an object with keys: {allowed}"
    return [_problem(prefix, loc, value, message)]


def _problem(prefix: str, loc: list[str], value: Any, message: str) -> Problem:
    """Build a Problem, never showing the value of a secret key."""
    key = prefix + ".".join(loc)
    if loc and loc[0] in _SECRET_KEYS:
        return Problem(key, "[secret]" if value is not None else "", message)
    return Problem(key, _render(value), message)


def _render(value: Any) -> str:
    """Render a bad value compactly (objects abbreviated)."""
    if value is None:
        return ""
    if isinstance(value, BaseModel):
        return "{...}"
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(loc: list[str]) -> list[str]:
    """List the keys accepted by the model found at loc (empty where loc is not an object)."""
    model: Any = Settings
    for part in loc:
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return []
        model = nested_model(field.annotation)
        if model is None:
            return []
    return sorted(f.alias for f in model.model_fields.values() if f.alias)
