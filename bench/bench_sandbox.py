"""Benchmark sandbox creation against ``git clone --no-hardlinks`` on a big repository.

Usage::

    python bench/bench_sandbox.py [--files 20000] [--history-mb 500] [--runs 3] [--cache DIR]
                                  [--check]

The first run generates (with ``git fast-import``) and caches a repository under ``bench/.cache/``:

* its HEAD holds ``--files`` files of 256 B - 4 KiB, spread over directories of about 100 files;
* its history holds at least ``--history-mb`` MB of incompressible blobs: half is churn (commits
  that rewrite 500 random source files each), half is large binary assets that were committed and
  later deleted (so they weigh on the object store, not on the checkout).

Then it measures, as the median of ``--runs`` runs each:

* the baseline: ``git clone --no-hardlinks`` of the project (what the seed system did);
* the first sandbox of the project: :meth:`Sandboxes.create` with no warm tree;
* a later sandbox: :meth:`Sandboxes.create` after a :meth:`Sandboxes.release` of a used sandbox
  (the agent left edits, untracked files and a commit; the project got a new commit meanwhile).

and prints the speed-ups against the targets (first >= 4x, later >= 10x). It also times the
delivery of a 100-commit result (``--commits``): collecting the commits of a sandbox and delivering
them to the project as a branch (:meth:`Sandboxes.collect` then :meth:`Sandboxes.deliver`). With
``--check`` the exit status is non-zero when a target is missed.

``bench/run.py`` runs it through :func:`run` (sizes from ``BENCH_SANDBOX_FILES``,
``BENCH_SANDBOX_HISTORY_MB``, ``BENCH_SANDBOX_RUNS``, ``BENCH_SANDBOX_COMMITS``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import CACHE, Figure, Result, env_int
from claudomator import process
from claudomator.sandbox import DeliveryKind, Sandbox, Sandboxes

NAME = "sandbox"
TITLE = "Sandbox creation and delivery"

FIRST_TARGET = 4.0
LATER_TARGET = 10.0
FILES_PER_DIR = 100
CHURN_FILES_PER_COMMIT = 500
ASSET_BYTES = 4 * 1024 * 1024
_MB = 1_000_000
_STAMP = 1_700_000_000
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def log(message: str) -> None:
    print(message, flush=True)


def git(*args: str, cwd: Path) -> str:
    """Run git in ``cwd``; exit with its output on failure."""
    result = process.run(["git", *args], cwd=cwd, env={**os.environ, **_IDENTITY})
    if not result.ok:
        sys.exit(f"git {' '.join(args)} failed:\n{result.tail()}")
    return result.stdout


# --- generating the repository ---------------------------------------------------------------


class FastImport:
    """Writes a ``git fast-import`` stream of commits on ``refs/heads/main``."""

    def __init__(self, stream: IO[bytes], rng: random.Random) -> None:
        self.stream = stream
        self.rng = rng
        self.commits = 0
        self.blob_bytes = 0

    def commit(self, message: str, changes: Iterator[tuple[str, int | None]]) -> None:
        """One commit; a change is (path, size) for new random content or (path, None) to delete."""
        self.commits += 1
        stamp = _STAMP + self.commits * 60
        msg = message.encode()
        header = (
            f"commit refs/heads/main\n"
            f"author Bench <bench@example.com> {stamp} +0000\n"
            f"committer Bench <bench@example.com> {stamp} +0000\n"
            f"data {len(msg)}\n"
        ).encode()
        self.stream.write(header + msg + b"\n")
        for path, size in changes:
            if size is None:
                self.stream.write(f"D {path}\n".encode())
                continue
            self.stream.write(f"M 100644 inline {path}\ndata {size}\n".encode())
            self.stream.write(self.rng.randbytes(size))
            self.stream.write(b"\n")
            self.blob_bytes += size
        self.stream.write(b"\n")


def source_path(index: int) -> str:
    return f"src/d{index // FILES_PER_DIR:04d}/file{index:06d}.dat"


def source_size(rng: random.Random) -> int:
    return rng.randint(256, 4096)


def write_history(out: FastImport, files: int, history_bytes: int, rng: random.Random) -> None:
    """The initial tree, then churn and asset commits until the blobs reach ``history_bytes``."""
    out.commit("initial import", ((source_path(i), source_size(rng)) for i in range(files)))
    churn_target = history_bytes // 2
    while out.blob_bytes < churn_target:
        picked = rng.sample(range(files), min(CHURN_FILES_PER_COMMIT, files))
        out.commit(f"churn {out.commits}", ((source_path(i), source_size(rng)) for i in picked))
        if out.commits % 20 == 0:
            log(f"  ... {out.commits} commits, {out.blob_bytes / _MB:.0f} MB of blobs")
    asset = 0
    while out.blob_bytes < history_bytes:
        out.commit(f"add asset {asset}", iter([(f"assets/asset{asset:04d}.bin", ASSET_BYTES)]))
        if asset % 4 == 3:
            gone = ((f"assets/asset{a:04d}.bin", None) for a in range(asset - 3, asset + 1))
            out.commit(f"drop assets up to {asset}", gone)
        asset += 1
        if asset % 25 == 0:
            log(f"  ... {out.commits} commits, {out.blob_bytes / _MB:.0f} MB of blobs")
    if asset % 4:
        tail = ((f"assets/asset{a:04d}.bin", None) for a in range(asset - asset % 4, asset))
        out.commit("drop the last assets", tail)


def generate(repo: Path, files: int, history_mb: int) -> None:
    """Create the benchmark repository at ``repo`` (a non-bare repository with a checkout)."""
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    log(f"generating {files} files, >= {history_mb} MB of history in {repo} (one time) ...")
    started = time.monotonic()
    # Streaming ~500 MB of binary data needs a byte pipe, which process.run does not offer.
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=repo, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    out = FastImport(proc.stdin, random.Random(20_000))
    write_history(out, files, history_mb * _MB, out.rng)
    proc.stdin.close()
    if proc.wait() != 0:
        sys.exit("git fast-import failed")
    log(f"  imported {out.commits} commits in {time.monotonic() - started:.0f}s; checking out ...")
    git("reset", "-q", "--hard", "main", cwd=repo)
    log(f"  done in {time.monotonic() - started:.0f}s")


def object_store_mb(repo: Path) -> float:
    total = sum(p.stat().st_size for p in (repo / ".git" / "objects").rglob("*") if p.is_file())
    return total / _MB


def ensure_repo(cache: Path, files: int, history_mb: int) -> Path:
    repo = cache / f"repo-{files}f-{history_mb}mb"
    marker = repo / ".git" / "bench-complete"
    if not marker.exists():
        generate(repo, files, history_mb)
        marker.write_text(git("rev-parse", "main", cwd=repo))
    restore_repo(repo)
    return repo


def restore_repo(repo: Path) -> None:
    """Put the cached repository back to the generated commit (the benchmark adds commits)."""
    generated = (repo / ".git" / "bench-complete").read_text().strip()
    git("checkout", "-q", "-f", "main", cwd=repo)
    git("reset", "-q", "--hard", generated, cwd=repo)
    git("clean", "-q", "-ffdx", cwd=repo)
    delivered = git(
        "for-each-ref", "--format=delete %(refname)", "refs/heads/claudomator/", cwd=repo
    )
    if delivered.strip():
        process.run(["git", "update-ref", "--stdin"], cwd=repo, input_text=delivered)


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def checked(argv: list[str]) -> None:
    result = process.run(argv)
    if not result.ok:
        sys.exit(f"{' '.join(argv)} failed:\n{result.tail()}")


def bench_fresh(repo: Path, work: Path, runs: int) -> tuple[Timing, Timing, Timing]:
    """Baseline clones, object copies alone and first sandboxes, interleaved.

    The order alternates from run to run so a drift in the machine favours neither side, and
    nothing is deleted until the end: on ext4 without a journal, creating files is much slower for
    minutes after many were deleted, which would penalise whichever run came next.
    """
    seconds: dict[str, list[float]] = {"baseline": [], "copy": [], "first": []}

    def baseline(run: int) -> None:
        target = str(work / f"baseline-{run}")
        clone = ["git", "clone", "-q", "--no-hardlinks", str(repo), target]
        seconds["baseline"].append(timed(partial(checked, clone)))

    def copy(run: int) -> None:
        target = str(work / f"copy-{run}")
        clone = ["git", "clone", "-q", "--no-hardlinks", "--no-checkout", str(repo), target]
        seconds["copy"].append(timed(partial(checked, clone)))

    def first(run: int) -> None:
        sandboxes = Sandboxes(work / f"first-{run}", warm_per_project=0)
        seconds["first"].append(timed(partial(sandboxes.create, repo, "first")))

    for run in range(runs):
        for step in (baseline, copy, first) if run % 2 == 0 else (first, copy, baseline):
            step(run)
        log(
            f"  run {run + 1}: baseline {seconds['baseline'][-1]:.3f}s,"
            f" first sandbox {seconds['first'][-1]:.3f}s"
            f" (object copy alone {seconds['copy'][-1]:.3f}s)"
        )
    return (
        Timing("git clone --no-hardlinks (baseline)", tuple(seconds["baseline"])),
        Timing("  of which copying objects", tuple(seconds["copy"])),
        Timing("first sandbox (no warm tree)", tuple(seconds["first"])),
    )


def simulate_agent(box: Sandbox) -> None:
    """Leave what an agent leaves: edits, a commit, untracked files, build output."""
    (box.dir / "src" / "d0000" / "file000000.dat").write_bytes(os.urandom(1000))
    (box.dir / "NOTES.md").write_text("agent notes\n")
    git("add", "-A", cwd=box.dir)
    git("commit", "-q", "-m", "agent work", cwd=box.dir)
    (box.dir / "src" / "d0001" / "file000100.dat").write_bytes(os.urandom(500))
    (box.dir / "build").mkdir()
    (box.dir / "build" / "out.bin").write_bytes(os.urandom(4096))


def advance_project(repo: Path, run: int) -> None:
    """The user commits in the project meanwhile, so a recycled tree has something to catch up."""
    for index in (200 + run, 300 + run):
        (repo / source_path(index)).write_bytes(os.urandom(2000))
    git("commit", "-q", "-am", f"user change {run}", cwd=repo)


def bench_later(repo: Path, work: Path, runs: int) -> tuple[Timing, Timing]:
    """Release a used sandbox, let the project move on, create the next one from the warm pool."""
    sandboxes = Sandboxes(work / "later", warm_per_project=2)
    box = sandboxes.create(repo, "warmup")
    creates: list[float] = []
    releases: list[float] = []
    for run in range(runs):
        simulate_agent(box)
        releases.append(timed(partial(sandboxes.release, box)))
        advance_project(repo, run)
        started = time.perf_counter()
        box = sandboxes.create(repo, f"later-{run}")
        creates.append(time.perf_counter() - started)
        log(f"  run {run + 1}: release {releases[-1]:.3f}s, later sandbox {creates[-1]:.3f}s")
        verify_fresh(repo, box)
    return (
        Timing("later sandbox (recycled tree)", tuple(creates)),
        Timing("release (reset, clean, to pool)", tuple(releases)),
    )


def verify_fresh(repo: Path, box: Sandbox) -> None:
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    if box.base_commit != head or git("rev-parse", "HEAD", cwd=box.dir).strip() != head:
        sys.exit("a recycled sandbox is not at the project's HEAD")
    if git("status", "--porcelain", "--ignored", cwd=box.dir):
        sys.exit("a recycled sandbox is not clean")


def add_commits(box: Sandbox, count: int, run: int) -> None:
    """``count`` commits in the sandbox, each rewriting a few files (as an agent's work would)."""
    stamp = _STAMP + 10_000_000 + run * 100_000
    stream = []
    rng = random.Random(run)
    for n in range(count):
        msg = f"agent commit {n + 1}".encode()
        parent = f"from {box.base_commit}\n" if n == 0 else ""
        head = (
            f"commit refs/heads/{box.branch}\n"
            f"committer Bench <bench@example.com> {stamp + n} +0000\n"
            f"data {len(msg)}\n"
        ).encode()
        stream.append(head + msg + b"\n" + parent.encode())
        for index in rng.sample(range(1000), 3):
            blob = rng.randbytes(2000)
            path = source_path(index)
            stream.append(f"M 100644 inline {path}\ndata {len(blob)}\n".encode() + blob + b"\n")
        stream.append(b"\n")
    proc = subprocess.run(
        ["git", "fast-import", "--quiet", "--force"],
        cwd=box.dir,
        input=b"".join(stream),
        check=False,
        capture_output=True,
    )
    if proc.returncode != 0:
        sys.exit(f"git fast-import in the sandbox failed: {proc.stderr.decode()[-500:]}")
    git("reset", "-q", "--hard", cwd=box.dir)


def bench_delivery(repo: Path, work: Path, runs: int, commits: int) -> Timing:
    """Collect and deliver (as a branch of the project) a sandbox holding ``commits`` commits."""
    seconds: list[float] = []
    for run in range(runs):
        sandboxes = Sandboxes(work / f"deliver-{run}", warm_per_project=0)
        box = sandboxes.create(repo, f"deliver-{run}")
        add_commits(box, commits, run)
        started = time.perf_counter()
        collected = sandboxes.collect(box)
        where = sandboxes.deliver(box, task_id=f"bench-{run}")
        seconds.append(time.perf_counter() - started)
        if len(collected.commits) != commits or where.how is not DeliveryKind.BRANCH:
            sys.exit(f"delivery went wrong: {len(collected.commits)} commits, {where}")
        log(f"  run {run + 1}: delivered {commits} commits in {seconds[-1]:.3f}s ({where})")
    return Timing(f"deliver {commits} commits (collect+branch)", tuple(seconds))


def print_table(
    baseline: Timing, copy: Timing, first: Timing, later: Timing, release: Timing
) -> bool:
    """Print the results; True if both targets are met."""
    rows: list[tuple[Timing, float | None]] = [
        (baseline, None),
        (copy, None),
        (first, FIRST_TARGET),
        (later, LATER_TARGET),
        (release, None),
    ]
    log("")
    log(f"{'measurement':<36} {'median':>8}  {'runs (s)':<22} {'speed-up':>8} {'target':>7}  met")
    log("-" * 94)
    ok = True
    for timing, target in rows:
        runs = " ".join(f"{s:.3f}" for s in timing.seconds)
        line = f"{timing.name:<36} {timing.median:>7.3f}s  {runs:<22}"
        if target is not None:
            ratio = baseline.median / timing.median
            met = ratio >= target
            ok = ok and met
            line += f" {ratio:>7.1f}x {target:>6.0f}x  {'yes' if met else 'NO'}"
        log(line)
    return ok


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Benchmark sandbox creation.")
    parser.add_argument("--files", type=int, default=20_000, help="files at HEAD")
    parser.add_argument("--history-mb", type=int, default=500, help="MB of blobs in history")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement")
    parser.add_argument("--commits", type=int, default=100, help="commits of the delivered result")
    parser.add_argument("--cache", type=Path, default=here / ".cache", help="repository cache")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Measured:
    tracked: int
    baseline: Timing
    copy: Timing
    first: Timing
    later: Timing
    release: Timing
    delivery: Timing


def measure(files: int, history_mb: int, runs: int, commits: int, cache: Path) -> Measured:
    repo = ensure_repo(cache.resolve(), files, history_mb)
    tracked = len(git("ls-files", cwd=repo).splitlines())
    log(f"repository: {repo}")
    log(f"  {tracked} files at HEAD, object store {object_store_mb(repo):.0f} MB")
    log(f"  {os.cpu_count()} CPUs; git {git('version', cwd=repo).split()[-1]}")
    work = Path(tempfile.mkdtemp(prefix="work-", dir=cache.resolve()))
    try:
        checked(["git", "clone", "-q", "--no-hardlinks", str(repo), str(work / "page-cache")])
        log("measuring fresh copies (one untimed clone first, so every run sees a hot cache) ...")
        baseline, copy, first = bench_fresh(repo, work, runs)
        log("measuring recycled sandboxes ...")
        later, release = bench_later(repo, work, runs)
        restore_repo(repo)
        log(f"measuring the delivery of {commits} commits ...")
        delivery = bench_delivery(repo, work, runs, commits)
    finally:
        restore_repo(repo)
        log(f"removing {work} ...")
        shutil.rmtree(work, ignore_errors=True)
    return Measured(tracked, baseline, copy, first, later, release, delivery)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    got = measure(args.files, args.history_mb, args.runs, args.commits, args.cache)
    ok = print_table(got.baseline, got.copy, got.first, got.later, got.release)
    log(f"{got.delivery.name:<36} {got.delivery.median:>7.3f}s")
    share = got.copy.median / got.baseline.median
    log(
        f"\nCopying the object store is {share:.0%} of the baseline; the rest is the checkout of"
        f" {got.tracked} files, which every sandbox of this project must also write the first time."
        "\nOn ext4 without a journal, creating files stays slow for ~6 minutes after many were"
        " deleted: a rerun soon after a run (which deletes its copies at the end) is noisier."
    )
    return 1 if args.check and not ok else 0


def run(size: str = "full") -> Result:
    """For ``bench/run.py``: the figures as a :class:`Result`."""
    files = env_int("BENCH_SANDBOX_FILES", 20_000, 500, size)
    history_mb = env_int("BENCH_SANDBOX_HISTORY_MB", 500, 5, size)
    runs = env_int("BENCH_SANDBOX_RUNS", 3, 1, size)
    commits = env_int("BENCH_SANDBOX_COMMITS", 100, 10, size)
    got = measure(files, history_mb, runs, commits, CACHE)
    first = got.baseline.median / got.first.median
    later = got.baseline.median / got.later.median
    return Result(
        name=NAME,
        title=TITLE,
        figures=[
            Figure("git clone --no-hardlinks (baseline)", got.baseline.median, "s"),
            Figure("first sandbox", got.first.median, "s"),
            Figure("later sandbox (recycled)", got.later.median, "s"),
            Figure("first: speed-up", first, "x"),
            Figure("later: speed-up", later, "x"),
            Figure("release (to the warm pool)", got.release.median, "s"),
            Figure(f"deliver {commits} commits", got.delivery.median, "s"),
        ],
        ratio=later,
        target=f"first >= {FIRST_TARGET:g}x, later >= {LATER_TARGET:g}x faster",
        passed=first >= FIRST_TARGET and later >= LATER_TARGET,
        headline=f"first {first:.1f}x, later {later:.1f}x; deliver {got.delivery.median:.2f} s",
        params={"files": files, "history_mb": history_mb, "runs": runs, "commits": commits},
        notes=[
            f"{name}: {' '.join(f'{x:.3f}' for x in t.seconds)} s"
            for name, t in (
                ("baseline", got.baseline),
                ("first", got.first),
                ("later", got.later),
                ("delivery", got.delivery),
            )
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
