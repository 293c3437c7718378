#!/usr/bin/env bash
# The checks that need a CUDA machine, in one go: the CUDA tests (masks, BlockMask,
# attention with them), the mask and packed == unpacked tests under that machine's torch,
# then the GPU benchmark. Logs land in $OUT (default benchmarks/out/).
#
#     bash benchmarks/gpu_check.sh [extra bench_gpu.py arguments]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PACKVIZ_BENCH_OUT="$out"
py="${PYTHON:-python3}"

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$py" -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__)"
  "$py" -c "import triton; print('triton', triton.__version__)" || echo "triton: not installed"
} 2>&1 | tee "$out/gpu_env.txt"

"$py" -m pytest -q tests/test_cuda.py tests/test_masks.py tests/test_equivalence.py \
  tests/test_torch_data.py packviz/masks.py 2>&1 | tee "$out/gpu_tests.txt"
tests=${PIPESTATUS[0]}

"$py" benchmarks/bench_gpu.py --cpu-limit-gib 8 "$@" 2>&1 | tee "$out/gpu_bench.txt"
bench=${PIPESTATUS[0]}
echo "tests exit $tests, benchmark exit $bench"
exit $((tests || bench))
