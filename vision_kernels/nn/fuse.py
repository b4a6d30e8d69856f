"""fuse(model): swap stock layer sequences for vision_kernels' fused ones, keeping outputs,
gradients and state_dict keys.

Patterns, inside every nn.Sequential (and, with trace=True, anywhere torch.fx can see them):
1. ConvTranspose2d -> BatchNorm2d / InstanceNorm2d -> ReLU / LeakyReLU / Tanh (the norm or the
   activation may be missing): the convolution becomes a FusedConvTranspose2d that applies all three
   in one op; the norm module stays where it was, with its parameters and buffers, as an
   "Applied" norm that passes its input through; the activation becomes nn.Identity.
2. InstanceNorm{1,2,3}d -> ReLU / LeakyReLU: InstanceNormAct (the activation becomes nn.Identity);
   any other torch InstanceNorm becomes vision_kernels' InstanceNorm of the same name.
Only the exact torch classes are matched (a subclass may have its own forward). Every module keeps
its parameter objects and its place, so every state_dict key stays where it was and a checkpoint
of the fused model loads into the stock one and back.

With trace=True, an activation applied functionally (F.relu(self.norm(x))) is folded too when the
model traces with torch.fx and the traced model keeps the state_dict keys; the result is then a
torch.fx.GraphModule. With trace=False, or when tracing fails, the model keeps its class.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from vision_kernels.nn.conv import (
    AppliedBatchNorm2d,
    AppliedInstanceNorm2d,
    FusedConvTranspose2d,
    activation_of,
)
from vision_kernels.nn.instance_norm import TORCH_TO_VK, TORCH_TO_VK_ACT, InstanceNorm2d, _VkInstanceNorm


def _swap_class(module: nn.Module, cls: type) -> nn.Module:
    """A module of class `cls` sharing every attribute (parameters, buffers, hooks) of `module`."""
    new = cls.__new__(cls)
    new.__dict__.update(module.__dict__)
    return new


# ---- instance norm (+ activation) ---------------------------------------------------------------------


def _norm_activation(module: nn.Module) -> tuple[str, float] | None:
    """The activation InstanceNormAct can fold: relu or leaky_relu."""
    act = activation_of(module)
    return act if act is not None and act[0] in ("relu", "leaky_relu") and type(module) is not nn.Identity else None


def _fused_norm(norm: nn.Module, activation: tuple[str, float] | None) -> nn.Module | None:
    """The vision_kernels module replacing instance norm `norm` (with `activation` folded in), or None."""
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


# ---- transposed convolution (+ norm) (+ activation) ---------------------------------------------------

_APPLIED = {
    nn.BatchNorm2d: AppliedBatchNorm2d,
    nn.InstanceNorm2d: AppliedInstanceNorm2d,
    InstanceNorm2d: AppliedInstanceNorm2d,
}


def _fuse_conv(conv: nn.Module, norm: nn.Module | None, activation: tuple[str, float] | None) -> tuple | None:
    """(fused conv, applied norm or None) for conv -> norm -> activation, or None if it is not a
    pattern. `norm` and `activation` may be None (absent), not both."""
    if type(conv) is not nn.ConvTranspose2d or conv.padding_mode != "zeros":
        return None
    if norm is not None and type(norm) not in _APPLIED:
        return None
    if norm is None and activation is None:
        return None
    activation = activation or ("none", 0.01)
    head = _swap_class(conv, FusedConvTranspose2d)
    applied = _swap_class(norm, _APPLIED[type(norm)]) if norm is not None else None
    object.__setattr__(head, "fused_norm", applied)  # not a submodule: it stays registered where it was
    object.__setattr__(head, "fused_activation", activation)
    return head, applied


def _fuse_sequential(seq: nn.Sequential) -> None:
    names = list(seq._modules)
    i = 0
    while i < len(names):
        conv = seq._modules[names[i]]
        follow = [seq._modules[n] for n in names[i + 1 : i + 3]]
        norm = follow[0] if follow and type(follow[0]) in _APPLIED else None
        act_index = i + 2 if norm is not None else i + 1
        act = seq._modules[names[act_index]] if act_index < len(names) else None
        if act is not None and (activation_of(act) is None or type(act) is nn.Identity):
            act = None
        fused = _fuse_conv(conv, norm, activation_of(act) if act is not None else None)
        if fused is None:
            i += 1
            continue
        seq._modules[names[i]], applied = fused
        if norm is not None:
            seq._modules[names[i + 1]] = applied
        if act is not None:
            seq._modules[names[act_index]] = nn.Identity()
        i = act_index + 1 if act is not None else i + 2
    for first, second in zip(names, names[1:], strict=False):
        activation = _norm_activation(seq._modules[second])
        fused = _fused_norm(seq._modules[first], activation) if activation else None
        if fused is not None:
            seq._modules[first] = fused
            seq._modules[second] = nn.Identity()


def _fuse_modules(module: nn.Module) -> None:
    for child in module.children():
        _fuse_modules(child)
    if isinstance(module, nn.Sequential):
        _fuse_sequential(module)
    for name, child in list(module._modules.items()):
        fused = _fused_norm(child, None) if child is not None else None
        if fused is not None:
            module._modules[name] = fused


# ---- torch.fx --------------------------------------------------------------------------------------


class _Tracer(torch.fx.Tracer):
    """Keeps vision_kernels modules as single calls (torch.fx only does so for torch.nn's)."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        ours = (_VkInstanceNorm, FusedConvTranspose2d, AppliedBatchNorm2d, AppliedInstanceNorm2d)
        return isinstance(module, ours) or super().is_leaf_module(module, qualified_name)


def _functional_activation(node: torch.fx.Node, gm: torch.fx.GraphModule) -> tuple[str, float] | None:
    """The activation `node` applies to its first argument, if it is one fuse can fold."""
    if node.op == "call_module":
        act = activation_of(gm.get_submodule(node.target))
        return act if act is not None and act[0] != "none" else None
    if node.op == "call_function" and node.target in (F.relu, torch.relu, torch.relu_):
        return "relu", 0.01
    if node.op == "call_method" and node.target in ("relu", "relu_"):
        return "relu", 0.01
    if node.op in ("call_function", "call_method") and node.target in (torch.tanh, F.tanh, "tanh", "tanh_"):
        return "tanh", 0.01
    if node.op == "call_function" and node.target in (F.leaky_relu, torch._C._nn.leaky_relu):
        slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
        return ("leaky_relu", float(slope)) if isinstance(slope, (int, float)) else None
    return None


def _sole_user(node: torch.fx.Node) -> torch.fx.Node | None:
    if len(node.users) != 1:
        return None
    user = next(iter(node.users))
    return user if user.args and user.args[0] is node else None


def _set_submodule(gm: torch.fx.GraphModule, target: str, module: nn.Module) -> None:
    parent, _, name = target.rpartition(".")
    setattr(gm.get_submodule(parent) if parent else gm, name, module)


def _fuse_traced(model: nn.Module) -> nn.Module:
    candidates = (nn.ConvTranspose2d, *TORCH_TO_VK)
    if not any(
        type(m) is nn.ConvTranspose2d or (isinstance(m, _VkInstanceNorm) and m.activation == "none")
        for m in model.modules()
    ) or not any(isinstance(m, candidates) for m in model.modules()):
        return model
    try:
        gm = torch.fx.GraphModule(model, _Tracer().trace(model))
    except Exception:  # any model torch.fx cannot trace keeps the module-level fusion only
        return model
    if gm.state_dict().keys() != model.state_dict().keys():
        return model
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1

    def once(node: torch.fx.Node | None) -> bool:
        return node is not None and node.op == "call_module" and calls[node.target] == 1

    changed = False
    for node in list(gm.graph.nodes):
        if not once(node) or node not in gm.graph.nodes:
            continue
        module = gm.get_submodule(node.target)
        if type(module) is nn.ConvTranspose2d and len(node.args) == 1:
            norm_node = _sole_user(node)
            norm = gm.get_submodule(norm_node.target) if once(norm_node) else None
            if norm is not None and type(norm) not in _APPLIED:
                norm, norm_node = None, None
            last = norm_node if norm is not None else node
            act_node = _sole_user(last)
            activation = _functional_activation(act_node, gm) if act_node is not None else None
            if norm is None and activation is None:
                continue
            fused = _fuse_conv(module, norm, activation)
            if fused is None:
                continue
            head, applied = fused
            _set_submodule(gm, node.target, head)
            if norm is not None:
                _set_submodule(gm, norm_node.target, applied)
            if activation is not None:
                act_node.replace_all_uses_with(last)
                gm.graph.erase_node(act_node)
            changed = True
        elif isinstance(module, _VkInstanceNorm) or type(module) in TORCH_TO_VK:
            act_node = _sole_user(node)
            activation = _functional_activation(act_node, gm) if act_node is not None else None
            if activation is None or activation[0] not in ("relu", "leaky_relu"):
                continue
            fused = _fused_norm(module, activation)
            if fused is None:
                continue
            _set_submodule(gm, node.target, fused)
            act_node.replace_all_uses_with(node)
            gm.graph.erase_node(act_node)
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
