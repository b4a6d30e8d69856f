"""`train.compile`: the networks that call the project's custom ops trace into one graph each (no
graph break from our ops, train and eval mode, the fused op one node forward and one backward), and
a compiled dcgan run through `vk train` finishes, keeps the eager checkpoint keys and lands on the
eager run's weights within the tolerance Adam allows; `vk eval` reads its checkpoint, and a compiled
run resumes (slow)."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from safetensors.torch import load_file

from vision_kernels import ops
from vision_kernels.engine import checkpoint as ckpt
from vision_kernels.engine.compiling import compile_networks
from vision_kernels.engine.run_config import TrainConfig
from vision_kernels.plugins.gans.convnets import DcganGenerator
from vision_kernels.plugins.unet.model import UNet

pytestmark = pytest.mark.skipif(
    not ops._extension.STATUS.loaded, reason="compiles the native ops (their fake kernels and autograd)"
)

OP, OP_BACKWARD = "vision_kernels.batch_norm_act.default", "vision_kernels.batch_norm_act_backward.default"


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _targets(graph_module) -> list[str]:
    return [str(node.target) for node in graph_module.graph.nodes if node.op == "call_function"]


def _fused_blocks(network: torch.nn.Module) -> int:
    from vision_kernels.nn import ConvTransposeNormAct2d

    return sum(isinstance(m, ConvTransposeNormAct2d) for m in network.modules())


def _generator():
    torch.manual_seed(0)
    return DcganGenerator(latent=16, image_size=16, channels=1, width=8, fused=True), torch.randn(4, 16)


def _unet():
    torch.manual_seed(0)
    model = UNet(3, 4, depth=2, base_width=4, padding="same", batch_norm=True, fused=True, channels_last=True)
    return model, torch.rand(2, 3, 16, 16)


NETWORKS = {"dcgan-generator": _generator, "unet": _unet}


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_no_graph_breaks(name, training):
    network, x = NETWORKS[name]()
    assert _fused_blocks(network) == 2  # both networks have two fused up-convolutions
    network.train(training)
    explained = torch._dynamo.explain(network)(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1
    nodes = _targets(explained.graphs[0])
    # Training: the batch statistics + activation are one call of the fused op per block (the
    # convolution beside it is aten's). Eval: the norm folds into the convolution's weights, and
    # no op of ours is left to break anything.
    assert nodes.count(OP.removesuffix(".default")) == (2 if training else 0)


def test_bf16_autocast_unet_has_no_graph_breaks():
    """The unet family's default precision on CPUs with native bf16 (auto-bf16)."""
    network, x = _unet()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        explained = torch._dynamo.explain(network)(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert _targets(explained.graphs[0]).count(OP.removesuffix(".default")) == _fused_blocks(network)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_fused_op_is_one_node_forward_and_backward(name):
    from torch._dynamo.testing import AotEagerAndRecordGraphs

    network, x = NETWORKS[name]()
    backend = AotEagerAndRecordGraphs()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your compiler for AOTAutograd is returning a function")
        torch.compile(network, backend=backend, fullgraph=True)(x).float().square().mean().backward()
    (forward,), (backward,) = backend.fw_graphs, backend.bw_graphs
    blocks = _fused_blocks(network)
    assert _targets(forward).count(OP) == blocks
    assert _targets(backward).count(OP_BACKWARD) == blocks


def test_compile_networks_is_in_place_and_copies_stay_eager():
    import copy

    network, z = _generator()
    keys = list(network.state_dict())
    compile_networks({"generator": network}, TrainConfig(compile=False))
    assert network._compiled_call_impl is None
    compile_networks({"generator": network}, TrainConfig(compile=True))
    assert network._compiled_call_impl is not None
    assert list(network.state_dict()) == keys  # no "_orig_mod." prefix: checkpoints keep the eager keys
    # The EMA shadow and `vk eval`'s copies are deep copies: they drop the compiled call (a copy
    # that kept it would run the original module's forward with the original's weights).
    shadow = copy.deepcopy(network)
    assert shadow._compiled_call_impl is None
    with torch.no_grad():
        for p in shadow.parameters():
            p.zero_()
        shadow.eval()
        assert not shadow(z).any()  # zero weights give tanh(0): the copy runs its own weights


# A tiny dcgan on scikit-learn's digits (as tests/test_gans.py): 4 steps with evaluation at the end.
DCGAN = ["image_size=8", "latent=8", "generator_width=8", "discriminator_width=8", "data.name=digits",
         "data.batch_size=32", "train.tensorboard=false", "eval_samples=64", "train.precision=fp32",
         "--device", "cpu", "--quiet"]  # fmt: skip
STEPS, LR = 4, 2e-4


def _weights(run_dir, which="last"):
    return load_file(ckpt.load(run_dir, which=which).path / "weights.safetensors")


def _assert_close_to_eager(got: dict, want: dict) -> None:
    """Compiled kernels reorder float sums (inductor's fused reductions, another convolution
    algorithm), so gradients agree to float rounding only. Adam moves a weight by about lr per step
    whatever the gradient's size (m / sqrt(v) is about +-1), so an element whose gradient is near 0
    can step the other way: at most 2 * lr per step, STEPS * 2 * lr in all. That bounds every
    element; most must agree to float rounding."""
    assert got.keys() == want.keys()
    bound = STEPS * 2 * LR
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=bound, msg=key)
    close = torch.cat([(got[k].float() - want[k].float()).abs().flatten() <= 1e-5 for k in want])
    assert close.float().mean() > 0.99


def test_compiled_dcgan_run_matches_eager(builtin_cli, tmp_path):
    runs = tmp_path / "runs" / "dcgan"
    builtin_cli("train", "dcgan", *DCGAN, f"train.max_steps={STEPS}", "--name", "eager")
    builtin_cli("train", "dcgan", *DCGAN, f"train.max_steps={STEPS}", "train.compile=true", "--name", "compiled")
    compiled, eager = _weights(runs / "compiled"), _weights(runs / "eager")
    _assert_close_to_eager(compiled, eager)
    metrics = {}
    for name in ("eager", "compiled"):
        meta = ckpt.load(runs / name).meta
        metrics[name] = meta["metrics"]
        assert meta["step"] == STEPS
    # The final evaluation ran the compiled generator in eval mode (a recompile, not the training
    # graph): its FID is the eager run's up to the tiny weight differences.
    assert math.isclose(metrics["compiled"]["fid"], metrics["eager"]["fid"], rel_tol=0.01)

    builtin_cli("eval", str(runs / "compiled"), "--checkpoint", "last")  # eager networks, the same keys
    evaluated = json.loads((runs / "compiled" / "eval.json").read_text())["metrics"]
    assert math.isclose(evaluated["fid"], metrics["compiled"]["fid"], rel_tol=0.01)


@pytest.mark.slow
def test_compiled_run_resumes_exactly(builtin_cli, tmp_path):
    """A compiled run stopped half way and resumed compiled ends where the straight compiled run
    ends; an eager run resumed with train.compile=true (a resumable key) continues too."""
    runs = tmp_path / "runs" / "dcgan"
    compiled = [*DCGAN, "train.compile=true", "train.ema.decay=0.9"]
    builtin_cli("train", "dcgan", *compiled, f"train.max_steps={STEPS}", "--name", "straight")
    builtin_cli("train", "dcgan", *compiled, f"train.max_steps={STEPS // 2}", "--name", "halves")
    builtin_cli("train", "dcgan", "--resume", str(runs / "halves"), f"train.max_steps={STEPS}", "--quiet")
    straight, resumed = _weights(runs / "straight"), _weights(runs / "halves")
    assert any(key.startswith("ema.") for key in straight)
    assert straight.keys() == resumed.keys()
    for key in straight:  # the same compiled kernels on the same data: bit for bit
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0, msg=key)

    builtin_cli("train", "dcgan", *DCGAN, f"train.max_steps={STEPS // 2}", "--name", "switched")
    builtin_cli(
        "train", "dcgan", "--resume", str(runs / "switched"), f"train.max_steps={STEPS}", "train.compile=true",
        "--quiet",
    )
    assert ckpt.load(runs / "switched").meta["step"] == STEPS
