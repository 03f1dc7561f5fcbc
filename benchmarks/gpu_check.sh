#!/usr/bin/env bash
# Every CUDA-only row still open, in one run on one GPU (H100/H200, < 9 minutes), into one JSON + markdown table.
#
#   bash benchmarks/gpu_check.sh                       # on the GPU machine: writes gpu_check/results.{json,md}
#   OUT=/tmp/gc bash benchmarks/gpu_check.sh --dry_run  # any machine: the CPU-checkable parts (what the test runs)
#
# Installs nothing and needs no network. Packages it needs, installed beforehand (a row whose package is missing
# is written as "skipped: needs PKG", the others still run):
#   always             this project's requirements.txt with a CUDA build of torch 2.14.1
#   qlora              bitsandbytes (CUDA backend)
#   flash-attn row     flash-attn (pip install flash-attn --no-build-isolation)
#   zero2 / zero3      deepspeed
#   trl rows           trl==1.16.0
#   vllm row           vllm (a CUDA wheel carried to the machine) -- run this script with that environment's python
#   grpo row           nothing more (benchmarks/grpo_step.py; its --dry_run is the cpu-grpo row)
#   grpo-zero3         deepspeed (benchmarks/grpo_launch.py: accelerate launch with configs/accelerate/1x8_zero3.yaml)
#   grpo-server        vllm and deepspeed in one environment (the same, plus vlmtune rollout-server on the GPU)
# Rows: each runs with its own time limit (LIMIT_SCALE=2 doubles them all); docs/benchmarks.md says what each fills.
set -uo pipefail

DRY_RUN=""
if [[ "${1:-}" == "--dry_run" ]]; then DRY_RUN=1; fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT=${OUT:-gpu_check}                                  # results.json, results.md, one log per row
PYTHON=${PYTHON:-python}                               # the environment with the packages above
LIMIT_SCALE=${LIMIT_SCALE:-1}                          # multiply every row's time limit
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
ROWS="$OUT/rows.jsonl"
: > "$ROWS"

# The digits data every training row uses (scikit-learn's bundled digits, written offline).
"$PYTHON" -c "from pathlib import Path; from vlmtune.apps.demo import write_digits_dataset; \
write_digits_dataset(Path('$OUT/data'), num_eval=10)" || { echo "cannot write the digits data" >&2; exit 1; }
DATA="$OUT/data/train.json"

has() { "$PYTHON" -c "import $1" 2>/dev/null; }

# row NAME NEEDS(comma-separated modules, or -) LIMIT_S JSON_OR_- COMMAND...: runs one row, appends its record.
row() {
    local name=$1 needs=$2 limit=$(( $3 * LIMIT_SCALE )) json=$4; shift 4
    local missing=() module status seconds start
    if [[ "$needs" != "-" ]]; then
        for module in ${needs//,/ }; do has "$module" || missing+=("$module"); done
    fi
    if (( ${#missing[@]} )); then
        status="skipped: needs ${missing[*]}"; seconds=0
    elif [[ -n "$DRY_RUN" && "$name" != cpu-* ]]; then
        status="dry run: not run"; seconds=0
        printf '%q ' "$@" > "$OUT/$name.cmd"
    else
        start=$(date +%s)
        if timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; then status="ok"; else status="failed (exit $?, see $name.log)"; fi
        seconds=$(( $(date +%s) - start ))
    fi
    echo "$name: $status (${seconds}s)"
    "$PYTHON" - "$ROWS" "$name" "$status" "$seconds" "$json" <<'EOF'
import json, sys, pathlib
rows, name, status, seconds, result = sys.argv[1:]
record = {"row": name, "status": status, "seconds": int(seconds)}
if result != "-" and pathlib.Path(result).is_file():
    record["result"] = json.loads(pathlib.Path(result).read_text())
with open(rows, "a") as file:
    file.write(json.dumps(record) + "\n")
EOF
}

train=("$PYTHON" -m vlmtune.train --data_path "$DATA" --max_steps 20 --per_device_train_batch_size 8
       --logging_steps 5 --save_strategy no --report_to none)
torchrun1=(torchrun --standalone --nproc_per_node 1 -m vlmtune.train --data_path "$DATA" --max_steps 20
           --per_device_train_batch_size 8 --logging_steps 5 --save_strategy no --report_to none --bf16 true)
bench=("$PYTHON" "$HERE/benchmarks/throughput.py" --steps 30 --repeats 1)

if [[ -n "$DRY_RUN" ]]; then
    # The parts a CPU can check: QLoRA's path on the tiny model, the throughput table, the GRPO step's path.
    row cpu-qlora bitsandbytes 300 - "${train[@]}" --model_id tiny-qwen2-vl --use_qlora true --use_cpu true \
        --max_steps 2 --model_dtype float32 --output_dir "$OUT/cpu-qlora"
    row cpu-throughput - 300 "$OUT/cpu-throughput.json" "${bench[@]}" --model_id tiny-qwen2-vl --steps 3 \
        --warmup 1 --samples 24 --rows vlmtune --json "$OUT/cpu-throughput.json"
    row cpu-grpo - 300 "$OUT/cpu-grpo.json" "$PYTHON" "$HERE/benchmarks/grpo_step.py" --dry_run \
        --json "$OUT/cpu-grpo.json"
fi
row qlora-cuda bitsandbytes 90 - "${train[@]}" --model_id tiny-qwen2-vl --use_qlora true --bf16 true \
    --output_dir "$OUT/qlora"
row zero2 deepspeed 120 - "${torchrun1[@]}" --model_id tiny-qwen2-vl --deepspeed "$HERE/configs/deepspeed_zero2.json" \
    --output_dir "$OUT/zero2"
row zero3 deepspeed 120 - "${torchrun1[@]}" --model_id tiny-qwen2-vl --deepspeed "$HERE/configs/deepspeed_zero3.json" \
    --output_dir "$OUT/zero3"
row fsdp2 - 120 - "${torchrun1[@]}" --model_id tiny-qwen2-vl --fsdp --fsdp_config "$HERE/configs/fsdp2.json" \
    --activation_checkpointing false --output_dir "$OUT/fsdp2"
row throughput-2b trl 180 "$OUT/throughput-2b.json" "${bench[@]}" --size qwen2-vl-2b --rows vlmtune,vlmtune+group,trl \
    --json "$OUT/throughput-2b.json"
row packing-flash-attn flash_attn 90 "$OUT/packing-fa.json" "${bench[@]}" --size qwen2-vl-2b --rows vlmtune+packing \
    --attn flash_attention_2 --json "$OUT/packing-fa.json"
row throughput-7b-lora trl,flash_attn 240 "$OUT/throughput-7b.json" "${bench[@]}" --size qwen2-vl-7b \
    --activation_checkpointing --attn flash_attention_2 --rows vlmtune,trl --json "$OUT/throughput-7b.json"
row grpo-step - 120 "$OUT/grpo.json" "$PYTHON" "$HERE/benchmarks/grpo_step.py" --json "$OUT/grpo.json"
row grpo-zero3 deepspeed,accelerate 180 "$OUT/grpo-zero3.json" "$PYTHON" "$HERE/benchmarks/grpo_launch.py" --mode zero3 \
    --json "$OUT/grpo-zero3.json"
row grpo-server vllm,deepspeed 300 "$OUT/grpo-server.json" "$PYTHON" "$HERE/benchmarks/grpo_launch.py" --mode server \
    --json "$OUT/grpo-server.json"
row vllm-cuda vllm 180 "$OUT/vllm.json" "$PYTHON" "$HERE/benchmarks/generation.py" --model_id tiny-qwen2-vl \
    --device cuda --dtype bfloat16 --samples 256 --json "$OUT/vllm.json"

# One JSON and one markdown table of every row.
"$PYTHON" - "$ROWS" "$OUT" <<'EOF'
import json, sys, pathlib
rows = [json.loads(line) for line in open(sys.argv[1])]
out = pathlib.Path(sys.argv[2])
(out / "results.json").write_text(json.dumps(rows, indent=2))
lines = ["| row | status | seconds | result |", "|---|---|---:|---|"]
for r in rows:
    result = json.dumps(r.get("result"))[:200] if "result" in r else ""
    lines.append(f"| {r['row']} | {r['status']} | {r['seconds']} | {result} |")
(out / "results.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
