"""DISN's preprocessed ShapeNet (Xu et al. 2019): the SDF sample files and the per-view
image files, read into svrecon's item schema. Needs ``h5py`` (``pip install
svrecon[h5]``).

Layout (``Xharlie/DISN`` ``preprocessing/``)::

    {sdf_root}/{synset}/{model}/ori_sample.h5   pc_sdf_sample [N, 4] (x, y, z, sdf)
                                                 norm_params [4] (centre, scale)
    {image_root}/{synset}/{model}/{view:02d}.h5 img_arr [137, 137, 4] uint8 (BGRA,
                                                 OpenCV's order), trans_mat [4, 3],
                                                 K [3, 3], RT [3, 4]
    {list_root}/{synset}_{split}.lst            model ids
    {mesh_root}/{synset}/{model}/isosurf.obj    optional: the ground-truth
                                                 marching-cubes mesh DISN evaluates on

World frame: DISN's normalised SDF frame, the frame of the samples. Camera, converted
here once: ``trans_mat`` maps homogeneous points of that frame to homogeneous pixels
(``[p, 1] @ trans_mat``), and equals ``(K [A | b])^T`` with ``A = s R`` (the frame's
normalisation scale times a rotation). The pose is ``[R | b / s]``: the same pixels,
depth in the normalised frame's units. SDF values are DISN's (negative inside, as in
svrecon). Ground-truth surface points: samples of ``isosurf.obj`` when ``mesh_root``
is given, else the tenth of the SDF samples nearest the surface, resampled to
``num_points`` (an approximation, flagged by the item's ``surface_from_sdf``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .files import ModelViewDataset

__all__ = ["DISNDataset", "pose_from_trans_mat"]


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "DISNDataset reads HDF5 files and needs h5py: pip install 'svrecon[h5]'"
        ) from None
    return h5py


def pose_from_trans_mat(trans_mat: np.ndarray, K: np.ndarray) -> np.ndarray:
    """The world-to-camera pose ``[3, 4]`` (OpenCV) of DISN's ``trans_mat`` ``[4, 3]``
    with intrinsics ``K``: ``K^-1 trans_mat^T = [s R | b]`` -> ``[R | b / s]``."""
    M = np.linalg.solve(K, np.asarray(trans_mat, dtype=np.float64).T)  # [3, 4]
    A, b = M[:, :3], M[:, 3]
    det = np.linalg.det(A)
    if not np.isfinite(det) or det <= 0:
        raise ValueError(f"trans_mat: its 3x3 part is not a scaled rotation (det {det:.3g})")
    s = det ** (1 / 3)
    R = A / s
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
        raise ValueError("trans_mat: its 3x3 part is not a scaled rotation")
    return np.concatenate([R, (b / s)[:, None]], axis=1)


class DISNDataset(ModelViewDataset):
    """One item per (listed model, view) with the image, mask, camera, label, SDF
    samples and ground-truth surface points.

    Args:
        sdf_root, image_root, list_root: the three folders of the layout above.
        split: ``"train"`` or ``"test"``.
        categories: synset ids (default: every synset in ``sdf_root``).
        views: which of the 24 views (default all).
        mesh_root: optional ground-truth marching-cubes meshes.
        num_points, num_sdf: surface points and SDF samples per item (subsampled
            deterministically per model; fewer are resampled with replacement).
    """

    def __init__(
        self,
        sdf_root: str | Path,
        image_root: str | Path,
        list_root: str | Path,
        split: str = "train",
        categories: Sequence[str] | None = None,
        views: Sequence[int] | None = None,
        mesh_root: str | Path | None = None,
        num_points: int = 10_000,
        num_sdf: int = 2048,
    ) -> None:
        _h5py()
        self.sdf_root, self.image_root = Path(sdf_root), Path(image_root)
        self.mesh_root = None if mesh_root is None else Path(mesh_root)
        for name, root in (("sdf_root", self.sdf_root), ("image_root", self.image_root),
                           ("list_root", Path(list_root))):  # fmt: skip
            if not root.is_dir():
                raise FileNotFoundError(f"{name}: no folder {root}")
        if categories is None:
            categories = sorted(p.name for p in self.sdf_root.iterdir() if p.is_dir())
            if not categories:
                raise FileNotFoundError(f"sdf_root: no synset folders in {self.sdf_root}")
        self.synsets = list(categories)
        self.views = list(range(24)) if views is None else [int(v) for v in views]
        self.num_points, self.num_sdf = num_points, num_sdf
        self._list_models(lambda s: Path(list_root) / f"{s}_{split}.lst")

    @staticmethod
    def _read(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
        if not path.is_file():
            raise FileNotFoundError(f"DISN: missing file {path}")
        h5py = _h5py()
        try:
            with h5py.File(path, "r") as f:
                missing = [k for k in keys if k not in f]
                if missing:
                    raise ValueError(f"DISN: {path} has no {missing} (has {sorted(f.keys())})")
                return {k: np.asarray(f[k][()]) for k in keys}
        except OSError as exc:
            raise ValueError(f"DISN: {path} is not a readable HDF5 file ({exc})") from None

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        model_i, label, name, view = self._locate(i)
        synset = self.synsets[label]
        image_path = self.image_root / synset / name / f"{view:02d}.h5"
        img = self._read(image_path, ("img_arr", "trans_mat", "K"))
        arr = img["img_arr"]
        if arr.ndim != 3 or arr.shape[2] != 4 or arr.dtype != np.uint8:
            raise ValueError(f"DISN: {image_path} img_arr: expected [H, W, 4] uint8 (BGRA)")
        if img["trans_mat"].shape != (4, 3) or img["K"].shape != (3, 3):
            raise ValueError(f"DISN: {image_path}: expected trans_mat [4, 3] and K [3, 3]")
        K = img["K"].astype(np.float64)
        try:
            pose = pose_from_trans_mat(img["trans_mat"], K)
        except ValueError as exc:
            raise ValueError(f"DISN: {image_path} {exc}") from None
        mask = torch.from_numpy(arr[..., 3] > 127)
        rgb = torch.from_numpy(arr[..., 2::-1].astype(np.float32) / 255).permute(2, 0, 1)

        sdf_path = self.sdf_root / synset / name / "ori_sample.h5"
        samples = self._read(sdf_path, ("pc_sdf_sample",))["pc_sdf_sample"].astype(np.float32)
        if samples.ndim != 2 or samples.shape[1] != 4 or not np.isfinite(samples).all():
            raise ValueError(f"DISN: {sdf_path} pc_sdf_sample: expected finite [N, 4]")
        rng = np.random.default_rng(model_i)
        pick = rng.choice(len(samples), self.num_sdf, replace=len(samples) < self.num_sdf)
        item = {
            "image": torch.where(mask[None], rgb, 1.0),
            "mask": mask,
            "intrinsics": torch.from_numpy(K).float(),
            "pose": torch.from_numpy(pose).float(),
            "label": torch.tensor(label),
            "sdf_points": torch.from_numpy(samples[pick, :3]),
            "sdf_values": torch.from_numpy(samples[pick, 3]),
            "shape_index": torch.tensor(model_i),
            "view": torch.tensor(view),
        }
        item["surface_points"], from_sdf = self._surface(synset, name, samples, rng)
        item["surface_from_sdf"] = torch.tensor(from_sdf)
        return item

    def _surface(self, synset: str, name: str, samples: np.ndarray, rng):
        if self.mesh_root is not None:
            import trimesh

            path = self.mesh_root / synset / name / "isosurf.obj"
            if not path.is_file():
                raise FileNotFoundError(f"DISN: missing ground-truth mesh {path}")
            mesh = trimesh.load(path, force="mesh", process=False)
            if len(mesh.faces) == 0:
                raise ValueError(f"DISN: {path} has no faces")
            seed = int(rng.integers(2**31))
            points, _ = trimesh.sample.sample_surface(mesh, self.num_points, seed=seed)
            return torch.from_numpy(np.asarray(points, dtype=np.float32)), False
        # the tenth of the samples nearest the surface, resampled to num_points
        nearest = np.argsort(np.abs(samples[:, 3]), kind="stable")[: max(1, len(samples) // 10)]
        pick = rng.choice(nearest, self.num_points, replace=len(nearest) < self.num_points)
        return torch.from_numpy(samples[pick, :3].copy()), True
