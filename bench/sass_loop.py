#!/usr/bin/env python3
"""bench/sass_loop.py — a static look at the GEMM kernels' inner loops, no GPU needed.

For each kernel of a `cuobjdump -sass` listing it finds the main loop (the backward branch whose
body holds the most FFMA + HMMA) and counts, per loop iteration (one K slice): instructions,
FFMA, HMMA (tensor-core mma.sync), shared loads (LDS, LDSM = ldmatrix), shared stores, global
loads (LDG) and asynchronous copies (LDGSTS = cp.async), local-memory accesses (LDL/STL:
register spills), barriers and cp.async waits (DEPBAR). With `cuobjdump -res-usage` it adds
registers, static shared memory and spill bytes, and the occupancy (blocks and warps per SM on
sm_90: 64 K registers, 228 KB shared memory, 2048 threads, 32 blocks; the tensor-core kernels'
dynamic shared memory is read from the kernel's name via its tiling and precision).

The shares answer "what limits this loop": one warp instruction issues per scheduler and clock,
so a loop whose FFMA share is f reaches at most f of the FP32 peak when issue is the limit (the
first GPU run's convolutions sat at 8–14 % of peak, docs/kernels-conv.md); for the tensor-core
loops, instructions per HMMA against the HMMA pipe's rate (bench/time_model.py).

Usage (cuobjdump ships with the full CUDA toolkit; where it lacks it, PyPI's
nvidia-cuda-cuobjdump wheel holds the binary; set CUOBJDUMP to its path):
  nvcc -std=c++20 -O3 -arch=sm_90 -I. -I/usr/include/eigen3 -DUNET_CUDA_GPU=1 \\
       --expt-relaxed-constexpr -c kernels/conv2d.cu -o /tmp/conv2d.o
  python3 bench/sass_loop.py /tmp/conv2d.o [--json out.json]     # runs cuobjdump itself
  python3 bench/sass_loop.py /tmp/conv2d.sass                    # or a saved -sass listing
"""
import collections
import json
import os
import re
import shutil
import subprocess
import sys

SM90 = dict(regs=65536, smem=228 * 1024, smem_reserved=1024, threads=2048, blocks=32)


def short_name(mangled):
    """tiled_kernel<Tiling<128,128,8,8>, ForwardOp<3>> → 'fp32 Tiling<128,128,8,8> ForwardOp<3>'."""
    prec = re.search(r'tc_kernelILN\w*?PrecisionE(\d)E', mangled)
    precision = {'1': 'tf32', '2': 'bf16'}.get(prec.group(1), '?') if prec else 'fp32'
    tiling = re.search(r'TilingILi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)E', mangled)
    op = re.search(r'\d+([A-Za-z]+Op)(?:ILi(\d+)ELb(\d)E|ILi(\d+)E|ILb(\d)ELb(\d)E)?', mangled)
    if not op:
        return mangled[:80]
    t = f"Tiling<{','.join(tiling.groups())}>" if tiling else "Tiling<64,64,4,4>"  # the first version had one
    args = [a for a in op.groups()[1:] if a is not None]
    return f"{precision} {t} {op.group(1)}" + (f"<{','.join(args)}>" if args else "")


def cuobjdump():
    for c in (os.environ.get('CUOBJDUMP'), shutil.which('cuobjdump'), '/usr/local/cuda/bin/cuobjdump'):
        if c and os.path.exists(c):
            return c
    sys.exit("sass_loop: no cuobjdump (set CUOBJDUMP, or pip install nvidia-cuda-cuobjdump)")


def read_listing(path):
    if path.endswith('.sass') or path.endswith('.txt'):
        return open(path).read(), ''
    sass = subprocess.run([cuobjdump(), '-sass', path], capture_output=True, text=True, check=True).stdout
    res = subprocess.run([cuobjdump(), '-res-usage', path], capture_output=True, text=True, check=True).stdout
    return sass, res


def resources(res_text):
    """{mangled name: {regs, stack, shared}} from cuobjdump -res-usage."""
    out = {}
    name = None
    for line in res_text.split('\n'):
        m = re.search(r'Function (\S+):', line)
        if m:
            name = m.group(1)
            continue
        m = re.search(r'REG:(\d+) STACK:(\d+) SHARED:(\d+)', line)
        if m and name:
            out[name] = dict(regs=int(m.group(1)), stack=int(m.group(2)), shared=int(m.group(3)))
    return out


def tc_dynamic_smem(short, mangled=''):
    """The tensor-core kernel's dynamic shared memory (kernels/implicit_gemm_tc.cuh's layout)."""
    m = re.match(r'(tf32|bf16) Tiling<(\d+),(\d+),\d+,\d+> (\w+)', short)
    if not m:
        return 0
    prec, tm, tn, op = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
    a_kfast, b_kfast = {'ForwardOp': (True, False), 'BackwardDataOp': (True, False),
                        'BackwardWeightOp': (True, True)}.get(op, (True, False))
    if 'upconv2d_cu' in mangled and op == 'ForwardOp':
        a_kfast, b_kfast = False, False  # w[c][r] and x[c][pix]: both run along M or N
    pad_k, pad_row = (4, 8) if prec == 'tf32' else (4 if a_kfast and b_kfast else 8, 4)
    tile = lambda kfast, rows: rows * (32 + pad_k) if kfast else 32 * (rows + pad_row)
    return 4 * 3 * (tile(a_kfast, tm) + tile(b_kfast, tn))


def occupancy(regs, smem_bytes, threads=256):
    per_block_regs = ((regs + 7) // 8 * 8) * threads
    by_regs = SM90['regs'] // per_block_regs if per_block_regs else SM90['blocks']
    by_smem = SM90['smem'] // (smem_bytes + SM90['smem_reserved']) if smem_bytes else SM90['blocks']
    return max(0, min(by_regs, by_smem, SM90['threads'] // threads, SM90['blocks']))


def analyse(sass, res_text):
    res = resources(res_text)
    rows = []
    for block in re.split(r'\n\s*Function : ', sass)[1:]:
        name = block.split('\n')[0].strip()
        if 'tiled_kernel' not in name and 'tc_kernel' not in name:
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
            work = sum(1 for b in body if b.split()[0].startswith(('FFMA', 'HMMA')))
            if best is None or work > best[0]:
                best = (work, body)
        short = short_name(name)
        row = dict(kernel=short, mangled=name)
        if best is None:
            row['loop'] = None
        else:
            body = best[1]
            ops = collections.Counter(b.split()[0].split('.')[0] for b in body)
            row['loop'] = dict(instructions=len(body), ffma=ops['FFMA'], hmma=ops['HMMA'], lds=ops['LDS'],
                               ldsm=ops['LDSM'], sts=ops['STS'], ldg=ops['LDG'], ldgsts=ops['LDGSTS'],
                               local=ops['LDL'] + ops['STL'], bar=ops['BAR'], depbar=ops['DEPBAR'])
        r = res.get(name)
        if r:
            dyn = tc_dynamic_smem(short, name)
            row.update(regs=r['regs'], spill_stack=r['stack'], static_smem=r['shared'], dynamic_smem=dyn,
                       blocks_per_sm=occupancy(r['regs'], r['shared'] + dyn))
        rows.append(row)
    return rows


def main(argv):
    args = [a for a in argv if not a.startswith('--')]
    json_out = None
    if '--json' in argv:
        json_out = argv[argv.index('--json') + 1]
        args.remove(json_out)
    if not args:
        sys.exit(__doc__)
    rows = []
    for path in args:
        sass, res = read_listing(path)
        rows += analyse(sass, res)
    for r in rows:
        l = r['loop']
        if l is None:
            print(f"{r['kernel']:44s} no loop found")
            continue
        work = l['ffma'] or l['hmma']
        share = work / l['instructions']
        occ = f", {r['regs']} regs, stack {r['spill_stack']} B, {r['blocks_per_sm']} blocks/SM" if 'regs' in r else ''
        print(f"{r['kernel']:44s} loop {l['instructions']:5d} instr, {'HMMA' if l['hmma'] else 'FFMA'} {work:4d} "
              f"({share:4.0%}), LDS {l['lds']} LDSM {l['ldsm']} STS {l['sts']} LDG {l['ldg']} LDGSTS {l['ldgsts']}, "
              f"local {l['local']}, BAR {l['bar']}{occ}")
    if json_out:
        with open(json_out, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main(sys.argv[1:])
