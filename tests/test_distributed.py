"""Two CPU processes (gloo, DDP) give the same stage-1 losses and gradients as one process over the whole batch."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import tiny
from modeling_mint import MintForPreTraining
from test_pretraining import clips


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


def worker(rank, world_size, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        model = build()
        ddp = DistributedDataParallel(model)
        out = ddp(**batch([2 * rank, 2 * rank + 1]))
        out.loss.backward()  # DDP averages the gradients over the processes
        losses = torch.stack([out.loss_alc, out.loss_alm, out.loss_atg]).detach()
        dist.all_reduce(losses)
        if rank == 0:
            grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
            torch.save({"losses": losses / world_size, "grads": grads}, os.path.join(out_dir, "ddp.pt"))
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process_over_the_concatenated_batch(tmp_path):
    counts = tiny.qformer_tokenizer()(CAPTIONS)["input_ids"]
    assert len({len(c) for c in counts}) == 1
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt")
    model = build()
    out = model(**batch([0, 1, 2, 3]))
    out.loss.backward()
    expected = torch.stack([out.loss_alc, out.loss_alm, out.loss_atg]).detach()
    assert torch.allclose(ddp["losses"], expected, atol=1e-5), (ddp["losses"], expected)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(grads) == set(ddp["grads"])
    for name, grad in grads.items():
        difference = (ddp["grads"][name] - grad).abs().max().item()
        assert difference <= 1e-5 + 1e-4 * grad.abs().max().item(), (name, difference)
