"""A small reusable training loop: seeded, resumable, DDP-aware, with periodic
evaluation under a protocol preset and PNG previews.

``train(TrainConfig(...))`` trains one of :data:`MODELS` on a
:class:`~svrecon.data.ProceduralDataset` (or any dataset with the same keys). Under
``torchrun`` (``WORLD_SIZE > 1``) it runs DistributedDataParallel: gloo on CPU, NCCL
on CUDA; each rank takes an equal slice of every global batch, so the gradients are
those of one process on the whole batch.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from .models import DISN, SDFSRN, ReconstructionModel

__all__ = [
    "MODELS",
    "TrainConfig",
    "build_model",
    "export_weights",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "train",
]

MODELS = {"sdf_srn": SDFSRN, "disn": DISN}
CHECKPOINT_FORMAT = "svrecon-checkpoint-1"


@dataclass
class TrainConfig:
    """Everything a run depends on; saved in every checkpoint.

    Attributes:
        model: a key of :data:`MODELS`; ``model_kwargs`` its constructor arguments.
        data_root: a procedural dataset (see :func:`svrecon.data.generate_procedural_dataset`).
        out_dir: checkpoints (``checkpoint.pt``, and ``step_<n>.pt`` every
            ``checkpoint_every``), ``log.jsonl``, previews.
        iterations, batch_size (global, over all ranks), lr, betas, seed.
        sphere_iterations: sphere pretraining steps before training (SDF-SRN), at
            learning rate ``sphere_lr`` (default: ``lr``).
        eval_every, eval_items, protocol: periodic evaluation on the ``test`` split.
    """

    model: str = "sdf_srn"
    model_kwargs: dict = field(default_factory=dict)
    data_root: str = ".cache/procedural"
    out_dir: str = "runs/default"
    iterations: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 0
    sphere_iterations: int = 0
    sphere_lr: float | None = None
    checkpoint_every: int = 500
    eval_every: int = 0
    eval_items: int = 12
    protocol: str = "procedural"
    log_every: int = 10


def build_model(name: str, kwargs: dict | None = None) -> ReconstructionModel:
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](**(kwargs or {}))


def _to_builtin(value):
    """Tuples become lists so that a checkpoint is plain data (``weights_only`` loads)."""
    if isinstance(value, dict):
        return {k: _to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_builtin(v) for v in value]
    return value


def save_checkpoint(
    path: str | Path,
    model: ReconstructionModel,
    config: TrainConfig | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
) -> None:
    """Write a checkpoint that :func:`load_checkpoint` reads with ``weights_only=True``:
    model name and config, weights, and (for resuming) optimizer and RNG states."""
    name = next(k for k, v in MODELS.items() if isinstance(model, v))
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": name,
        "model_config": _to_builtin(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "step": step,
    }
    if config is not None:
        state["train_config"] = _to_builtin(asdict(config))
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
        state["torch_rng"] = torch.get_rng_state()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``; a missing, corrupted or
    foreign file raises ``ValueError`` saying which."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise ValueError(f"checkpoint: {path} is corrupted or not a torch file ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint: {path} is not a svrecon checkpoint ({CHECKPOINT_FORMAT})")
    return state


def export_weights(src: str | Path, dst: str | Path) -> Path:
    """Copy a training checkpoint without its optimizer and RNG state (what ships in
    ``svrecon/checkpoints``): model name, settings, weights, step and run config."""
    state = load_checkpoint(src)
    for key in ("optimizer", "torch_rng"):
        state.pop(key, None)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst)
    return dst


def load_model(path: str | Path) -> ReconstructionModel:
    """Rebuild the model saved in a checkpoint and load its weights (CPU)."""
    state = load_checkpoint(path)
    model = build_model(state["model"], state["model_config"])
    _load_weights(model, state, path)
    return model


def _load_weights(model: nn.Module, state: dict, path) -> None:
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint: {path} does not match the model: {exc}") from exc


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


def train(
    config: TrainConfig,
    resume: str | Path | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> list[dict]:
    """Run ``config`` (resuming from a checkpoint if given) and return the logged
    losses, one dict per step (this rank's view; under DDP the gradients are averaged).
    """
    from .data import ProceduralDataset
    from .evaluation import evaluate_model, save_preview

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
    model = build_model(config.model, config.model_kwargs).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=tuple(config.betas))
    out_dir = Path(config.out_dir)
    step = 0
    if resume is not None:
        state = load_checkpoint(resume)
        saved = state.get("train_config")
        if saved is not None and saved["model"] != config.model:
            raise ValueError(f"resume: {resume} holds a {saved['model']} run, not {config.model}")
        if _to_builtin(model.config) != state["model_config"]:
            raise ValueError(
                f"resume: {resume} was saved with model settings {state['model_config']}, "
                f"this run has {_to_builtin(model.config)}"
            )
        _load_weights(model, state, resume)
        if "optimizer" not in state:
            raise ValueError(f"resume: {resume} has no optimizer state (a weights-only file)")
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        step = state["step"]

    dataset = ProceduralDataset(config.data_root, "train")
    wrapped: nn.Module = _LossModule(model)
    if world > 1:
        wrapped = nn.parallel.DistributedDataParallel(wrapped)
    if step == 0 and config.sphere_iterations:
        sphere_lr = config.lr if config.sphere_lr is None else config.sphere_lr
        sphere_opt = torch.optim.Adam(model.parameters(), lr=sphere_lr, betas=tuple(config.betas))
        batches = _batches(dataset, config, 0, rank, world)
        for _ in tqdm(range(config.sphere_iterations), desc="sphere", disable=not progress):
            loss = model.sphere_loss(_move(next(batches), device))
            sphere_opt.zero_grad()
            loss.backward()
            if world > 1:
                for p in model.parameters():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= world
            sphere_opt.step()

    history = []
    log_path = out_dir / "log.jsonl"
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    batches = _batches(dataset, config, step, rank, world)
    bar = tqdm(total=config.iterations, initial=step, desc=config.model, disable=not progress)
    model.train()
    while step < config.iterations:
        batch = _move(next(batches), device)
        losses = wrapped(batch)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        step += 1
        record = {"step": step, **{k: float(v.detach()) for k, v in losses.items()}}
        history.append(record)
        bar.update(1)
        if rank == 0:
            if step % config.log_every == 0 or step == config.iterations:
                bar.set_postfix(total=f"{record['total']:.4f}")
                with log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            if step % config.checkpoint_every == 0 or step == config.iterations:
                save_checkpoint(out_dir / "checkpoint.pt", model, config, optimizer, step)
            if config.eval_every and (step % config.eval_every == 0 or step == config.iterations):
                test = ProceduralDataset(config.data_root, "test")
                metrics = evaluate_model(model, test, config.protocol, config.eval_items)
                with (out_dir / "eval.jsonl").open("a") as f:
                    f.write(json.dumps({"step": step, **metrics}) + "\n")
                save_preview(model, test, out_dir / f"preview_{step:06d}.png")
    bar.close()
    return history
