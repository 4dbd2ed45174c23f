"""A small reusable training loop: seeded, resumable, DDP-aware, with periodic
evaluation under a protocol and PNG previews.

``train(TrainConfig(...))`` trains a registered model (:data:`svrecon.models.MODELS`)
on any dataset that yields the item schema of ``docs/data.md`` (by default the
procedural dataset at ``data_root``). Under ``torchrun`` (``WORLD_SIZE > 1``) it runs
DistributedDataParallel: gloo on CPU, NCCL on CUDA; each rank takes an equal slice of
every global batch, so the gradients are those of one process on the whole batch.

The loop never steps or saves on a non-finite loss: it raises
:class:`NonFiniteLossError` naming the term and the step, and the checkpoint on disk
stays the last finite one.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ..models import ReconstructionModel, build_model, get_model
from .checkpoints import load_checkpoint, load_weights, save_checkpoint, to_builtin

__all__ = ["NonFiniteLossError", "TrainConfig", "train"]


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite; nothing was stepped or saved for that step."""


@dataclass
class TrainConfig:
    """Everything a run depends on; saved in every checkpoint.

    Attributes:
        model: a registered model's name; ``model_kwargs`` its constructor arguments
            (``None``: the model's default preset).
        data_root: a procedural dataset (see :func:`svrecon.data.generate_procedural_dataset`),
            read when :func:`train` is given no dataset.
        out_dir: ``checkpoint.pt`` (every ``checkpoint_every`` steps and at the end),
            ``log.jsonl``, ``eval.jsonl``, previews.
        iterations, batch_size (global, over all ranks), lr, betas, seed.
        pretrain_iterations: steps of the model's pretraining stage before training
            (SDF-SRN's sphere fit), at learning rate ``pretrain_lr`` (default: ``lr``).
        eval_every, eval_items, protocol: periodic evaluation on the test set
            (``protocol=None``: the model's own).
    """

    model: str = "sdf_srn"
    model_kwargs: dict | None = None
    data_root: str = ".cache/procedural"
    out_dir: str = "runs/default"
    iterations: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 0
    pretrain_iterations: int = 0
    pretrain_lr: float | None = None
    checkpoint_every: int = 500
    eval_every: int = 0
    eval_items: int = 12
    protocol: str | None = "procedural"
    log_every: int = 10

    def __post_init__(self) -> None:
        get_model(self.model)  # an unknown name fails here, listing the known ones
        for name in ("iterations", "pretrain_iterations", "eval_every", "eval_items"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")


# Settings that change the trajectory: resuming with another value is refused.
_RESUME_KEYS = ("batch_size", "lr", "betas", "seed", "pretrain_iterations", "pretrain_lr")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


class _LossModule(nn.Module):
    """DDP wraps this, so that one forward returns the losses whose backward it syncs."""

    def __init__(self, model: ReconstructionModel):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.losses(batch)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


def _batches(dataset, config: TrainConfig, start: int, rank: int, world: int):
    """Global batches (this rank's slice) from step ``start`` on, in a seeded order that
    depends only on the step, so resuming picks up the same samples."""
    per_epoch = len(dataset) // config.batch_size
    if per_epoch == 0:
        raise ValueError(
            f"batch_size: {config.batch_size} exceeds the dataset's {len(dataset)} items"
        )
    step = start
    while True:
        epoch, k = divmod(step, per_epoch)
        order = _epoch_order(len(dataset), config.seed, epoch)
        idx = order[k * config.batch_size : (k + 1) * config.batch_size]
        mine = idx.tensor_split(world)[rank]
        yield torch.utils.data.default_collate([dataset[int(i)] for i in mine])
        step += 1


def _move(batch: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _check_finite(losses: dict[str, torch.Tensor], where: str) -> None:
    bad = [k for k, v in losses.items() if not torch.isfinite(v.detach()).all()]
    if bad:
        terms = [k for k in bad if k != "total"] or bad
        raise NonFiniteLossError(
            f"loss: {', '.join(terms)} became non-finite at {where}; nothing was stepped "
            "or saved for it (the checkpoint on disk is the last finite one)"
        )


def _sync_gradients(model: nn.Module, world: int) -> None:
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def _check_resume(state: dict, config: TrainConfig, model: ReconstructionModel, path) -> None:
    saved = state.get("train_config")
    if state["model"] != config.model:
        raise ValueError(f"resume: {path} holds a {state['model']} run, not {config.model}")
    if to_builtin(model.config) != state["model_config"]:
        raise ValueError(
            f"resume: {path} was saved with model settings {state['model_config']}, "
            f"this run has {to_builtin(model.config)}"
        )
    if saved is not None:
        now = to_builtin(asdict(config))
        differ = [
            f"{k} (saved {saved.get(k)!r}, now {now[k]!r})"
            for k in _RESUME_KEYS
            if k in saved and saved[k] != now[k]
        ]
        if differ:
            raise ValueError(f"resume: {path} was another run; differs in {', '.join(differ)}")
    if "optimizers" not in state:
        raise ValueError(f"resume: {path} has no optimizer state (a weights-only file)")


def train(
    config: TrainConfig,
    resume: str | Path | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    train_set=None,
    test_set=None,
) -> list[dict]:
    """Run ``config`` (resuming from a checkpoint if given) and return the logged
    losses, one dict per step (this rank's view; under DDP the gradients are averaged).

    ``train_set`` / ``test_set``: any datasets of schema items (default: the
    procedural dataset at ``config.data_root``, splits ``train`` and ``test``).
    """
    from ..viz import save_preview
    from .evaluation import evaluate_dataset

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if config.batch_size % world:
        raise ValueError(f"batch_size: {config.batch_size} is not divisible by {world} ranks")

    _seed_everything(config.seed)
    spec = get_model(config.model)
    model = build_model(config.model, config.model_kwargs).to(device)
    if config.pretrain_iterations and not model.has_pretraining():
        raise ValueError(f"pretrain_iterations: {config.model} has no pretraining stage")
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=tuple(config.betas))
    out_dir = Path(config.out_dir)
    run_config = asdict(config)
    step = 0
    if resume is not None:
        state = load_checkpoint(resume)
        _check_resume(state, config, model, resume)
        load_weights(model, state, resume)
        optimizer.load_state_dict(state["optimizers"]["model"])
        torch.set_rng_state(state["torch_rng"])
        step = state["step"]

    if train_set is None:
        from ..data import ProceduralDataset

        train_set = ProceduralDataset(config.data_root, "train")
    wrapped: nn.Module = _LossModule(model)
    if world > 1:
        wrapped = nn.parallel.DistributedDataParallel(wrapped)
    if step == 0 and config.pretrain_iterations:
        pretrain_lr = config.lr if config.pretrain_lr is None else config.pretrain_lr
        pre_opt = torch.optim.Adam(model.parameters(), lr=pretrain_lr, betas=tuple(config.betas))
        batches = _batches(train_set, config, 0, rank, world)
        for k in tqdm(range(config.pretrain_iterations), desc="pretrain", disable=not progress):
            loss = model.pretraining_loss(_move(next(batches), device))
            _check_finite({"pretraining": loss}, f"pretraining step {k + 1}")
            pre_opt.zero_grad()
            loss.backward()
            if world > 1:
                _sync_gradients(model, world)
            pre_opt.step()

    history = []
    log_path = out_dir / "log.jsonl"
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        if log_path.exists():  # drop steps logged after the checkpoint we resume from
            kept = [line for line in log_path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= step]  # fmt: skip
            log_path.write_text("".join(line + "\n" for line in kept))
    batches = _batches(train_set, config, step, rank, world)
    bar = tqdm(total=config.iterations, initial=step, desc=config.model, disable=not progress)
    model.train()
    while step < config.iterations:
        batch = _move(next(batches), device)
        losses = wrapped(batch)
        _check_finite(losses, f"step {step + 1}")
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        step += 1
        record = {"step": step, **{k: float(v.detach()) for k, v in losses.items()}}
        history.append(record)
        bar.update(1)
        if rank != 0:
            continue
        if step % config.log_every == 0 or step == config.iterations:
            bar.set_postfix(total=f"{record['total']:.4f}")
            with log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        if step % config.checkpoint_every == 0 or step == config.iterations:
            save_checkpoint(out_dir / "checkpoint.pt", model, run_config, {"model": optimizer},
                            step)  # fmt: skip
        if config.eval_every and (step % config.eval_every == 0 or step == config.iterations):
            if test_set is None:
                from ..data import ProceduralDataset

                test_set = ProceduralDataset(config.data_root, "test")
            report = evaluate_dataset(
                test_set, config.protocol or spec.protocol, model=model,
                max_items=config.eval_items,
            )  # fmt: skip
            with (out_dir / "eval.jsonl").open("a") as f:
                f.write(json.dumps({"step": step, **report.summary}) + "\n")
            save_preview(model, test_set, out_dir / f"preview_{step:06d}.png")
    bar.close()
    return history
