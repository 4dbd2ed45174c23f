"""`pip install .` ships a package whose modules import from outside the source tree."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_imports(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("svrecon-*.whl")
    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    code = "import svrecon, svrecon.cameras; print(svrecon.__file__, svrecon.__version__)"
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    )
    assert out.stdout.startswith(str(target)), out.stdout


@pytest.mark.slow
def test_benchmark_suite_dry_run_appends_a_dated_section(tmp_path):
    """`make bench-gpu` runs benchmarks/run_suite.py; a quick CPU run exercises the same
    path (every step runs and its output lands in the results file)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, "benchmarks/run_suite.py", "--device", "cpu", "--quick", "--out",
         str(out), "--timeout", "300"],
        cwd=root, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    text = out.read_text()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "## Suite run" in text and "bench_metrics.py" in text and "exit 0" in text
