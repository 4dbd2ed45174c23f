"""Every user error of the command line is one line on stderr and exit status 2, with
no traceback; --debug shows the traceback instead."""

import numpy as np
import pytest
import torch

from svrecon.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_procedural):
    root = tmp_path_factory.mktemp("cli")
    (root / "data").symlink_to(tiny_procedural)
    from PIL import Image

    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(root / "img.png")
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(root / "mask20.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "blank_mask.png")
    Image.fromarray(np.full((16, 16, 3), 255, np.uint8)).save(root / "white.png")
    Image.fromarray(np.full((4, 4, 3), 128, np.uint8)).save(root / "tiny.png")
    speck = np.full((400, 400, 3), 255, np.uint8)
    speck[200, 201] = 0  # one object pixel, lost by resizing to --size 8
    Image.fromarray(speck).save(root / "speck.png")
    (root / "not_an_image.png").write_text("hello")
    (root / "junk.pt").write_bytes(b"\x00" * 100)
    torch.save({"weights": torch.zeros(2)}, root / "foreign.pt")
    return root


def bad_invocations(r):
    img, data = str(r / "img.png"), str(r / "data")
    return [
        [],
        ["nonsense"],
        ["data", "--train-shapes", "-1"],
        ["data", "--test-shapes", "0"],
        ["data", "--train-views", "0"],
        ["data", "--size", "2"],
        ["data", "--seed", "-3"],
        ["data", "--size", "abc"],
        ["data", "--meshes", str(r / "no_such_folder")],
        ["data", "--meshes", str(r)],  # a folder without meshes
        ["data", "--furniture", str(r)],  # no index.csv
        ["data", "--meshes", str(r), "--furniture", str(r)],
        ["data", "--meshes", str(r), "--convention", "blender"],
        ["train"],
        ["train", "--model", "nope"],
        ["train", "--model", "disn", "--batch-size", "0", "--data", data],
        ["train", "--model", "disn", "--iterations", "0", "--data", data],
        ["train", "--model", "disn", "--lr", "-1", "--data", data],
        ["train", "--model", "disn", "--lr", "nan", "--data", data],
        ["train", "--model", "disn", "--preset", "huge", "--data", data],
        ["train", "--model", "disn", "--model-kwargs", "{bad json", "--data", data],
        ["train", "--model", "msu", "--data", data],  # a staged model needs --stage
        ["train", "--model", "msu", "--stage", "nope", "--data", data],
        ["train", "--model", "disn", "--stage", "decoders", "--data", data],
        ["train", "--model", "msu", "--stage", "decoders", "--stage-options", "{x", "--data", data],
        ["train", "--model", "msu", "--stage", "decoders", "--stage-options", "[1]"],
        ["train", "--model", "msu", "--stage", "finetune", "--init-from", "nope.pt"],
        ["train", "--model", "disn", "--model-kwargs", "[1, 2]", "--data", data],
        ["train", "--model", "disn", "--model-kwargs", '{"no_such_arg": 1}', "--data", data],
        ["train", "--model", "disn", "--data", str(r / "missing")],
        ["train", "--model", "disn", "--data", data, "--batch-size", "64"],
        [
            "train",
            "--model",
            "disn",
            "--data",
            data,
            "--resume",
            str(r / "junk.pt"),
            "--iterations",
            "1",
            "--batch-size",
            "1",
            "--out",
            str(r / "run"),
        ],
        ["evaluate", "--data", data],
        ["evaluate", str(r / "missing.pt"), "--data", data],
        ["evaluate", str(r / "junk.pt"), "--data", data],
        ["evaluate", str(r / "foreign.pt"), "--data", data],
        ["evaluate", "--sphere", "--data", str(r / "missing")],
        ["evaluate", "--sphere", "--data", data, "--items", "0"],
        ["evaluate", "--sphere", "--data", data, "--protocol", "nope"],
        ["evaluate", "--sphere", "--data", data, "--table", str(r / "t.xlsx")],
        ["reconstruct"],
        ["reconstruct", str(r / "missing.png")],
        ["reconstruct", str(r / "not_an_image.png")],
        ["reconstruct", img, "--mask", str(r / "mask20.png")],
        ["reconstruct", img, "--mask", str(r / "missing.png")],
        ["reconstruct", img, "--mask", str(r / "blank_mask.png")],
        ["reconstruct", str(r / "white.png")],
        ["reconstruct", img, "--size", "0"],
        ["reconstruct", img, "--resolution", "1"],
        ["reconstruct", img, "--elevation", "95"],
        ["reconstruct", img, "--azimuth", "inf"],
        ["reconstruct", img, "--model", "nope"],
        ["reconstruct", img, "--checkpoint", str(r / "junk.pt")],
        ["reconstruct", img, "--checkpoint", str(r / "foreign.pt")],
        ["reconstruct", img, "--out", str(r / "mesh.txt")],
        ["reconstruct", img, "--out", str(r / "img.obj")],  # the picture would overwrite img
        ["reconstruct", img, "--picture", img],
        ["reconstruct", img, "--picture", str(r / "picture.txt")],
        ["reconstruct", str(r / "tiny.png")],
        ["reconstruct", str(r / "speck.png"), "--size", "8"],
        ["demo", "--shapes", "0"],
        ["demo", "--seed", "x"],
        ["demo", "--out", str(r / "img.png" / "under_a_file")],  # an OSError, not a traceback
    ]


def test_bad_invocations_are_one_line_and_exit_2(files, capsys):
    cases = bad_invocations(files)
    assert len(cases) >= 40
    for argv in cases:
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse's own errors
            status = exc.code
        err = capsys.readouterr().err.strip()
        assert status == 2, (argv, status, err)
        assert "Traceback" not in err, (argv, err)
        lines = err.splitlines()
        assert len(lines) == 1 and "error" in lines[0], (argv, err)


def test_debug_shows_the_traceback(files):
    with pytest.raises(Exception, match="does not exist"):
        main(["--debug", "reconstruct", str(files / "missing.png")])
    with pytest.raises(Exception, match="does not exist"):
        main(["reconstruct", str(files / "missing.png"), "--debug"])
