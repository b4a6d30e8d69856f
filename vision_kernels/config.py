"""A family's configuration: its defaults (the paper's) < a YAML file < key=value overrides.

Overrides address nested fields with dots (optim.lr=2e-4) and are read as YAML scalars (3, 0.5,
true, null, [1, 2], "text"). Unknown keys and values of the wrong type fail with the key, the value
and what is allowed. No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A configuration that does not fit the family's config model."""


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return dict(model.model_fields)


def _nested_model(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    annotation = model.model_fields[key].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _check_keys(model: type[BaseModel], data: Mapping[str, Any], prefix: str = "") -> None:
    for key, value in data.items():
        if key not in model.model_fields:
            allowed = ", ".join(sorted(model.model_fields)) or "(none)"
            raise ConfigError(f"unknown config key {prefix + key!r}; allowed here: {allowed}")
        nested = _nested_model(model, key)
        if nested is not None and isinstance(value, Mapping):
            _check_keys(nested, value, prefix + key + ".")


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """'a.b=value' -> (['a', 'b'], value read as a YAML scalar)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like key=value (nested keys with dots: optim.lr=2e-4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def load_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a directory: expected a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys to values, got {type(data).__name__}")
    return dict(data)


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    value = error.get("input")
    return f"config key {key!r}: got {value!r} ({type(value).__name__}); {error['msg'].lower()}"


def _options_follow_the_dataset(
    defaults: dict[str, Any], explicit: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    """A family's default data.options are options of its default dataset: when the config names
    another dataset, only the options it gives itself apply (a run of U-Net on `horse` must not
    inherit `task: instance` from the default `shapes`)."""
    default_data, given = defaults.get("data"), explicit.get("data")
    if not isinstance(default_data, dict) or not isinstance(given, Mapping) or "name" not in given:
        return data
    if given["name"] == default_data.get("name"):
        return data
    return {**data, "data": {**data["data"], "options": dict(given.get("options") or {})}}


def resolve(model: type[BaseModel], config_file: str | Path | None = None, overrides: Iterable[str] = ()) -> BaseModel:
    """The config: model defaults < config_file (YAML) < overrides ('key=value')."""
    defaults = model().model_dump()
    explicit: dict[str, Any] = {}  # what the file and the overrides set
    if config_file is not None:
        from_file = load_file(config_file)
        _check_keys(model, from_file)
        explicit = _merge(explicit, from_file)
    for item in overrides:
        path, value = parse_override(item)
        update: Any = value
        for part in reversed(path):
            update = {part: update}
        _check_keys(model, update)
        explicit = _merge(explicit, update)
    data = _merge(defaults, explicit)
    data = _options_follow_the_dataset(defaults, explicit, data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e) for e in exc.errors())) from exc


def describe_fields(
    model: type[BaseModel], prefix: str = "", defaults: BaseModel | None = None
) -> list[dict[str, str]]:
    """Every field, nested ones with dotted names: name, type, default, help. A nested section's
    defaults are the ones its parent gives it (a family's `train: TrainConfig =
    Field(default_factory=lambda: TrainConfig(epochs=10))`), not the section model's own."""
    rows = []
    defaults = model() if defaults is None else defaults
    for name, info in model.model_fields.items():
        nested = _nested_model(model, name)
        if nested is not None:
            value = getattr(defaults, name)
            rows.extend(describe_fields(nested, prefix + name + ".", value if isinstance(value, nested) else None))
            continue
        annotation = info.annotation
        type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        rows.append(
            {
                "name": prefix + name,
                "type": type_name,
                "default": repr(getattr(defaults, name)),
                "help": info.description or "",
            }
        )
    return rows


def to_yaml(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
