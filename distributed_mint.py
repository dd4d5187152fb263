# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Cross-process gathering for the stage-1 negatives (ALC / ALM over the global batch, as LAVIS's BLIP-2 does).

Under DDP every process contrasts its rows against the columns of all processes. A gather with gradients sums, in
its backward, every process's gradient for this process's slice (LAVIS's `GatherLayer` / `all_gather_with_grad`);
in one process every function is the identity.
"""

import weakref

import torch
import torch.nn.functional as F


# Keyed weakly by the default group: when a run destroys it (`destroy_process_group`, `Accelerator.end_training`),
# its negatives group goes with it rather than at interpreter exit, where freeing a shut-down gloo group can abort the
# process ("terminate called without an active exception") after a successful run.
_NEGATIVES_GROUPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def is_distributed() -> bool:
    """Whether more than one process takes part (an initialised default group of size > 1)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized() and \
        torch.distributed.get_world_size() > 1


def rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


def _negatives_group():
    """
    A process group of its own for the negatives' collectives: their backward runs while DDP all-reduces gradient
    buckets, and two streams of collectives on one group can interleave differently on each process and deadlock.
    """
    default = torch.distributed.group.WORLD
    if default not in _NEGATIVES_GROUPS:
        _NEGATIVES_GROUPS[default] = torch.distributed.new_group()
    return _NEGATIVES_GROUPS[default]


class _GatherWithGradient(torch.autograd.Function):
    """all_gather whose backward sums every process's gradient for this process's slice."""

    @staticmethod
    def forward(ctx, tensor):
        gathered = [torch.empty_like(tensor) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(gathered, tensor.contiguous(), group=_negatives_group())
        return tuple(gathered)

    @staticmethod
    def backward(ctx, *grads):
        grads = torch.stack(grads)
        torch.distributed.all_reduce(grads, group=_negatives_group())
        return grads[torch.distributed.get_rank()]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` of every process concatenated along dim 0, differentiable."""
    if not is_distributed():
        return tensor
    return torch.cat(_GatherWithGradient.apply(tensor), dim=0)


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` of every process (the same shape on each) concatenated along dim 0, without gradients."""
    if not is_distributed():
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(gathered, tensor.contiguous(), group=_negatives_group())
    return torch.cat(gathered, dim=0)


def gather_padded(tensor: torch.Tensor, dim: int, differentiable: bool = False) -> torch.Tensor:
    """
    `tensor` of every process concatenated along dim 0, where its size along `dim` may differ between processes:
    each is zero-padded along `dim` to the largest first.
    """
    if not is_distributed():
        return tensor
    size = torch.tensor(tensor.shape[dim], device=tensor.device)
    torch.distributed.all_reduce(size, op=torch.distributed.ReduceOp.MAX, group=_negatives_group())
    pad = [0, 0] * (tensor.dim() - dim - 1) + [0, int(size) - tensor.shape[dim]]
    tensor = F.pad(tensor, pad).contiguous()
    return gather_with_grad(tensor) if differentiable else gather(tensor)
