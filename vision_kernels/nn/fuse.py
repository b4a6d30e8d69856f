"""fuse(model): swap stock layers for vision_kernels' fused modules, keeping outputs, gradients
and state_dict keys.

Two steps:
1. Modules: every torch.nn.InstanceNorm{1,2,3}d (exactly those classes, not subclasses) becomes the
   vision_kernels class of the same name, with the same parameter and buffer objects; inside an
   nn.Sequential, an nn.ReLU or nn.LeakyReLU right after one is folded into it (InstanceNormAct)
   and replaced by nn.Identity, so every key of the state_dict stays where it was.
2. torch.fx (trace=True): an activation applied functionally after such a norm (F.relu(self.norm(x)))
   is folded too, when the model traces and the traced model keeps the state_dict keys. Then the
   result is a torch.fx.GraphModule; with trace=False, or when tracing fails, the model keeps its
   class and only step 1 applies.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn

from vision_kernels.nn.instance_norm import TORCH_TO_VK, TORCH_TO_VK_ACT, _VkInstanceNorm


def _swap_class(module: nn.Module, cls: type) -> nn.Module:
    """A module of class `cls` sharing every attribute (parameters, buffers, hooks) of `module`."""
    new = cls.__new__(cls)
    new.__dict__.update(module.__dict__)
    return new


def _module_activation(module: nn.Module) -> tuple[str, float] | None:
    if type(module) is nn.ReLU:
        return "relu", 0.01
    if type(module) is nn.LeakyReLU:
        return "leaky_relu", module.negative_slope
    return None


def _fused_norm(norm: nn.Module, activation: tuple[str, float] | None) -> nn.Module | None:
    """The vision_kernels module replacing `norm` (with `activation` folded in), or None."""
    if type(norm) in TORCH_TO_VK:
        base = type(norm)
    elif isinstance(norm, _VkInstanceNorm) and norm.activation == "none":
        base = next(t for t in TORCH_TO_VK if isinstance(norm, t))
    else:
        return None
    if activation is None:
        return _swap_class(norm, TORCH_TO_VK[base]) if type(norm) in TORCH_TO_VK else None
    fused = _swap_class(norm, TORCH_TO_VK_ACT[base])
    fused.activation, fused.negative_slope = activation
    return fused


def _fuse_modules(module: nn.Module) -> None:
    for child in module.children():
        _fuse_modules(child)
    names = [name for name, _ in module.named_children()]
    if isinstance(module, nn.Sequential):
        for first, second in itertools.pairwise(names):
            activation = _module_activation(module._modules[second])
            fused = _fused_norm(module._modules[first], activation) if activation else None
            if fused is not None:
                module._modules[first] = fused
                module._modules[second] = nn.Identity()
    for name in names:
        fused = _fused_norm(module._modules[name], None)
        if fused is not None:
            module._modules[name] = fused


def _functional_activation(node: torch.fx.Node, gm: torch.fx.GraphModule) -> tuple[str, float] | None:
    """The activation `node` applies to its first argument, if it is one fuse can fold."""
    if node.op == "call_module":
        return _module_activation(gm.get_submodule(node.target))
    if node.op == "call_function" and node.target in (F.relu, torch.relu, torch.relu_):
        return "relu", 0.01
    if node.op == "call_method" and node.target in ("relu", "relu_"):
        return "relu", 0.01
    if node.op == "call_function" and node.target in (F.leaky_relu, torch._C._nn.leaky_relu):
        slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
        return ("leaky_relu", float(slope)) if isinstance(slope, (int, float)) else None
    return None


class _Tracer(torch.fx.Tracer):
    """Keeps vision_kernels modules as single calls (torch.fx only does so for torch.nn's)."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, _VkInstanceNorm) or super().is_leaf_module(module, qualified_name)


def _fuse_traced(model: nn.Module) -> nn.Module:
    if not any(isinstance(m, _VkInstanceNorm) and m.activation == "none" for m in model.modules()):
        return model
    try:
        gm = torch.fx.GraphModule(model, _Tracer().trace(model))
    except Exception:  # any model torch.fx cannot trace keeps step 1 only
        return model
    if gm.state_dict().keys() != model.state_dict().keys():
        return model
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or calls[node.target] != 1 or len(node.users) != 1:
            continue
        user = next(iter(node.users))
        activation = _functional_activation(user, gm)
        if activation is None or not user.args or user.args[0] is not node:
            continue
        fused = _fused_norm(gm.get_submodule(node.target), activation)
        if fused is None:
            continue
        parent, _, name = node.target.rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, name, fused)
        user.replace_all_uses_with(node)
        gm.graph.erase_node(user)
        changed = True
    if not changed:
        return model
    gm.graph.lint()
    gm.recompile()
    return gm


def fuse(model: nn.Module, inplace: bool = False, trace: bool = True) -> nn.Module:
    """Returns `model` with its layers swapped for vision_kernels' fused ones (see the module doc).

    inplace=False (default) works on a deep copy and leaves `model` untouched. The result gives
    the same outputs and gradients, in train and eval mode, and has the same state_dict keys: a
    checkpoint of either loads into the other.
    """
    if not inplace:
        model = copy.deepcopy(model)
    _fuse_modules(model)
    return _fuse_traced(model) if trace else model
