"""Every example notebook runs, top to bottom, at a tiny size."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from svrecon.models import MODELS

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.ipynb"))


def test_every_assembled_model_has_an_example():
    assert set(MODELS) <= {p.stem for p in EXAMPLES}


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SVRECON_EXAMPLE_TINY", "1")
    monkeypatch.setenv("SVRECON_EXAMPLE_DIR", str(tmp_path))
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), (
        f"{path.name}: committed with outputs; clear them"
    )
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on failure
    text = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    assert "the fitted sphere's" in text
    assert any(o.output_type == "display_data" for c in code for o in c.outputs)
    assert list(tmp_path.glob("*_mesh.obj"))
