"""The benchmark runner works end to end at a tiny size (``make bench`` runs it full size)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT


def test_the_bench_runner_records_results_and_prints_the_table(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "BENCH_CACHE": str(cache),
        "BENCH_STORE_HISTORY": "300",
        "BENCH_STORE_CLAIMS": "5",
        "BENCH_LOGS_MB": "1",
    }
    runner = str(REPO_ROOT / "bench" / "run.py")
    done = subprocess.run(
        [sys.executable, runner, "--size", "smoke", "--only", "store,logs,startup,isolation"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("store", "logs", "startup", "isolation"):
        result = json.loads((cache / "results-smoke" / f"{name}.json").read_text())
        assert result["figures"] or (name == "isolation" and shutil.which("bwrap") is None)
        assert result["machine"]["cores"]
        assert result["target"]
    assert "Claudomator benchmarks" in done.stdout
