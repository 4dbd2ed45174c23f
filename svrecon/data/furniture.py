"""The real-shapes benchmark: the CC0 artist furniture collection
(``shared/data/cc0-furniture``: ``index.csv`` and ``meshes/<stem>/<stem>.obj``) as a
mesh collection with object classes, a fixed split and each file's up axis.

- **Classes** from the ``name`` column's head noun (the last word: "Table fan" is a
  fan, "Pool table" a table): chair (chairs, armchairs, stools, benches), sofa (sofas,
  couches), table (tables, desks), lamp (lamps, lanterns, lights), bed, cabinet
  (cabinets, cupboards, wardrobes, bookcases, shelves, lockers), other.
- **Split**: within each class, sorted by stem, every fifth piece (the 5th, 10th, ...)
  is a test shape; classes with fewer than five pieces have none in the test split,
  except that every class with at least two pieces gives its last one to the test
  split, so that each class is scored.
- **Up axis**: units, axes and origins vary per file; the up axis (y or z) is the one
  whose bounding-box extents best match the index's real-world ``width``, ``depth``
  and ``height`` (least squared log-ratio after a common scale).

``svrecon data --furniture DIR`` writes it (:func:`generate_mesh_dataset`).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

__all__ = ["FURNITURE_CLASSES", "furniture_class", "furniture_meshes", "infer_up_axis"]

FURNITURE_CLASSES = ("chair", "sofa", "table", "lamp", "bed", "cabinet", "other")
_HEADS = {
    "chair": "chair", "armchair": "chair", "stool": "chair", "bench": "chair",
    "sofa": "sofa", "couch": "sofa",
    "table": "table", "desk": "table",
    "lamp": "lamp", "lantern": "lamp", "light": "lamp",
    "bed": "bed",
    "cabinet": "cabinet", "cupboard": "cabinet", "wardrobe": "cabinet", "bookcase": "cabinet",
    "shelves": "cabinet", "locker": "cabinet",
}  # fmt: skip


def furniture_class(name: str) -> str:
    """The class of a piece from its ``name``: its last word's (module docstring)."""
    words = name.lower().replace("-", " ").split()
    return _HEADS.get(words[-1], "other") if words else "other"


def infer_up_axis(extents, width: float, depth: float, height: float) -> str:
    """``"y"`` or ``"z"``: the axis whose extent, with the other two as width and depth
    (either way round), best matches the real sizes up to a common scale."""
    e = np.log(np.maximum(np.asarray(extents, dtype=np.float64), 1e-9))
    best = (math.inf, "y")
    for up, (a, b) in (("y", (0, 2)), ("z", (0, 1))):
        axis = {"y": 1, "z": 2}[up]
        for horizontal in ((width, depth), (depth, width)):
            target = np.log(np.maximum([horizontal[0], horizontal[1], height], 1e-9))
            got = np.array([e[a], e[b], e[axis]])
            residual = got - target
            error = float(((residual - residual.mean()) ** 2).sum())
            best = min(best, (error, up))
    return best[1]


def furniture_meshes(root: str | Path) -> list[tuple[Path, str, str, str]]:
    """``(path, class, split, up)`` of every piece of the collection at ``root``."""
    import trimesh

    root = Path(root)
    index = root / "index.csv"
    if not index.is_file():
        raise FileNotFoundError(f"furniture: no index.csv in {root}")
    with index.open(newline="") as f:
        rows = list(csv.DictReader(f))
    needed = {"stem", "obj", "name", "width_cm", "depth_cm", "height_cm"}
    if not rows or not needed <= set(rows[0]):
        raise ValueError(f"furniture: {index} needs the columns {sorted(needed)}")
    by_class: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["stem"]):
        by_class.setdefault(furniture_class(row["name"]), []).append(row)
    out = []
    for category, members in sorted(by_class.items()):
        for k, row in enumerate(members):
            test = (k % 5 == 4) or (
                len(members) >= 2 and len(members) < 5 and k == len(members) - 1
            )
            path = root / row["obj"]
            try:
                sizes = [float(row[c]) for c in ("width_cm", "depth_cm", "height_cm")]
            except ValueError:
                raise ValueError(
                    f"furniture: {index} row {row['stem']}: sizes are not numbers"
                ) from None
            if not path.is_file():
                raise FileNotFoundError(f"furniture: {index} row {row['stem']}: no file {path}")
            loaded = trimesh.load(path, process=False)
            extents = loaded.extents if loaded.extents is not None else np.ones(3)
            out.append(
                (path, category, "test" if test else "train", infer_up_axis(extents, *sizes))
            )
    return out
