"""`vlmtune validate` at real scale: time and peak memory per 10,000 samples, without and with `--model_id`.

    python benchmarks/validate_scale.py                                   # 10,000 samples, tiny-qwen2-vl
    python benchmarks/validate_scale.py --count 2000 --model_id tiny-llava-1.5 --repeats 3
    python benchmarks/validate_scale.py --count 2000 --num_images 2000 --sides 256 512     # photo-sized images

The data is generated (tests/scale_data.py): LLaVA-format JSONL, 75% one image, 10% two, 15% text-only, 30%
with a second turn, the images drawn from a few hundred small PNGs. Two rows:

- `data checks`: every check without a model (fields, roles, placeholders, files, media decoded);
- `--model_id M`: the same plus M's processor run on every sample (the processor is loaded, never weights).

Columns `command`: the real command, `python -m vlmtune.apps.validate`, in its own process (imports and start-up
included): wall-clock and CPU seconds (user + system) and that process's peak RSS. Columns `checks`: the checks
alone (`vlmtune.apps.validate.check_data`, timed in this process after start-up), per 10,000 samples. Medians over
`--repeats`. The vlmtune that runs is the one `python` imports (set PYTHONPATH to compare two checkouts).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_llava_dataset(folder: Path, count: int, num_images: int, sides: tuple[int, int]) -> Path:
    """tests/scale_data.py's dataset (loaded by path: PYTHONPATH may point at another checkout's vlmtune)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "scale_data.py"
    spec = importlib.util.spec_from_file_location("scale_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_llava_dataset(folder, count, num_images, sides=sides)


def run_validate(argv: list[str]) -> dict[str, float]:
    """Run `python -m vlmtune validate ARGV` as a child; its wall and CPU seconds and peak RSS (os.wait4's own)."""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "vlmtune.apps.validate", *argv], stdout=output, stderr=output)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            output.seek(0)
            raise SystemExit(f"validate {' '.join(argv)} failed:\n{output.read().decode()[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}


def median_run(argv: list[str], repeats: int) -> dict[str, float]:
    runs = [run_validate(argv) for _ in range(repeats)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def time_checks(data: Path, model_id: str | None) -> dict[str, float]:
    """The checks alone, in this process (no start-up): wall and CPU seconds of `check_data` over `data`."""
    from vlmtune.apps.validate import collator_for
    from vlmtune.arguments import DataArguments
    from vlmtune.data.checks import check_data, data_options

    data_args = DataArguments(data_path=str(data))
    family, encode = None, None
    if model_id:
        family, collator = collator_for(model_id, None, data_args)
        encode = collator.encode
    wall, cpu = time.perf_counter(), time.process_time()
    report = check_data(str(data), data_options(str(data), data_args), family, encode=encode)
    assert not report.errors, report.errors[:3]
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="Samples in the generated dataset.")
    parser.add_argument("--num_images", type=int, default=300, help="Distinct images the samples share.")
    parser.add_argument("--sides", type=int, nargs=2, default=(24, 64), help="Shortest and longest image side.")
    parser.add_argument("--model_id", default="tiny-qwen2-vl", help="Model of the processor row.")
    parser.add_argument("--repeats", type=int, default=1, help="Runs per row; the medians are shown.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        data = write_llava_dataset(Path(folder), args.count, args.num_images, tuple(args.sides))
        rows = [("data checks", None), (f"--model_id {args.model_id}", args.model_id)]
        print("| row | samples | command: wall s | CPU s | peak RSS MiB | checks: wall s / 10k | CPU s / 10k |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, model_id in rows:
            command = ["--data_path", str(data)] + (["--model_id", model_id] if model_id else [])
            whole = median_run(command, args.repeats)
            runs = [time_checks(data, model_id) for _ in range(args.repeats)]
            checks = {
                key: statistics.median(run[key] for run in runs) * 10_000 / args.count for key in ("wall", "cpu")
            }
            cells = [name, f"{args.count:,}", f"{whole['wall']:.1f}", f"{whole['cpu']:.1f}", f"{whole['rss_mib']:.0f}"]
            cells += [f"{checks['wall']:.1f}", f"{checks['cpu']:.1f}"]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
