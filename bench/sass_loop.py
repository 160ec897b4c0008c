#!/usr/bin/env python3
"""bench/sass_loop.py — a static look at the tiled GEMM kernels' inner loops, no GPU needed.

For each kernel in a `cuobjdump -sass` listing it finds the loop (a backward branch) holding the
most FFMAs and counts its instructions: FFMA share, shared loads/stores, global loads, local
memory (register spills) and barriers. The FFMA share bounds the fraction of the FP32 peak a
loop can reach when instruction issue is the limit (one warp instruction per scheduler and
clock), which is what the first GPU run's convolutions were (docs/kernels-conv.md).

Usage (cuobjdump and nvdisasm come with the full CUDA toolkit; where it lacks them, PyPI's
nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm wheels hold both binaries):
  nvcc -std=c++20 -O3 -arch=sm_90 -I. -I/usr/include/eigen3 -DUNET_CUDA_GPU=1 \
       --expt-relaxed-constexpr -c kernels/conv2d.cu -o /tmp/conv2d.o
  cuobjdump -sass /tmp/conv2d.o > /tmp/conv2d.sass
  python3 bench/sass_loop.py /tmp/conv2d.sass
"""
import collections
import re
import sys


def short_name(mangled):
    """tiled_kernel<Tiling<128,128,8,8>, ForwardOp<3>> → 'Tiling<128,128,8,8> ForwardOp<3>'."""
    tiling = re.search(r'TilingILi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)E', mangled)
    op = re.search(r'\d+([A-Za-z]+Op)(?:ILi(\d+)E|IL[b](\d)EL[b](\d)E)?', mangled)
    if not op:
        return mangled[:80]
    t = f"Tiling<{','.join(tiling.groups())}>" if tiling else "(no Tiling)"
    args = [a for a in op.groups()[1:] if a is not None]
    return f"{t} {op.group(1)}" + (f"<{','.join(args)}>" if args else "")


def main(path):
    text = open(path).read()
    for block in re.split(r'\n\s*Function : ', text)[1:]:
        name = block.split('\n')[0].strip()
        if 'tiled_kernel' not in name:
            continue
        code = []
        for line in block.split('\n'):
            m = re.match(r'\s*/\*([0-9a-f]{4,})\*/\s+(.*?);', line)
            if m:
                code.append((int(m.group(1), 16), re.sub(r'^@!?U?P\w+\s+', '', m.group(2).strip())))
        index = {addr: i for i, (addr, _) in enumerate(code)}
        best = None
        for i, (addr, ins) in enumerate(code):
            target = re.search(r'BRA\b.*?0x([0-9a-f]+)', ins)
            if not target or int(target.group(1), 16) >= addr or int(target.group(1), 16) not in index:
                continue
            body = [c for _, c in code[index[int(target.group(1), 16)]:i + 1]]
            ffma = sum(1 for b in body if b.split()[0].startswith('FFMA'))
            if best is None or ffma > best[0]:
                best = (ffma, body)
        if best is None:
            print(f"{short_name(name)}: no loop found")
            continue
        ffma, body = best
        ops = collections.Counter(b.split()[0].split('.')[0] for b in body)
        print(f"{short_name(name):44s} loop {len(body):5d} instr, FFMA {ffma:4d} ({ffma / len(body):4.0%}), "
              f"LDS {ops['LDS']}, STS {ops['STS']}, LDG {ops['LDG']}, "
              f"local {ops['LDL'] + ops['STL']}, BAR {ops['BAR']}")


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
