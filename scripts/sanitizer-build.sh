#!/usr/bin/env bash
# scripts/sanitizer-build.sh — the one configuration of the sanitizer builds (docs/reliability.md),
# sourced by scripts/run-tests (--asan, --tsan) and scripts/fuzz so they share build-asan.
#
#   unet_configure_sanitizer_build address|thread BUILD_DIR
#
# Debian's clang 14, optimised with debug information (reports name source lines); libFuzzer
# instrumentation of the readers in the address build. Left to the default build: the benchmarks,
# the GPU compile check, the Python module (an instrumented extension would need the sanitizer
# runtime preloaded into python3) and MPI (Open MPI's own allocations and threads are not ours).
# Then the run-time options: any report fails the test that made it; a refused allocation returns
# null, as the system's malloc does (the tests of OutOfMemoryError ask for 2^60 bytes).
unet_configure_sanitizer_build() {
  local sanitizer=$1 build_dir=$2
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
        -DUNET_SANITIZE="$sanitizer" -DUNET_FUZZ=$([ "$sanitizer" = address ] && echo ON || echo OFF) \
        -DUNET_BUILD_BENCH=OFF -DUNET_PYTHON=OFF -DUNET_MPI=OFF ${UNET_CMAKE_ARGS:-} >/dev/null
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  # The soak's 2000 CPU and 500 simulated-GPU steps take the default build a minute; instrumented,
  # the simulated ones alone take over ten. Its checks need only ~15 samples after the warm-up.
  export UNET_SOAK_STEPS=${UNET_SOAK_STEPS:-400}
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:allocator_may_return_null=1}
}
