"""Semantic neighbours (ShapeClipper Sec. 3.3): embed a dataset once, find each image's
top-k neighbours by cosine similarity, store them in the authors' CSV format, and
pick one neighbour per step with probability ``(1 - IoU(mask_q, mask_nn))^4``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..checks import check_shape
from ..data.schema import evaluation_indices

__all__ = [
    "NEIGHBOUR_KEYS",
    "Neighbours",
    "WithNeighbours",
    "embed_dataset",
    "neighbour_weights",
    "pick_neighbours",
    "read_neighbour_csv",
    "top_k_neighbours",
    "write_neighbour_csv",
]


@dataclass(frozen=True)
class Neighbours:
    """``indices`` ``[N, k]`` (long) and cosine ``scores`` ``[N, k]`` of each item's
    nearest items, most similar first, the item itself excluded."""

    indices: torch.Tensor
    scores: torch.Tensor


def embed_dataset(
    embedder,
    dataset,
    *,
    batch_size: int = 64,
    cache: str | Path | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Embeddings ``[N, D]`` (float32, CPU) of every item's ``image`` in ``dataset``
    (items of the schema in ``docs/data.md``), ``batch_size`` images at a time.

    ``cache``: a file where the result is kept. It is reused when it was written for
    the same embedder (``embedder.name``, if the embedder has one) and the same number
    of items, and rewritten otherwise.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    key = {"embedder": getattr(embedder, "name", type(embedder).__name__), "items": len(dataset)}
    if cache is not None and Path(cache).is_file():
        saved = torch.load(cache, map_location="cpu", weights_only=True)
        if isinstance(saved, dict) and saved.get("key") == key:
            return saved["embeddings"]
    chunks = []
    for start in tqdm(range(0, len(dataset), batch_size), desc="embedding", disable=not progress):
        stop = min(start + batch_size, len(dataset))
        images = torch.stack([dataset[i]["image"] for i in range(start, stop)])
        out = embedder(images)
        check_shape("embedder(images)", out, (len(images), "D"))
        if not torch.isfinite(out).all():
            raise ValueError(f"embedder(images): non-finite embeddings for items from {start}")
        chunks.append(out.detach().float().cpu())
    embeddings = torch.cat(chunks) if chunks else torch.zeros(0, 0)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": key, "embeddings": embeddings}, cache)
    return embeddings


def top_k_neighbours(embeddings: torch.Tensor, k: int = 5, chunk_size: int = 1024) -> Neighbours:
    """Each row's ``k`` most cosine-similar other rows of ``embeddings`` ``[N, D]``.

    Queries are processed ``chunk_size`` at a time against all ``N`` rows, so memory is
    ``chunk_size x N``, never ``N x N``. Ties are broken toward the lower index. The
    query itself is excluded even when another row is identical to it. Scores are in
    the embeddings' dtype (float32 for integer input).
    """
    dims = check_shape("embeddings", embeddings, ("N", "D"))
    n = dims["N"]
    if not 1 <= k < n:
        raise ValueError(f"k: expected 1 <= k < {n} (the number of other items), got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected >= 1, got {chunk_size}")
    unit = F.normalize(embeddings if embeddings.is_floating_point() else embeddings.float(), dim=-1)
    indices, scores = [], []
    for start in range(0, n, chunk_size):
        query = unit[start : start + chunk_size]
        sim = query @ unit.T  # [c, N]
        rows = torch.arange(len(query), device=sim.device)
        sim[rows, rows + start] = -float("inf")  # never the query itself
        # stable descending sort: equal scores keep index order
        order = torch.sort(sim, dim=1, descending=True, stable=True).indices[:, :k]
        indices.append(order)
        scores.append(sim.gather(1, order))
    return Neighbours(torch.cat(indices), torch.cat(scores))


def write_neighbour_csv(path: str | Path, names: Sequence[str], neighbours: Neighbours) -> Path:
    """The ShapeClipper code's format (``CLIP_anno.py``): header ``Query, Top_1 ..
    Top_k, Top_1_score .. Top_k_score``; one row per item, its name, its neighbours'
    names and the scores with 4 decimals; rows sorted by query name."""
    n, k = neighbours.indices.shape
    if len(names) != n:
        raise ValueError(f"names: expected {n} names, got {len(names)}")
    header = ["Query", *(f"Top_{i}" for i in range(1, k + 1)),
              *(f"Top_{i}_score" for i in range(1, k + 1))]  # fmt: skip
    rows = []
    for q in range(n):
        rows.append([names[q], *(names[int(j)] for j in neighbours.indices[q]),
                     *(f"{float(s):.4f}" for s in neighbours.scores[q])])  # fmt: skip
    rows.sort(key=lambda row: row[0])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_neighbour_csv(path: str | Path, names: Sequence[str]) -> Neighbours:
    """Read a neighbour CSV (:func:`write_neighbour_csv`, or the authors' files) back as
    indices into ``names`` (the dataset's item names, in dataset order). Every item
    must have a row, and every name in the file must be in ``names``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no neighbour file {path}")
    with path.open(newline="") as f:
        table = list(csv.reader(f))
    if not table or not table[0] or table[0][0] != "Query":
        raise ValueError(f"path: {path} is not a neighbour CSV (no 'Query' header)")
    header = table[0]
    k = sum(1 for h in header if h.startswith("Top_") and not h.endswith("_score"))
    scored = sum(1 for h in header if h.endswith("_score")) == k
    where = {name: i for i, name in enumerate(names)}
    indices = torch.full((len(names), k), -1, dtype=torch.long)
    scores = torch.full((len(names), k), float("nan"))
    for line, row in enumerate(table[1:], start=2):
        if len(row) < 1 + k:
            raise ValueError(f"path: {path} line {line} has {len(row)} fields, expected {1 + k}")
        unknown = [x for x in row[: 1 + k] if x not in where]
        if unknown:
            raise ValueError(f"path: {path} line {line} names items not in names: {unknown}")
        q = where[row[0]]
        indices[q] = torch.tensor([where[x] for x in row[1 : 1 + k]])
        if scored:
            scores[q] = torch.tensor([float(x) for x in row[1 + k : 1 + 2 * k]])
    missing = (indices[:, 0] < 0).nonzero()[:, 0].tolist()
    if missing:
        raise ValueError(
            f"path: {path} has no row for {len(missing)} items, e.g. {names[missing[0]]!r}"
        )
    return Neighbours(indices, scores)


def neighbour_weights(
    query_masks: torch.Tensor, neighbour_masks: torch.Tensor, power: float = 4.0
) -> torch.Tensor:
    """ShapeClipper's picking weights ``(1 - IoU(mask_q, mask_nn))^power``, normalised
    per query: neighbours whose silhouettes differ from the query's (other viewpoints)
    are preferred. Shapes: ``query_masks`` ``[B, H, W]``, ``neighbour_masks``
    ``[B, K, H, W]`` -> ``[B, K]``. Where every weight of a query is 0 (all masks
    equal to the query's), the weights are uniform."""
    dims = check_shape("query_masks", query_masks, ("B", "H", "W"))
    check_shape("neighbour_masks", neighbour_masks, (dims["B"], "K", dims["H"], dims["W"]))
    q = query_masks.bool()[:, None].flatten(2)
    m = neighbour_masks.bool().flatten(2)
    inter = (q & m).sum(-1).float()
    union = (q | m).sum(-1).float()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    weights = (1 - iou).pow(power)
    total = weights.sum(-1, keepdim=True)
    uniform = torch.full_like(weights, 1 / weights.shape[-1])
    return torch.where(total > 0, weights / total.clamp_min(1e-30), uniform)


def pick_neighbours(
    query_masks: torch.Tensor,
    neighbour_masks: torch.Tensor,
    power: float = 4.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One neighbour per query ``[B]`` (indices into ``K``), drawn with the
    :func:`neighbour_weights` probabilities."""
    weights = neighbour_weights(query_masks, neighbour_masks, power)
    return torch.multinomial(weights, 1, generator=generator)[:, 0]


#: The entries of an item that :class:`WithNeighbours` copies from each neighbour, and
#: the keys it stores them under (``[K, ...]``).
NEIGHBOUR_KEYS = {"image": "neighbour_image", "mask": "neighbour_mask",
                  "normals_estimated": "neighbour_normals"}  # fmt: skip


class WithNeighbours(torch.utils.data.Dataset):
    """``dataset``'s items with their ``k`` semantic neighbours' images, masks and
    estimated normals stacked ``[k, ...]`` (``neighbour_image``, ``neighbour_mask``,
    ``neighbour_normals``, and their indices ``neighbour_index``), what ShapeClipper's
    semantic shape consistency reads. ``neighbours``: from :func:`top_k_neighbours` on
    the dataset's embeddings, or :func:`read_neighbour_csv`. Keys an item lacks are
    skipped. ``categories`` and ``evaluation_indices`` are the dataset's."""

    def __init__(self, dataset, neighbours: Neighbours, k: int | None = None) -> None:
        if len(neighbours.indices) != len(dataset):
            raise ValueError(
                f"neighbours: expected rows for the dataset's {len(dataset)} items, "
                f"got {len(neighbours.indices)}"
            )
        available = neighbours.indices.shape[1]
        self.k = available if k is None else k
        if not 1 <= self.k <= available:
            raise ValueError(f"k: expected 1..{available}, got {k}")
        self.dataset, self.neighbours = dataset, neighbours

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def categories(self):
        return self.dataset.categories

    def evaluation_indices(self):
        return evaluation_indices(self.dataset)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[i])
        picked = self.neighbours.indices[i, : self.k]
        others = [self.dataset[int(j)] for j in picked]
        for key, name in NEIGHBOUR_KEYS.items():
            if key in item:
                item[name] = torch.stack([o[key] for o in others])
        item["neighbour_index"] = picked.clone()
        return item
