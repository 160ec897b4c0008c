#!/bin/sh
# tests/isa_containment.sh LIBRARY — the library runs on any x86-64 CPU only if every instruction
# that needs AVX2 or AVX-512 sits in a function that runs at that level (kernels/cpu_simd.h): 512-bit
# registers and mask registers only in functions whose name says avx512, 256-bit registers only in
# functions whose name says avx2 or avx512. A shared inline function emitted with AVX-512 code
# (the hazard of compiling whole files for a level) would be picked by the linker for every
# caller and crash an AVX2-only CPU: this catches it. Skipped in -march=native builds (there every
# function may use the CPU's instructions) and where objdump is missing.
lib="$1"
if ! command -v objdump >/dev/null 2>&1; then echo "UNET_TEST_SKIPPED: no objdump"; exit 0; fi
if [ "${2:-OFF}" = "ON" ]; then echo "UNET_TEST_SKIPPED: UNET_NATIVE build (-march=native)"; exit 0; fi
objdump -d --no-show-raw-insn -C "$lib" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
  (/%zmm/ || /%k[0-7]/) && fn !~ /avx512/ { bad[fn] = "AVX-512 registers" }
  /%ymm/ && fn !~ /avx2|avx512/ { if (!(fn in bad)) bad[fn] = "256-bit registers" }
  { if (/%xmm|%ymm|%zmm/) vector++ }
  END {
    n = 0
    for (f in bad) { print "outside its level (" bad[f] "): " f; n++ }
    if (vector == 0) { print "no vector instructions found: is this the library?"; exit 1 }
    if (n > 0) exit 1
    print "isa_containment: every 256/512-bit instruction is in a function of its level"
  }'
