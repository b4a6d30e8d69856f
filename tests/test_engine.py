"""The training engine on tiny families (tests/plugins/vk_tiny.py): exact resume, checkpoints
(atomic writes, bad checkpoints), schedules, EMA, precision, callbacks, samples, and the run
directory. The CLI commands and the multi-process runs are in test_engine_cli.py."""

from __future__ import annotations

import errno
import json
import math

import pytest
import torch
import vk_tiny
from safetensors.torch import load_file

from vision_kernels.config import ConfigError, resolve
from vision_kernels.engine import checkpoint as ckpt
from vision_kernels.engine.inference import load_model
from vision_kernels.engine.run_config import ScheduleConfig, run_config_model
from vision_kernels.engine.schedules import Ema, make_scheduler
from vision_kernels.engine.trainer import Trainer
from vision_kernels.family import Callback
from vision_kernels.hookspecs import hookimpl


@pytest.fixture
def tiny(vk_register):
    vk_register(vk_tiny, name="vk_tiny")
    return vk_tiny


def make_trainer(family, run_dir, *overrides, resume=False, callbacks=()):
    config = resolve(run_config_model(family.config), overrides=["train.tensorboard=false", *overrides])
    run_dir.mkdir(parents=True, exist_ok=True)
    return Trainer(family, config, run_dir, device="cpu", resume=resume, quiet=True, extra_callbacks=list(callbacks))


def weights(run_dir, which="last"):
    return load_file(ckpt.locate(run_dir, which) / ckpt.WEIGHTS)


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class StopAt:
    """Asks the trainer to stop after step `step`, the way Ctrl-C does."""

    def __init__(self, step):
        self.step = step

    def on_step(self, trainer, metrics):
        if trainer.step == self.step:
            trainer.request_stop()


# ---- exact resume ------------------------------------------------------------------------------------


def test_resume_after_an_epoch_is_bit_identical(tiny, tmp_path):
    straight = make_trainer(tiny.TINY, tmp_path / "straight", "train.epochs=2").fit()
    first = make_trainer(tiny.TINY, tmp_path / "resumed", "train.epochs=1").fit()
    assert (straight.step, first.step) == (32, 16)
    resumed = make_trainer(tiny.TINY, tmp_path / "resumed", "train.epochs=2", resume=True).fit()
    assert resumed.step == 32 and resumed.status == "finished"
    assert_identical(weights(tmp_path / "straight"), weights(tmp_path / "resumed"))
    run = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert run["resumed_from"].endswith("step-00000016") and run["status"] == "finished"


@pytest.mark.parametrize(
    "family, overrides",
    [
        ("TINY", ["train.schedule.name=step", "train.schedule.step_size=1", "train.schedule.gamma=0.5"]),
        ("TINY_GAN", ["train.ema.decay=0.9", "train.clip_grad_norm=1.0"]),
    ],
    ids=["tiny-step-schedule", "gan-ema-clipping"],
)
def test_resume_mid_epoch_is_bit_identical(tiny, tmp_path, family, overrides):
    family = getattr(tiny, family)
    common = ["train.epochs=3", *overrides]
    straight = make_trainer(family, tmp_path / "straight", *common).fit()
    stopped = make_trainer(family, tmp_path / "resumed", *common, callbacks=[StopAt(21)]).fit()
    assert stopped.status == "interrupted" and stopped.step == 21
    index = ckpt.read_index(tmp_path / "resumed" / "checkpoints")
    assert index["last"] == "step-00000021"
    assert json.loads((tmp_path / "resumed" / "run.json").read_text())["status"] == "interrupted"
    resumed = make_trainer(family, tmp_path / "resumed", *common, resume=True).fit()
    assert resumed.step == straight.step == 48
    assert_identical(weights(tmp_path / "straight"), weights(tmp_path / "resumed"))


# ---- checkpoints -------------------------------------------------------------------------------------


def test_checkpoint_contents_and_rebuild_from_it_alone(tiny, tmp_path):
    make_trainer(tiny.TINY, tmp_path / "run", "train.epochs=2", "hidden=12").fit()
    directory = ckpt.locate(tmp_path / "run")
    meta = json.loads((directory / ckpt.META).read_text())
    assert meta["family"] == "tiny" and meta["family_version"] == "1" and meta["config"]["hidden"] == 12
    assert meta["networks"]["model"]["1.weight"] == [12, 8]
    from safetensors import safe_open

    with safe_open(directory / ckpt.WEIGHTS, "pt") as f:  # the weights file alone names family and config
        assert json.loads(f.metadata()[ckpt.METADATA_KEY])["config"]["hidden"] == 12
    state = torch.load(directory / ckpt.STATE, weights_only=True)
    assert set(state) >= {"optimizers", "schedulers", "scaler", "rng", "step", "epoch", "position"}
    loaded = load_model(tmp_path / "run", device="cpu")
    assert loaded.family.name == "tiny" and loaded.config.hidden == 12
    assert not loaded.networks["model"].training


def test_keep_last_and_best(tiny, tmp_path):
    make_trainer(
        tiny.TINY,
        tmp_path / "run",
        "train.epochs=4",
        "train.checkpoint.keep_last=2",
        "train.checkpoint.monitor=accuracy",
    ).fit()
    directory = tmp_path / "run" / "checkpoints"
    index = ckpt.read_index(directory)
    kept = sorted(p.name for p in directory.iterdir() if p.is_dir())
    assert index["last"] == "step-00000064" and index["best_metric"] == "accuracy"
    assert set(kept) == {"step-00000048", "step-00000064", index["best"]}


def _failing_after_bytes(real, limit):
    """A save function that writes `limit` bytes of the file, then fails like a full disk."""

    def save(*args, **kwargs):
        real(*args, **kwargs)
        path = args[1] if len(args) > 1 else kwargs.get("filename") or kwargs.get("f")
        data = open(path, "rb").read()
        open(path, "wb").write(data[:limit])
        raise OSError(errno.ENOSPC, "No space left on device")

    return save


@pytest.mark.parametrize("target", ["weights", "state"])
def test_a_crash_mid_write_leaves_the_last_checkpoint(tiny, tmp_path, monkeypatch, target):
    run = tmp_path / "run"
    make_trainer(tiny.TINY, run, "train.epochs=1").fit()
    before = weights(run)
    if target == "weights":
        import safetensors.torch

        monkeypatch.setattr(safetensors.torch, "save_file", _failing_after_bytes(safetensors.torch.save_file, 100))
    else:
        monkeypatch.setattr(torch, "save", _failing_after_bytes(torch.save, 100))
    with pytest.raises(OSError, match="No space left"):
        make_trainer(tiny.TINY, run, "train.epochs=2", resume=True).fit()
    monkeypatch.undo()
    assert ckpt.read_index(run / "checkpoints")["last"] == "step-00000016"
    assert_identical(weights(run), before)
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert any(p.name.startswith(".tmp-") for p in (run / "checkpoints").iterdir())  # the partial write
    resumed = make_trainer(tiny.TINY, run, "train.epochs=2", resume=True).fit()  # and it resumes from there
    assert resumed.step == 32
    assert not any(p.name.startswith(".tmp-") for p in (run / "checkpoints").iterdir())


@pytest.fixture
def trained(tiny, tmp_path):
    make_trainer(tiny.TINY, tmp_path / "run", "train.epochs=1").fit()
    return tmp_path / "run"


def test_checkpoint_of_another_family(trained):
    with pytest.raises(ckpt.CheckpointError, match="was written by family 'tiny', not 'tiny-gan'"):
        ckpt.load(trained, family="tiny-gan")


def test_truncated_weights(trained):
    path = ckpt.locate(trained) / ckpt.WEIGHTS
    path.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(ckpt.CheckpointError, match=r"weights.safetensors' is truncated or corrupt"):
        load_model(trained, device="cpu")


def test_truncated_state(tiny, trained):
    path = ckpt.locate(trained) / ckpt.STATE
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ckpt.CheckpointError, match=r"state.pt' is truncated or corrupt"):
        make_trainer(tiny.TINY, trained, "train.epochs=2", resume=True).fit()


def test_corrupt_or_missing_meta(trained):
    meta = ckpt.locate(trained) / ckpt.META
    meta.write_text("{not json")
    with pytest.raises(ckpt.CheckpointError, match="meta.json' is corrupt"):
        ckpt.load(trained)
    meta.unlink()
    with pytest.raises(ckpt.CheckpointError, match="is incomplete: meta.json is missing"):
        ckpt.load(trained)


def test_no_checkpoint_yet(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ckpt.CheckpointError, match="no last checkpoint in"):
        ckpt.load(tmp_path)
    with pytest.raises(ckpt.CheckpointError, match="not a run directory or checkpoint"):
        ckpt.load(tmp_path / "nowhere")


def test_config_that_does_not_match_the_weights(trained):
    """An override that would change the weights is refused; a stored config that builds other shapes
    than the weights (an edited meta.json) fails naming the first differences."""
    with pytest.raises(ConfigError, match=r"hidden cannot change for evaluation or prediction: the run has 16, "
                       r"the override gives 32"):  # fmt: skip
        load_model(trained, device="cpu", overrides=["hidden=32"])
    meta_path = ckpt.locate(trained) / ckpt.META
    meta = json.loads(meta_path.read_text())
    meta["config"]["hidden"] = 32
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        ckpt.CheckpointError,
        match=r"the config does not match the weights in .*: model.1.weight is \[16, 8\] in the checkpoint but "
        r"\[32, 8\] in the model",
    ):
        load_model(trained, device="cpu")


def test_inference_overrides_equal_or_data_and_predict(trained):
    """eval/predict may change data.* (another batch size, another folder) and accept the run's own
    values for any key."""
    loaded = load_model(trained, device="cpu", overrides=["data.eval_batch_size=3", "hidden=16"])
    assert loaded.config.data.eval_batch_size == 3 and loaded.config.hidden == 16


# ---- schedules, EMA, precision, data --------------------------------------------------------------------


def _lrs(schedule, epochs):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = make_scheduler(ScheduleConfig(**schedule), optimizer, epochs)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return rates


def test_schedules():
    assert _lrs({"name": "constant"}, 3) == [1.0, 1.0, 1.0]
    assert _lrs({"name": "linear"}, 4) == pytest.approx([1.0, 1.0, 1.0, 0.5])  # CycleGAN: decay in the second half
    assert _lrs({"name": "linear", "decay_start": 0}, 4) == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert _lrs({"name": "step", "step_size": 2, "gamma": 0.1}, 5) == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    cosine = _lrs({"name": "cosine", "min_lr": 0.0}, 4)
    assert cosine == pytest.approx([0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])


def test_plateau_schedule_follows_the_monitored_metric(tiny, tmp_path):
    trainer = make_trainer(
        tiny.TINY,
        tmp_path / "run",
        "train.epochs=3",
        "train.schedule.name=plateau",
        "train.schedule.patience=0",
        "train.schedule.factor=0.5",
        "train.checkpoint.monitor=accuracy",
    )
    trainer.fit()
    # accuracy: 0.996 after epoch 1, 1.0 after epoch 2 (better), 1.0 after epoch 3 (no better): one halving
    assert trainer.optimizers["model"].param_groups[0]["lr"] == pytest.approx(0.05 * 0.5)


def test_plateau_schedule_needs_a_monitor(tiny, tmp_path):
    with pytest.raises(ValueError, match="set train.checkpoint.monitor"):
        make_trainer(tiny.TINY, tmp_path / "run", "train.schedule.name=plateau").fit()


def test_ema_update_formula():
    net = torch.nn.Linear(2, 2)
    ema = Ema({"g": net}, decay=0.9)
    before = ema.networks["g"].weight.clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update({"g": net})
    torch.testing.assert_close(ema.networks["g"].weight, 0.9 * before + 0.1 * net.weight)


def test_ema_is_saved_and_used_for_prediction(tiny, tmp_path):
    make_trainer(tiny.TINY_GAN, tmp_path / "run", "train.ema.decay=0.9").fit()
    tensors = weights(tmp_path / "run")
    assert any(k.startswith("ema.generator.") for k in tensors)
    assert not any(k.startswith("ema.discriminator.") for k in tensors)
    loaded = load_model(tmp_path / "run", device="cpu")
    assert torch.equal(loaded.networks["generator"][0].weight, tensors["ema.generator.0.weight"])


def test_ema_of_an_unknown_network(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"train.ema.networks names \['gen'\]; the family's networks are"):
        make_trainer(tiny.TINY_GAN, tmp_path / "run", "train.ema.decay=0.9", "train.ema.networks=[gen]").fit()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cpu(tiny, tmp_path, precision):
    trainer = make_trainer(tiny.TINY_GAN, tmp_path / "run", f"train.precision={precision}")
    result = trainer.fit()
    assert result.status == "finished" and all(math.isfinite(v) for v in result.metrics.values())
    assert (trainer.scaler is not None) == (precision == "fp16")


def test_precision_auto_is_off_on_cpu(tiny, tmp_path):
    assert make_trainer(tiny.TINY, tmp_path / "run").amp_dtype is None


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_bf16_follows_the_cpu(tiny, tmp_path, monkeypatch, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    trainer = make_trainer(tiny.TINY, tmp_path / "run", "train.precision=auto-bf16")
    assert trainer.amp_dtype == (torch.bfloat16 if native else None)


def test_max_steps_stops_mid_epoch(tiny, tmp_path):
    result = make_trainer(tiny.TINY, tmp_path / "run", "train.epochs=5", "train.max_steps=20").fit()
    assert (result.status, result.step, result.epoch) == ("finished", 20, 1)
    assert ckpt.read_index(tmp_path / "run" / "checkpoints")["last"] == "step-00000020"


def test_time_budget_stops_evaluated_and_checkpointed(tiny, tmp_path):
    # A budget spent after the first step: the run stops there, evaluated, checkpointed mid-epoch.
    result = make_trainer(tiny.TINY, tmp_path / "run", "train.epochs=5", "train.max_minutes=1e-9").fit()
    assert (result.status, result.step, result.epoch) == ("finished", 1, 0)
    assert "accuracy" in result.metrics
    assert ckpt.read_index(tmp_path / "run" / "checkpoints")["last"] == "step-00000001"


def test_unknown_dataset_and_batch_too_large(tiny, tmp_path):
    with pytest.raises(ValueError, match="data.name 'nope' is not a registered dataset; known: blobs"):
        make_trainer(tiny.TINY, tmp_path / "a", "data.name=nope").fit()
    with pytest.raises(ValueError, match="data.batch_size 1000 is larger than"):
        make_trainer(tiny.TINY, tmp_path / "b", "data.batch_size=1000").fit()
    with pytest.raises(ValueError, match="does not take these options"):
        make_trainer(tiny.TINY, tmp_path / "c", "data.options={colour: red}").fit()


def test_non_finite_loss_stops_with_advice(tiny, tmp_path):
    with pytest.raises(FloatingPointError, match="loss is not finite.*lower the learning rate"):
        make_trainer(tiny.TINY, tmp_path / "run", "lr=1e30").fit()


# ---- samples, metrics, callbacks -----------------------------------------------------------------------


def test_samples_metrics_and_run_files(tiny, tmp_path):
    run = tmp_path / "run"
    make_trainer(tiny.TINY_GAN, run, "train.epochs=2", "train.sample_every=10", "train.log_every=5").fit()
    samples = sorted(p.name for p in (run / "samples").iterdir())
    # every 10 steps, and at the end of the run (step 32)
    assert samples == [f"fake-step-{step:08d}.png" for step in (10, 20, 30, 32)]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 20, 25, 30, 32]
    assert {"loss_d", "loss_g", "time", "epoch"} <= set(train[0])
    assert [r["step"] for r in records if r["split"] == "eval"] == [16, 32]
    env = json.loads((run / "environment.json").read_text())
    assert env["device"] == "cpu" and "box_iou" in env["backends"] and env["auto"]["box_iou"] == "native"
    assert (run / "config.yaml").read_text().startswith("family: tiny-gan\n")


def test_samples_do_not_change_training(tiny, tmp_path):
    """Samples and evaluation draw noise on their own stream: with or without them, same weights."""
    make_trainer(tiny.TINY_GAN, tmp_path / "a", "train.sample_every=3", "train.eval_every=5").fit()
    make_trainer(tiny.TINY_GAN, tmp_path / "b").fit()
    assert_identical(weights(tmp_path / "a"), weights(tmp_path / "b"))


class Recorder:
    def __init__(self, **options):
        self.options, self.events = options, []

    def on_train_start(self, trainer):
        self.events.append(("start", trainer.step))

    def on_step(self, trainer, metrics):
        self.events.append(("step", trainer.step))

    def on_eval(self, trainer, metrics):
        self.events.append(("eval", trainer.step))

    def on_checkpoint(self, trainer, path):
        self.events.append(("checkpoint", path.name))

    def on_train_end(self, trainer, status):
        self.events.append(("end", status))


def test_plugin_callbacks_get_every_event(tiny, vk_register, tmp_path):
    recorders = []

    class Plugin:
        @hookimpl
        def register_callbacks(self, register):
            register(Callback("recorder", "records events", lambda: recorders.append(Recorder()) or recorders[-1]))

    vk_register(Plugin(), name="recorder-plugin")
    make_trainer(tiny.TINY, tmp_path / "run", "train.max_steps=3", "train.callbacks=[recorder]").fit()
    (recorder,) = recorders
    assert recorder.events == [
        ("start", 0),
        ("step", 1),
        ("step", 2),
        ("step", 3),
        ("eval", 3),  # a run is always evaluated at its end, before its last checkpoint
        ("checkpoint", "step-00000003"),
        ("end", "finished"),
    ]


def test_unknown_callback(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"train.callbacks names 'nope'"):
        make_trainer(tiny.TINY, tmp_path / "run", "train.callbacks=[nope]").fit()


def test_tensorboard_events(tiny, tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    config = resolve(run_config_model(tiny.TINY.config), overrides=["train.max_steps=3"])
    run.mkdir()
    Trainer(tiny.TINY, config, run, device="cpu", quiet=True).fit()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_quiet_mode_logs_plain_lines(tiny, tmp_path, capsys):
    make_trainer(tiny.TINY, tmp_path / "run", "train.log_every=8").fit()
    err = capsys.readouterr().err
    assert "epoch 1 step 8/16 loss=" in err and "img/s eta" in err and "eval at step 16: loss=" in err


def test_deterministic_mode(tiny, tmp_path):
    try:
        make_trainer(tiny.TINY, tmp_path / "run", "train.max_steps=2", "train.deterministic=true").fit()
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_distributed_wrap_and_sync_batchnorm():
    import torch.distributed as torch_dist

    from vision_kernels.engine import distributed as dist

    store = torch_dist.HashStore()
    torch_dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        world = dist.World(rank=0, local_rank=0, size=2)  # "distributed", over a one-process group
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
        keys = list(net.state_dict())
        with pytest.raises(ValueError, match="train.sync_batchnorm=true needs GPUs"):
            dist.wrap(world, net, torch.device("cpu"), sync_batchnorm=True)
        wrapped = dist.wrap(world, net, torch.device("cpu"), sync_batchnorm=False)
        assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
        assert list(wrapped.module.state_dict()) == keys
        synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)  # what a GPU run gets: same keys
        assert isinstance(synced[1], torch.nn.SyncBatchNorm) and list(synced.state_dict()) == keys
        frozen = torch.nn.Linear(2, 2).requires_grad_(False)
        assert dist.wrap(world, frozen, torch.device("cpu"), sync_batchnorm=False) is frozen
    finally:
        torch_dist.destroy_process_group()
