"""``make eval``: ``medsum eval`` in stack mode, on the IU chest X-ray dev set, against a local stack.

Starts a local stack of its own (free ports; its state file in a temporary project directory, so a running
``make run`` is not disturbed), then runs, from that directory, the CLI as a user would::

    medsum eval --references ../shared/data/iu-cxr/dev.jsonl [--without-impression] --markdown

once on the full report text and once with the IMPRESSION section removed (the realistic case: summarize
the findings; the reference stays the impression). Each run submits the 800 reports as one batch through
the signed API, waits for it, reads every report's usage and scores the summaries next to the copying
baselines (docs/eval.md). The Markdown tables go to standard output, for BENCHMARKS.md.

The data set lives outside the repository (``../shared/data/iu-cxr/dev.jsonl`` relative to the repo root;
licence CC BY-NC-ND, never copied in). When it is absent the script says so and exits 0.

Run: ``.venv/bin/python bench/eval_local_model.py [--data PATH] [--only full|without-impression]
[-- MEDSUM EVAL OPTIONS]`` (e.g. ``-- --limit 50``, ``-- --fail-under micro_f1=0.4``). The exit code is
the first non-zero exit code of the runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "iu-cxr" / "dev.jsonl"
VARIANTS: dict[str, list[str]] = {"full": [], "without-impression": ["--without-impression"]}


def run_eval(project: Path, data: Path, variant: list[str], extra: list[str]) -> int:
    """Run ``medsum eval`` in stack mode from ``project`` (where the stack's state file is)."""
    command = [
        sys.executable,
        "-m",
        "medsum_cli.main",
        "eval",
        "--references",
        str(data),
        *variant,
        "--markdown",
        *extra,
    ]
    print(f"$ medsum eval --references {data.name} {' '.join([*variant, '--markdown', *extra])}", flush=True)
    return subprocess.run(command, cwd=project, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="references (default: %(default)s)")
    parser.add_argument("--only", choices=sorted(VARIANTS), help="run one variant only")
    parser.add_argument("extra", nargs="*", help="options passed to medsum eval (after --)")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"skipped: data absent ({args.data})")
        return 0
    from medsum_local.logs import Console
    from medsum_local.stack import LocalStack
    from medsum_local.testing import isolated_config

    project = Path(tempfile.mkdtemp(prefix="medsum-bench-eval-"))
    config = isolated_config(ROOT, project)
    log_path = project / "stack.log"
    print(f"local stack logs: {log_path}", flush=True)
    codes = []
    with log_path.open("a", encoding="utf-8") as log:
        stack = LocalStack(
            config, log=lambda line: print(line, file=log, flush=True), console=Console("text", stream=log)
        )
        stack.start()
        try:
            for name, variant in VARIANTS.items():
                if args.only in (None, name):
                    codes.append(run_eval(project, args.data.resolve(), variant, args.extra))
        finally:
            stack.stop()
    return next((code for code in codes if code), 0)


if __name__ == "__main__":
    raise SystemExit(main())
