"""What may change in a run's config after it was trained: a resume may change the keys that do
not change what the weights compute (run_config.RESUMABLE_KEYS); evaluation and prediction may
change `data.*` and `predict.*`. An override equal to the run's own value is no change and always
accepted; a real change of any other key is refused, naming the key, both values and what may
change."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from vision_kernels.config import ConfigError, _check_keys, _describe, _merge, parse_override

# Keys `vk eval` / `vk predict` may change: the data to run on and the prediction settings.
INFERENCE_KEYS = ("data", "predict")


def _validate(model: type[BaseModel], data: Mapping[str, Any], source: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + "; ".join(_describe(e) for e in exc.errors())) from exc


def _lookup(data: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def _allowed(dotted: str, allowed: Iterable[str]) -> bool:
    return any(dotted == key or dotted.startswith(key + ".") for key in allowed)


def apply(
    model: type[BaseModel],
    stored: Mapping[str, Any],
    overrides: Iterable[str],
    allowed: Sequence[str],
    when: str,
    source: str,
) -> BaseModel:
    """The stored config with the overrides applied, each either equal to the stored value or under
    one of the `allowed` keys. `when` ("when resuming") and `source` (the file the stored config
    came from) go into the messages."""
    base = _validate(model, stored, f"the config stored in {source} does not validate")
    before = base.model_dump(mode="json")
    data = copy.deepcopy(dict(stored))
    for item in overrides:
        keys, value = parse_override(item)
        dotted = ".".join(keys)
        update: Any = value
        for part in reversed(keys):
            update = {part: update}
        _check_keys(model, update)
        candidate = _merge(data, update)
        after = _validate(model, candidate, f"override {item!r}").model_dump(mode="json")
        old, new = _lookup(before, keys), _lookup(after, keys)
        if old == new:
            continue  # the run's own value: nothing changes
        if not _allowed(dotted, allowed):
            error = ConfigError(
                f"{dotted} cannot change {when}: the run has {old!r}, the override gives {new!r} (the weights were "
                "trained with the run's value)"
            )
            error.hint = f"keys that may change {when}: " + ", ".join(
                key + (".*" if key in INFERENCE_KEYS else "") for key in allowed
            )
            raise error
        data = candidate
    return _validate(model, data, "the config with the overrides")
