"""Family configs: defaults < YAML file < key=value overrides, and the errors for unknown keys, wrong
types, bad overrides and bad files."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from vision_kernels.config import ConfigError, describe_fields, parse_override, resolve, to_yaml


class Optim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = Field(2e-4, gt=0, description="learning rate")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas")


class GanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latent: int = Field(100, ge=1, description="size of z")
    norm: str = Field("batch", pattern="^(batch|instance)$", description="normalization")
    label_smoothing: float | None = Field(None, description="real label target, or none")
    generator: Optim = Field(default_factory=Optim)
    discriminator: Optim = Field(default_factory=Optim)


def test_defaults_are_the_models():
    assert resolve(GanConfig) == GanConfig()


def test_precedence_defaults_file_overrides(tmp_path):
    path = tmp_path / "gan.yaml"
    path.write_text("latent: 64\ngenerator:\n  lr: 0.001\ndiscriminator: {betas: [0.0, 0.9]}\n")
    config = resolve(GanConfig, path, ["generator.lr=5e-4", "norm=instance", "label_smoothing=0.9"])
    assert config.latent == 64  # file over default
    assert config.generator.lr == 5e-4  # override over file
    assert config.generator.betas == (0.5, 0.999)  # a nested default the file left alone
    assert config.discriminator.betas == (0.0, 0.9) and config.discriminator.lr == 2e-4
    assert config.norm == "instance" and config.label_smoothing == 0.9


def test_override_values_are_yaml_scalars():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("x=[1, 2]") == (["x"], [1, 2])
    assert parse_override("x=null") == (["x"], None)
    assert parse_override("x=") == (["x"], "")
    assert parse_override("x=a: b: c") == (["x"], "a: b: c")  # not YAML: kept as text
    assert resolve(GanConfig, overrides=["label_smoothing=null", "generator.betas=[0.9, 0.99]"]).generator.betas == (
        0.9,
        0.99,
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["latnet=3"], "unknown config key 'latnet'; allowed here: discriminator, generator, label_smoothing, latent"),
        (["generator.momentum=0.9"], "unknown config key 'generator.momentum'; allowed here: betas, lr"),
        (["latent=many"], "config key 'latent': got 'many' (str); input should be a valid integer"),
        (["latent=0"], "config key 'latent': got 0 (int); input should be greater than or equal to 1"),
        (["generator.lr=-1"], "config key 'generator.lr': got -1 (int); input should be greater than 0"),
        (["norm=layer"], "config key 'norm': got 'layer' (str); string should match pattern"),
        (["latent"], "override 'latent' must look like key=value"),
        (["=3"], "override '=3' must look like key=value"),
    ],
)
def test_override_errors_name_key_value_and_what_is_allowed(overrides, message):
    with pytest.raises(ConfigError) as error:
        resolve(GanConfig, overrides=overrides)
    assert message in str(error.value)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file '.*missing.yaml' does not exist"):
        resolve(GanConfig, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=f"config file '{tmp_path}' is a directory: expected a YAML file"):
        resolve(GanConfig, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("latent: [1, 2\n")
    with pytest.raises(ConfigError, match="config file '.*bad.yaml' is not valid YAML"):
        resolve(GanConfig, bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping of keys to values, got list"):
        resolve(GanConfig, listing)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("generator:\n  lr: 0.1\n  decay: 3\n")
    with pytest.raises(ConfigError, match="unknown config key 'generator.decay'"):
        resolve(GanConfig, unknown)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert resolve(GanConfig, empty) == GanConfig()


def test_describe_fields_flattens_nested_models():
    rows = {row["name"]: row for row in describe_fields(GanConfig)}
    assert list(rows) == [
        "latent",
        "norm",
        "label_smoothing",
        "generator.lr",
        "generator.betas",
        "discriminator.lr",
        "discriminator.betas",
    ]
    assert rows["latent"] == {"name": "latent", "type": "int", "default": "100", "help": "size of z"}
    assert rows["generator.lr"]["default"] == "0.0002" and rows["label_smoothing"]["type"] == "float | None"


def test_describe_fields_shows_the_parents_defaults_of_a_section():
    class Tuned(BaseModel):
        discriminator: Optim = Field(default_factory=lambda: Optim(lr=1e-3))

    rows = {row["name"]: row["default"] for row in describe_fields(Tuned)}
    assert rows["discriminator.lr"] == "0.001"  # the family's, not Optim's own 0.0002


def test_describe_fields_shows_a_familys_engine_defaults():
    from vision_kernels.engine.run_config import DataConfig, TrainConfig, run_config_model

    class WithSections(BaseModel):
        train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=10))
        data: DataConfig = Field(default_factory=lambda: DataConfig(name="fashion-mnist"))

    rows = {row["name"]: row["default"] for row in describe_fields(run_config_model(WithSections))}
    assert (rows["train.epochs"], rows["data.name"]) == ("10", "'fashion-mnist'")


def test_yaml_round_trip(tmp_path):
    config = resolve(GanConfig, overrides=["latent=7", "discriminator.lr=0.01"])
    path = tmp_path / "saved.yaml"
    path.write_text(to_yaml(config))
    assert resolve(GanConfig, path) == config


def test_default_dataset_options_do_not_follow_another_dataset(tmp_path):
    from vision_kernels.engine.run_config import DataConfig

    class Segmenter(BaseModel):
        model_config = ConfigDict(extra="forbid")
        data: DataConfig = Field(default_factory=lambda: DataConfig(name="shapes", options={"task": "instance"}))

    assert resolve(Segmenter, overrides=["data.options.size=64"]).data.options == {"task": "instance", "size": 64}
    other = resolve(Segmenter, overrides=["data.name=horse", "data.options={count: 8}"])
    assert other.data.options == {"count": 8}  # not shapes' task
    assert resolve(Segmenter, overrides=["data.name=horse"]).data.options == {}
    config_file = tmp_path / "c.yaml"
    config_file.write_text("data:\n  name: horse\n")
    assert resolve(Segmenter, config_file, ["data.options.size=32"]).data.options == {"size": 32}
    assert resolve(Segmenter, overrides=["data.name=shapes"]).data.options == {"task": "instance"}
