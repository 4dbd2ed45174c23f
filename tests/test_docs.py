"""The README's example runs, and every test that docs/conventions.md cites exists."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_usage_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "README should hold exactly one Python usage example"
    assert len(blocks[0].strip().splitlines()) <= 25
    script = tmp_path / "readme_example.py"
    script.write_text(blocks[0])
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "torch.Size([4, 512, 3])" in out.stdout


def test_conventions_cite_existing_tests():
    doc = (ROOT / "docs" / "conventions.md").read_text()
    files = list((ROOT / "tests").glob("test_*.py"))
    cited = set(re.findall(r"(test_\w+)", doc)) - {p.stem for p in files}
    assert cited, "conventions.md should name the tests that check it"
    sources = "\n".join(p.read_text() for p in files)
    defined = set(re.findall(r"def (test_\w+)", sources))
    assert cited <= defined, f"cited but missing: {sorted(cited - defined)}"
