#!/usr/bin/env bash
# The GPU path of the course: times short GPT-2 124M runs (T=1024, B=16) on one GPU — first the lecture's ladder
# (fp32 -> + TF32 -> + bf16 -> + compile -> + flash -> + vocab 50304 -> + fused AdamW), then
# fp32/tf32/bf16 x flash/naive x torch.compile on/off, and two full 524,288-token steps of the real training loop
# (--preset gpt2 --precision bf16 --compile) — and writes bench/results/gpu_<date>.json (tokens/s, MFU, peak memory,
# device, date), which the lessons show. Then GPT-2 124M against nanoGPT's model (bench/gpt2_124m.py; nanoGPT from
# $NANOGPT_DIR, a checkout carried to the machine, else ours alone) and the three losses' peak memory, time and
# agreement (bench/fused_loss.py), each to bench/results/*_gpu_<date>.json. Runs with the machine's own python3 and torch (no fastcore, datasets or
# network); under 10 minutes.
#
#   bash bench/gpu.sh              # on the GPU machine, from anywhere in the repository
#   bash bench/gpu.sh --smoke      # tiny sizes on the CPU: checks the script end to end in about a minute
#
# Extra flags go to bench/gpu_bench.py (see --help). If $OUT is set, the JSON is also copied there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
"$PY" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available())"
status=0
timeout 360 "$PY" bench/gpu_bench.py --budget-s 300 "$@" || status=$?
smoke=""; for a in "$@"; do [ "$a" = --smoke ] && smoke=--smoke; done
day="$(date +%F)"
json() { [ -n "$smoke" ] || echo --json "bench/results/$1_gpu_$day.json"; }   # a smoke run writes no results
timeout 180 "$PY" bench/gpt2_124m.py --device auto --no-hf --attention flash --rounds 10 $smoke ${NANOGPT_DIR:+--nanogpt "$NANOGPT_DIR"} \
    $(json gpt2_124m) || status=$?
timeout 60 "$PY" bench/fused_loss.py --device auto $smoke $(json fused_loss) || status=$?
if [ -n "${OUT:-}" ] && [ -d "${OUT}" ]; then cp bench/results/*_"$(date +%F)".json "$OUT"/ 2>/dev/null || true; fi
exit $status
