"""The furniture benchmark's classes, split and up axes on a small collection written
in its layout (index.csv and meshes/<stem>/<stem>.obj)."""

import csv

import pytest
import trimesh

from svrecon.data.furniture import (
    FURNITURE_CLASSES,
    furniture_class,
    furniture_meshes,
    infer_up_axis,
)


@pytest.mark.parametrize("name, expected", [
    ("Table fan", "other"), ("Pool table", "table"), ("Deck chair", "chair"),
    ("Winchester armchair", "chair"), ("Piano bench", "chair"), ("Corner sofa", "sofa"),
    ("Stone lantern", "lamp"), ("Baby bed", "bed"), ("Television cabinet", "cabinet"),
    ("Vertical shelves", "cabinet"), ("Rocking horse", "other"), ("", "other"),
])  # fmt: skip
def test_classes_follow_the_head_noun(name, expected):
    assert furniture_class(name) == expected and expected in FURNITURE_CLASSES


def test_up_axis_from_the_real_sizes():
    # a 200 x 100 x 50 cm (w x d x h) piece, in metres, y up and z up, either way round
    assert infer_up_axis((2.0, 0.5, 1.0), 200, 100, 50) == "y"
    assert infer_up_axis((1.0, 0.5, 2.0), 200, 100, 50) == "y"
    assert infer_up_axis((2.0, 1.0, 0.5), 200, 100, 50) == "z"
    assert infer_up_axis((100.0, 200.0, 50.0), 200, 100, 50) == "z"


def test_collection_split_and_errors(tmp_path):
    names = ["Chair", "Stool", "Armchair", "Bench", "Deck chair", "Folding chair", "Couch",
             "Rock"]  # fmt: skip
    rows = []
    for k, name in enumerate(names):
        stem = f"p{k}"
        (tmp_path / "meshes" / stem).mkdir(parents=True)
        box = trimesh.creation.box((0.5, 1.0, 0.4) if k != 7 else (0.5, 0.4, 1.0))  # z-up rock
        box.export(tmp_path / "meshes" / stem / f"{stem}.obj")
        rows.append({"stem": stem, "obj": f"meshes/{stem}/{stem}.obj", "name": name,
                     "catalog_category": "x", "width_cm": 50, "depth_cm": 40,
                     "height_cm": 100, "creator": "test"})  # fmt: skip
    with (tmp_path / "index.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    entries = furniture_meshes(tmp_path)
    split = {(p.stem, c, s, u) for p, c, s, u in entries}
    chairs = sorted((p, s) for p, c, s, _ in split if c == "chair")
    assert [s for _, s in chairs] == ["train"] * 4 + ["test", "train"]  # every fifth
    assert ("p6", "sofa", "train", "y") in split  # a class of one stays in training
    assert ("p7", "other", "train", "z") in split
    (tmp_path / "meshes" / "p3" / "p3.obj").unlink()
    with pytest.raises(FileNotFoundError, match="p3.obj"):
        furniture_meshes(tmp_path)
    with pytest.raises(FileNotFoundError, match="index.csv"):
        furniture_meshes(tmp_path / "meshes")
