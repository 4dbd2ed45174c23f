"""A small reusable training loop: seeded, resumable, DDP-aware, with periodic
evaluation under a protocol and PNG previews.

``train(TrainConfig(...))`` trains a registered model (:data:`svrecon.models.MODELS`)
on any dataset that yields the item schema of ``docs/data.md`` (by default the
procedural dataset at ``data_root``). Under ``torchrun`` (``WORLD_SIZE > 1``) it runs
DistributedDataParallel: gloo on CPU, NCCL on CUDA; each rank takes an equal slice of
every global batch, so the gradients are those of one process on the whole batch.

A model with a discriminator (:meth:`~svrecon.models.ReconstructionModel.optimizer_groups`
returns a ``"discriminator"`` group) trains by alternating steps, each with its own
Adam: a generator step on :meth:`~svrecon.models.ReconstructionModel.losses` with the
discriminator frozen, then a discriminator step on
:meth:`~svrecon.models.ReconstructionModel.discriminator_losses`.

The loop never steps or saves on a non-finite loss or gradient: it raises
:class:`NonFiniteLossError` naming the term (or the parameters) and the step, and the
checkpoint on disk stays the last finite one.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ..models import ReconstructionModel, build_model, get_model
from .checkpoints import load_checkpoint, load_weights, save_checkpoint, to_builtin

__all__ = ["NonFiniteLossError", "TrainConfig", "train"]


class NonFiniteLossError(RuntimeError):
    """A loss term or a gradient became NaN or infinite; nothing was stepped or saved
    for that step."""


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
        iterations, batch_size (global, over all ranks), lr, seed.
        betas: Adam's betas for every optimizer; ``None``: the model's own where its
            paper fixes them (:meth:`~svrecon.models.ReconstructionModel.optimizer_groups`,
            e.g. Cat3D's ``(0, 0.9)``), else Adam's ``(0.9, 0.999)``.
        pretrain_iterations: steps of the model's pretraining stage before training
            (SDF-SRN's sphere fit), at learning rate ``pretrain_lr`` (default: ``lr``).
        eval_every, eval_items, protocol: periodic evaluation on the test set
            (``protocol=None``: the model's own).
        stage, stage_options: for a model trained in stages
            (:attr:`~svrecon.models.ReconstructionModel.stages`, e.g. MSU's), the one
            this run trains and the options of its dataset
            (:meth:`~svrecon.models.ReconstructionModel.stage_dataset`).
        init_from: a checkpoint of the same model and settings (the previous stage's)
            whose weights a new run starts from; its optimizer state is not read. A
            resumed run reads its own checkpoint instead.
    """

    model: str = "sdf_srn"
    model_kwargs: dict | None = None
    data_root: str = ".cache/procedural"
    out_dir: str = "runs/default"
    iterations: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] | None = None
    seed: int = 0
    pretrain_iterations: int = 0
    pretrain_lr: float | None = None
    checkpoint_every: int = 500
    eval_every: int = 0
    eval_items: int = 12
    protocol: str | None = "procedural"
    log_every: int = 10
    stage: str | None = None
    stage_options: dict | None = None
    init_from: str | None = None

    def __post_init__(self) -> None:
        spec = get_model(self.model)  # an unknown name fails here, listing the known ones
        spec.cls.check_stage(self.stage)
        if self.stage_options is not None and not isinstance(self.stage_options, dict):
            raise ValueError(
                f"stage_options: expected a dict, got {type(self.stage_options).__name__}"
            )
        for name in ("iterations", "pretrain_iterations", "eval_every", "eval_items"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")


# Settings that change the trajectory: resuming with another value is refused.
_RESUME_KEYS = (
    "batch_size",
    "lr",
    "betas",
    "seed",
    "pretrain_iterations",
    "pretrain_lr",
    "stage",
    "stage_options",
)


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
    _sync_gradients_of(model.parameters(), world)


def _sync_gradients_of(params, world: int) -> None:
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def _check_same_model(state: dict, config: TrainConfig, model, path, what: str) -> None:
    if state["model"] != config.model:
        raise ValueError(f"{what}: {path} holds a {state['model']} run, not {config.model}")
    if to_builtin(model.config) != state["model_config"]:
        raise ValueError(
            f"{what}: {path} was saved with model settings {state['model_config']}, "
            f"this run has {to_builtin(model.config)}"
        )


def _init_from(model: ReconstructionModel, config: TrainConfig) -> None:
    """Start from another run's weights (a previous stage's): the same model whose
    weights load as they are. Settings that change no weight may differ (a stage-3
    ablation's loss weights, the search of a linear-search run sharing stage 1); they
    are named, since buffers (a camera prior) come from the checkpoint."""
    path = config.init_from
    state = load_checkpoint(path)
    if state["model"] != config.model:
        raise ValueError(f"init_from: {path} holds a {state['model']} run, not {config.model}")
    try:
        load_weights(model, state, path)
    except ValueError as exc:
        raise ValueError(f"init_from: {exc}") from None
    mine, saved = to_builtin(model.config), state["model_config"]
    changed = sorted(k for k in set(mine) | set(saved) if mine.get(k) != saved.get(k))
    if changed:
        print(f"init_from: {path}; settings that differ from its run: {', '.join(changed)}")


def _check_resume(state: dict, config: TrainConfig, model: ReconstructionModel, path) -> None:
    saved = state.get("train_config")
    _check_same_model(state, config, model, path, "resume")
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


def _resolve_betas(config: TrainConfig, groups: dict[str, dict]) -> TrainConfig:
    """``config`` with ``betas`` filled in from the model's groups when it is ``None``
    and they agree (what the run is saved and resumed with)."""
    if config.betas is not None:
        return replace(config, betas=tuple(config.betas))
    chosen = {tuple(g.get("betas", (0.9, 0.999))) for g in groups.values()}
    return replace(config, betas=chosen.pop()) if len(chosen) == 1 else config


def _build_optimizers(groups: dict[str, dict], config: TrainConfig):
    """One Adam per group, and each group's ``(clip_norm, clip_after)``."""
    if "model" not in groups:
        raise ValueError(f"optimizer_groups: expected a 'model' group, got {sorted(groups)}")
    optimizers, clipping = {}, {}
    for name, group in groups.items():
        group = dict(group)
        clip = group.pop("clip_norm", None), group.pop("clip_after", 0)
        if clip[0] is not None:
            clipping[name] = clip
        kwargs = {"lr": config.lr, **group}
        if config.betas is not None:
            kwargs["betas"] = tuple(config.betas)
        optimizers[name] = torch.optim.Adam(**kwargs)
    return optimizers, clipping


def _check_gradients(params, model: nn.Module | None, where: str) -> None:
    """Refuse non-finite gradients (one host synchronisation for all of them), naming
    the parameters: a finite loss can still have them (``sqrt`` at 0, a degenerate
    eigenvector), and one step would poison every weight."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
        return
    names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    bad = [names.get(id(p), f"parameter {i}") for i, p in enumerate(params)
           if p.grad is not None and not torch.isfinite(p.grad).all()]  # fmt: skip
    raise NonFiniteLossError(
        f"gradient: {', '.join(bad[:3])}{' and others' if len(bad) > 3 else ''} became "
        f"non-finite at {where} with a finite loss; nothing was stepped or saved for it "
        "(the checkpoint on disk is the last finite one)"
    )


def _terms_with_bad_gradients(wrapped, batch, params) -> str:
    """Which loss terms have non-finite gradients: the batch's losses computed again
    (nothing was stepped, so the model is the one that failed) and each term
    differentiated alone. Runs only after a failure, never on the hot path."""
    params = [p for p in params if p.requires_grad]
    losses = wrapped(batch)
    bad = []
    for name, term in losses.items():
        if name == "total" or not term.requires_grad:
            continue
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        if any(g is not None and not bool(torch.isfinite(g).all()) for g in grads):
            bad.append(name)
    if not bad:
        return "no single term's gradient is non-finite when the step is computed again"
    return f"the terms with non-finite gradients: {', '.join(bad)}"


def _step(name, loss, optimizers, clipping, step: int, world: int, model=None) -> None:
    """Backward ``loss`` and step optimizer ``name`` (its gradients averaged over the
    ranks by hand when there are several; clipped as its group says); non-finite
    gradients raise :class:`NonFiniteLossError` before anything is stepped."""
    optimizer = optimizers[name]
    optimizer.zero_grad()
    loss.backward()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if world > 1 and "discriminator" in optimizers:
        _sync_gradients_of(params, world)
    _check_gradients(params, model, f"step {step + 1}" + ("" if name == "model" else f" ({name})"))
    if name in clipping and step > clipping[name][1]:
        torch.nn.utils.clip_grad_norm_(params, clipping[name][0])
    optimizer.step()


def generator_step(model, wrapped, optimizers, clipping, batch, step: int, world: int = 1):
    """One step of the ``"model"`` optimizer on ``model.losses(batch)``; the
    discriminator's parameters (if any) are frozen meanwhile. Returns the losses;
    nothing is stepped when one is non-finite (:class:`NonFiniteLossError`)."""
    frozen = _discriminator_params(optimizers)
    for p in frozen:
        p.requires_grad_(False)
    try:
        losses = wrapped(batch)
        _check_finite(losses, f"step {step + 1}")
        try:
            _step("model", losses["total"], optimizers, clipping, step, world, model)
        except NonFiniteLossError as error:
            if world > 1:  # a second forward on one rank would wait for the others
                raise
            params = [p for g in optimizers["model"].param_groups for p in g["params"]]
            raise NonFiniteLossError(
                f"{error}; {_terms_with_bad_gradients(wrapped, batch, params)}"
            ) from None
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return losses


def discriminator_step(model, optimizers, clipping, batch, step: int, world: int = 1):
    """One step of the ``"discriminator"`` optimizer on
    ``model.discriminator_losses(batch)``; the generator's parameters are frozen
    meanwhile. Returns the losses (checked finite before stepping)."""
    frozen = [p for g in optimizers["model"].param_groups for p in g["params"]]
    saved = [p.requires_grad for p in frozen]
    for p in frozen:
        p.requires_grad_(False)
    try:
        losses = model.discriminator_losses(batch)
        _check_finite(losses, f"step {step + 1} (discriminator)")
        _step("discriminator", losses["total"], optimizers, clipping, step, world, model)
    finally:
        for p, flag in zip(frozen, saved, strict=True):
            p.requires_grad_(flag)
    return losses


def _discriminator_params(optimizers) -> list[torch.Tensor]:
    if "discriminator" not in optimizers:
        return []
    return [p for g in optimizers["discriminator"].param_groups for p in g["params"]]


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
    model.set_stage(config.stage)
    if config.pretrain_iterations and not model.has_pretraining():
        raise ValueError(f"pretrain_iterations: {config.model} has no pretraining stage")
    if config.eval_every and model.estimates_viewpoint:
        from ..metrics import PROTOCOLS

        if not PROTOCOLS[config.protocol or spec.protocol].view_centric:
            raise ValueError(
                f"protocol: {config.model} estimates its viewpoint; evaluate it with a "
                f"view-centric protocol (procedural_view_centric), not {config.protocol!r}"
            )
    groups = model.optimizer_groups()
    config = _resolve_betas(config, groups)
    optimizers, clipping = _build_optimizers(groups, config)
    out_dir = Path(config.out_dir)
    run_config = asdict(config)
    step = 0
    if resume is not None:
        state = load_checkpoint(resume)
        _check_resume(state, config, model, resume)
        load_weights(model, state, resume)
        missing = sorted(set(optimizers) - set(state["optimizers"]))
        if missing:
            raise ValueError(f"resume: {resume} has no state for the optimizers {missing}")
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        torch.set_rng_state(state["torch_rng"])
        step = state["step"]
    elif config.init_from is not None:
        _init_from(model, config)

    if train_set is None:
        from ..data import ProceduralDataset

        train_set = ProceduralDataset(config.data_root, "train")
    train_set = model.stage_dataset(train_set, **(config.stage_options or {}))
    adversarial = "discriminator" in optimizers
    wrapped: nn.Module = _LossModule(model)
    if world > 1 and not adversarial:  # the alternating steps average gradients by hand
        wrapped = nn.parallel.DistributedDataParallel(wrapped)
    if step == 0 and config.pretrain_iterations:
        pretrain_lr = config.lr if config.pretrain_lr is None else config.pretrain_lr
        pre_opt = torch.optim.Adam(
            model.parameters(), lr=pretrain_lr, betas=tuple(config.betas or (0.9, 0.999))
        )
        batches = _batches(train_set, config, 0, rank, world)
        for k in tqdm(range(config.pretrain_iterations), desc="pretrain", disable=not progress):
            loss = model.pretraining_loss(_move(next(batches), device))
            _check_finite({"pretraining": loss}, f"pretraining step {k + 1}")
            pre_opt.zero_grad()
            loss.backward()
            if world > 1:
                _sync_gradients(model, world)
            _check_gradients(list(model.parameters()), model, f"pretraining step {k + 1}")
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
        losses = generator_step(model, wrapped, optimizers, clipping, batch, step, world)
        if adversarial:
            d_losses = discriminator_step(model, optimizers, clipping, batch, step, world)
            losses.update({f"discriminator/{k}": v for k, v in d_losses.items()})
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
            save_checkpoint(out_dir / "checkpoint.pt", model, run_config, optimizers, step)
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
