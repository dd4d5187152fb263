"""Two CPU processes (gloo, DDP) give the same stage-1 losses and gradients as one process over the whole batch,
started by `torch.multiprocessing`, `torchrun` or `accelerate launch` (with the launch/ files); a streamed recipe trains
in two processes with the global batch split between them."""

import gc
import json
import os
import socket
import subprocess
import sys

import pytest
import soundfile
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from datasets import Audio, Dataset
from torch.nn.parallel import DistributedDataParallel

import distributed_mint
from modeling_mint import MintForPreTraining
from tests.utils import ROOT, tiny
from tests.utils.audio import clips


pytestmark = pytest.mark.slow


# Four words each, so both processes hold the same number of ATG tokens (the ATG loss is a token mean).
CAPTIONS = ["a dog runs fast", "rain on the roof", "a cat sings softly", "a piano plays music"]
LENGTHS = (16000, 9000, 12000, 14000)


def build():
    torch.manual_seed(0)
    model = MintForPreTraining(tiny.mint_config(alm_negative_sampling="hardest")).eval()
    return model


def batch(indices):
    audio = clips(LENGTHS)
    return tiny.processor()(audio=[audio[i] for i in indices], text=[CAPTIONS[i] for i in indices],
                            sampling_rate=16000, return_llm_inputs=False)


def group_ids(groups, indices):
    return {} if groups is None else {"group_ids": torch.tensor([groups[i] for i in indices])}


def worker(rank, world_size, init_file, out_dir, groups=None):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        model = build()
        ddp = DistributedDataParallel(model)
        rows = [2 * rank, 2 * rank + 1]
        out = ddp(**batch(rows), **group_ids(groups, rows))
        out.loss.backward()  # DDP averages the gradients over the processes
        losses = torch.stack([out.loss_alc, out.loss_alm, out.loss_atg]).detach()
        dist.all_reduce(losses)
        if rank == 0:
            grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
            torch.save({"losses": losses / world_size, "grads": grads,
                        "negatives": out.alm_negative_text_indices}, os.path.join(out_dir, "ddp.pt"))
    finally:
        dist.destroy_process_group()


def launched_worker(out_dir):
    """One process of a `torchrun` or `accelerate launch` run: DDP set up by accelerate, as the Trainer sets it up."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    model = build()
    ddp = accelerator.prepare(model)  # kept alive through backward, which its hooks all-reduce
    out = ddp(**batch([2 * rank, 2 * rank + 1]))
    accelerator.backward(out.loss)
    losses = accelerator.reduce(torch.stack([out.loss_alc, out.loss_alm, out.loss_atg]).detach(), reduction="mean")
    if accelerator.is_main_process:
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        torch.save({"losses": losses, "grads": grads, "world_size": accelerator.num_processes},
                   os.path.join(out_dir, "ddp.pt"))
    accelerator.end_training()


def assert_matches_one_process(ddp, groups=None):
    model = build()
    out = model(**batch([0, 1, 2, 3]), **group_ids(groups, [0, 1, 2, 3]))
    out.loss.backward()
    expected = torch.stack([out.loss_alc, out.loss_alm, out.loss_atg]).detach()
    assert torch.allclose(ddp["losses"], expected, atol=1e-5), (ddp["losses"], expected)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(grads) == set(ddp["grads"])
    for name, grad in grads.items():
        difference = (ddp["grads"][name] - grad).abs().max().item()
        assert difference <= 1e-5 + 1e-4 * grad.abs().max().item(), (name, difference)


def test_two_processes_match_one_process_over_the_concatenated_batch(tmp_path):
    counts = tiny.qformer_tokenizer()(CAPTIONS)["input_ids"]
    assert len({len(c) for c in counts}) == 1
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    assert_matches_one_process(torch.load(tmp_path / "ddp.pt"))


def test_groups_are_gathered_across_processes(tmp_path):
    """Rows 0 and 2 share a group but sit in different processes: each process still sees the other as a positive."""
    groups = [0, 1, 0, 2]
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path), groups), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt")
    assert 2 not in ddp["negatives"][:1].tolist()  # row 0 (process 0) never takes row 2 (process 1) as a negative
    assert_matches_one_process(ddp, groups)


def test_the_negatives_group_is_released_with_the_default_group(tmp_path):
    """
    Freed when the run destroys its default group, not at interpreter exit, where freeing a shut-down gloo group
    aborted launched processes after a successful run.
    """
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        group = distributed_mint._negatives_group()
        assert distributed_mint._negatives_group() is group  # one per default group, not one per call
        assert len(distributed_mint._NEGATIVES_GROUPS) == 1
    finally:
        dist.destroy_process_group()
    del group
    gc.collect()
    assert len(distributed_mint._NEGATIVES_GROUPS) == 0


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def launch(command, tmp_path, extra_env=None):
    """Runs `command` in `tmp_path`; the launched processes find the `tests` package under the repository root."""
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def launcher(name: str) -> list[str]:
    """The command that starts 2 processes with `torchrun` or `accelerate launch`."""
    if name == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    # The shipped one-node config; on a machine without GPUs, 2 processes that join a gloo group.
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            os.path.join(ROOT, "launch", "accelerate_1node_8gpu.yaml"), "--num_processes", "2", "--main_process_port",
            free_port()]


@pytest.mark.parametrize("name", ["torchrun", "accelerate"])
def test_launched_processes_match_one_process(name, tmp_path):
    launch(launcher(name) + [os.path.abspath(__file__), str(tmp_path)], tmp_path)
    ddp = torch.load(tmp_path / "ddp.pt")
    assert ddp["world_size"] == 2
    assert_matches_one_process(ddp)


def test_streamed_recipe_trains_in_two_processes_with_the_global_batch(tmp_path):
    """`launch/torchrun_1node_8gpu.sh` with 2 CPU processes: per process 2 of the global batch of 4, from a stream."""
    paths = []
    for i, clip in enumerate(clips((16000, 12000, 9000, 14000) * 2)):
        paths.append(str(tmp_path / f"clip{i}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    Dataset.from_dict({"audio": paths, "caption": CAPTIONS * 2}).cast_column(
        "audio", Audio(decode=False)).save_to_disk(str(tmp_path / "pairs"))
    torch.manual_seed(0)
    build().save_pretrained(tmp_path / "mint")
    tiny.processor().save_pretrained(tmp_path / "mint")
    recipe = {"stage": 1, "model": str(tmp_path / "mint"), "output_dir": str(tmp_path / "out"), "batch_size": 4,
              "max_steps": 2, "warmup_steps": 0, "save_steps": 2, "logging_steps": 1, "dataloader_num_workers": 0,
              "datasets": [{"path": str(tmp_path / "pairs"), "streaming": True}]}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    result = launch([os.path.join(ROOT, "launch", "torchrun_1node_8gpu.sh"), "recipe.json"], tmp_path,
                    {"NPROC_PER_NODE": "2", "TRANSFORMERS_VERBOSITY": "info"})
    assert "Total train batch size (w. parallel, distributed & accumulation) = 4" in result.stderr
    assert "Instantaneous batch size per device = 2" in result.stderr
    state = json.loads((tmp_path / "out" / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and len([log for log in state["log_history"] if "loss" in log]) == 2


if __name__ == "__main__":
    launched_worker(sys.argv[1])
