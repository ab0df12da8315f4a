#!/usr/bin/env bash
# Everything the CUDA backend needs checked on a GPU machine, in one run (about 5-10 minutes on an
# H100; bounded by the timeouts below). Run from the repository root:
#     bash csrc/cuda/gpu_check.sh [OUT_DIR]
# 1. builds the extension with AMI_ROBOT_CUDA=ON (fails if nvcc is missing) and prints the ptxas
#    resource report of the kernels;
# 2. runs the CUDA tests and the planning tests (the CUDA ones must not skip here);
# 3. runs the CUDA tests under compute-sanitizer memcheck, and racecheck / initcheck on a subset;
# 4. runs `ami-robot bench planner --device cuda --json` (lewm and mppi configurations).
# Logs and the benchmark JSON go to OUT_DIR (default: $OUT if set, else gpu_check_out/).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-${OUT:-gpu_check_out}}"
mkdir -p "$out"
status=0
step() { echo "=== $*" | tee -a "$out/summary.txt"; }
record() { local rc=$1 name=$2; echo "$name: rc=$rc" | tee -a "$out/summary.txt"; [ "$rc" = 0 ] || status=1; }

nvidia-smi | tee "$out/nvidia-smi.txt"
python="${PYTHON:-python3}"
if [ -x .venv/bin/python ]; then python=.venv/bin/python; fi
for module in torch numpy pytest pybind11 scikit_build_core; do  # the GPU machine brings its own torch
  "$python" -c "import $module" 2>/dev/null || { echo "missing Python module $module for $python" | tee -a "$out/summary.txt"; status=1; }
done
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/summary.txt"

step "build (AMI_ROBOT_CUDA=ON, ptxas resource usage)"
AMI_ROBOT_CUDA=ON "$python" -m pip install --no-build-isolation -v -e . \
  -Ccmake.define.AMI_ROBOT_CUDA_RESOURCE_USAGE=ON >"$out/build.log" 2>&1
record $? build
grep -E "ptxas info|Compiling entry|spill" "$out/build.log" >"$out/ptxas.txt" || true
"$python" -c "import ami_robot, ami_robot._core as c; print(ami_robot.build_info()); print('devices', c.cuda_device_count())" \
  | tee -a "$out/summary.txt"

step "CUDA tests"
timeout 900 "$python" -m pytest tests/test_cuda_planner.py tests/test_planning_parity.py -v -rs >"$out/test_cuda.log" 2>&1
record $? test_cuda
grep -E "passed|failed|skipped|SKIPPED" "$out/test_cuda.log" | tail -5 | tee -a "$out/summary.txt"

step "planning tests (all backends)"
timeout 900 "$python" -m pytest tests/test_planning_analytic.py tests/test_planning_api.py -q \
  >"$out/test_planning.log" 2>&1
record $? test_planning

sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)"
if [ -n "$sanitizer" ]; then
  small="not lewm_sized and not analytic"
  step "compute-sanitizer memcheck (CUDA tests)"
  timeout 1200 "$sanitizer" --tool memcheck --error-exitcode 97 --target-processes all \
    "$python" -m pytest tests/test_cuda_planner.py tests/test_planning_parity.py -q -m gpu -k "$small" \
    >"$out/memcheck.log" 2>&1
  record $? memcheck
  tail -3 "$out/memcheck.log" | tee -a "$out/summary.txt"
  step "compute-sanitizer racecheck (shared memory hazards; a subset)"
  timeout 900 "$sanitizer" --tool racecheck --error-exitcode 97 --target-processes all \
    "$python" -m pytest tests/test_planning_parity.py -q -m gpu -k "(rollout_cost and gelu) or injected_noise" \
    >"$out/racecheck.log" 2>&1
  record $? racecheck
  step "compute-sanitizer initcheck (a subset)"
  timeout 900 "$sanitizer" --tool initcheck --error-exitcode 97 --target-processes all \
    "$python" -m pytest tests/test_planning_parity.py -q -m gpu -k "injected_noise" >"$out/initcheck.log" 2>&1
  record $? initcheck
else
  echo "compute-sanitizer not found: memcheck not run" | tee -a "$out/summary.txt"
  status=1
fi

step "benchmark"
timeout 1200 "$python" -m ami_robot.cli bench planner --device cuda --repeats 20 --json "$out/bench_cuda.json" \
  >"$out/bench.log" 2>&1
record $? bench
cat "$out/bench.log" | tail -20 | tee -a "$out/summary.txt"
echo "gpu_check: status=$status (logs in $out)" | tee -a "$out/summary.txt"
exit $status
