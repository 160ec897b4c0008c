#!/usr/bin/env python3
"""tests/isbi_challenge_reference.py — the ISBI 2012 challenge's measures, ported from its own Java
code for the test, and the check that `examples/evaluate --json` reports the same numbers.

The port follows Fiji's Trainable_Segmentation (trainableSegmentation.metrics.PixelError,
RandError, VariationOfInformation, ClassificationStatistics, utils.WatershedTransform2D, and
VIB-lib's util.FindConnectedRegions for the connected components) statement by statement: the
Java's threshold loop `for (double th = min; th <= max; th += step)`, the 32-bit probability
compared with the double threshold, the ground truth re-thresholded and labelled at every
threshold, the contingency matrix divided by n, the sums in the Java's loop order, its
`== 0` special cases, IEEE division and logarithm (0/0 = NaN, log 0 = -inf), the per-slice or
pooled aggregation of each method and the "maximal score" loops that start at 0. It shares no
code with the C++ library (docs/measures.md explains the definitions in words).

The fixture: crops of real ISBI 2012 training slices (data/isbi2012, shipped with the
repository) with deterministic, realistic probability maps made here: the ground truth's
interior blurred, a smooth random uncertainty, membrane gaps that merge cells, spurious membrane
lines and blobs inside cells, saturated 0.0 / 1.0 regions, and pixels on exact multiples of 0.1
in float32 (where comparing in float or in double decides the pixel). Non-square crops, so a
swapped x/y order shows. Three stacks: realistic maps; special cases (a constant 1.0 and a
constant 0.0 prediction, a slice with one ground-truth region, a map quantised to tenths); a
slice whose ground truth has no foreground beside a normal one.

Usage: isbi_challenge_reference.py --evaluate BIN --data DIR --work DIR
       isbi_challenge_reference.py --maps-only DIR --data DIR   (full slices 20-24, for timing)
       isbi_challenge_reference.py --evaluate BIN --data DIR --work DIR --pred VAL_DIR
           (a folder of real maps, e.g. train_em's OUT/val, against the labels of the same names)
Exit 0 when every measure, per-threshold value and best threshold agrees; 1 otherwise; 77 (CTest's
skip) when numpy is missing.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import zlib

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed (Debian: python3-numpy; scripts/run-tests installs it)")
    sys.exit(77)

INF = float("inf")
NAN = float("nan")


# ---- Java arithmetic -----------------------------------------------------------------------------

def jdiv(a, b):
    """a / b with IEEE semantics, as Java's double division (Python raises on division by zero)."""
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)
    return a / b


def jlog(x):
    """Java's Math.log: log 0 = -inf, log of a negative number or NaN = NaN."""
    if math.isnan(x) or x < 0.0:
        return NAN
    if x == 0.0:
        return -INF
    return math.log(x)


def java_thresholds(min_th, max_th, step):
    """for (double th = minThreshold; th <= maxThreshold; th += stepThreshold)"""
    out = []
    th = min_th
    while th <= max_th:
        out.append(th)
        th += step
    return out


# ---- files -----------------------------------------------------------------------------------------

def read_png_grey8(path):
    """8-bit greyscale, non-interlaced PNG (what data/isbi2012 holds)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(data):
        length, = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour == 0 and interlace == 0, f"{path}: not 8-bit grey"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    out = np.zeros((height, width), dtype=np.int64)
    prev = np.zeros(width, dtype=np.int64)
    for y in range(height):
        row = raw[y * (width + 1):(y + 1) * (width + 1)]
        kind, line = row[0], np.frombuffer(row[1:], dtype=np.uint8).astype(np.int64)
        cur = line.copy()
        if kind == 1:
            for x in range(1, width):
                cur[x] = (cur[x] + cur[x - 1]) & 255
        elif kind == 2:
            cur = (line + prev) & 255
        elif kind == 3:
            for x in range(width):
                left = cur[x - 1] if x > 0 else 0
                cur[x] = (line[x] + (left + prev[x]) // 2) & 255
        elif kind == 4:
            for x in range(width):
                a = cur[x - 1] if x > 0 else 0
                b = prev[x]
                c = prev[x - 1] if x > 0 else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                cur[x] = (line[x] + pred) & 255
        out[y] = cur
        prev = cur
    return out


def lzw_decode(data):
    """TIFF's LZW (compression 5): MSB-first codes of 9 to 12 bits, clear 256, end 257, the code
    width growing one code early."""
    out, table, prev = bytearray(), [bytes([i]) for i in range(256)] + [b"", b""], None
    width, bit_pos, total_bits = 9, 0, len(data) * 8
    while bit_pos + width <= total_bits:
        code = int.from_bytes(data[bit_pos // 8:bit_pos // 8 + 3].ljust(3, b"\0"), "big")
        code = (code >> (24 - width - bit_pos % 8)) & ((1 << width) - 1)
        bit_pos += width
        if code == 256:
            table, width, prev = table[:258], 9, None
            continue
        if code == 257:
            break
        if prev is None:
            entry = table[code]
        else:
            entry = table[code] if code < len(table) else prev + prev[:1]
            table.append(prev + entry[:1])
        out += entry
        prev = entry
        if len(table) >= (1 << width) - 1 and width < 12:
            width += 1
    return bytes(out)


def read_tiff_grey(path):
    """First page of a little-endian greyscale TIFF: uint8 or float32, uncompressed or LZW, in
    strips (what write_tiff here and unetcore's write_tiff produce)."""
    data = open(path, "rb").read()
    assert data[:4] == b"II*\x00", f"{path}: not a little-endian TIFF"
    offset, = struct.unpack("<I", data[4:8])
    count, = struct.unpack("<H", data[offset:offset + 2])
    tags = {}
    for k in range(count):
        tag, kind, n, value = struct.unpack("<HHII", data[offset + 2 + 12 * k:offset + 14 + 12 * k])
        if kind == 3 and n == 1:
            value &= 0xFFFF
        if n > 1:
            fmt = "<" + ("H" if kind == 3 else "I") * n
            value = list(struct.unpack(fmt, data[value:value + struct.calcsize(fmt)]))
        tags[tag] = value if isinstance(value, list) else [value]
    width, height, bits = tags[256][0], tags[257][0], tags[258][0]
    compression, sample_format = tags[259][0], tags.get(339, [1])[0]
    assert tags.get(317, [1])[0] == 1, f"{path}: predictors are not supported"
    raw = b""
    for start, size in zip(tags[273], tags[279]):
        strip = data[start:start + size]
        raw += lzw_decode(strip) if compression == 5 else strip
    dtype = {(32, 3): "<f4", (8, 1): "u1"}[(bits, sample_format)]
    return np.frombuffer(raw, dtype=dtype)[:width * height].reshape(height, width)


def write_tiff(path, image):
    """One-strip uncompressed little-endian TIFF, uint8 or float32 greyscale."""
    height, width = image.shape
    if image.dtype == np.float32:
        bits, sample_format = 32, 3
    else:
        assert image.dtype == np.uint8
        bits, sample_format = 8, 1
    pixels = image.astype(image.dtype.newbyteorder("<")).tobytes()
    tags = [(256, 4, width), (257, 4, height), (258, 3, bits), (259, 3, 1), (262, 3, 1),
            (273, 4, 0), (277, 3, 1), (278, 4, height), (279, 4, len(pixels)), (284, 3, 1),
            (339, 3, sample_format)]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(tags) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset))
    out += struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        if tag == 273:
            value = data_offset
        if kind == 3:
            out += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, 1, value)
    out += struct.pack("<I", 0)
    out += pixels
    with open(path, "wb") as f:
        f.write(out)


# ---- the fixture's probability maps -----------------------------------------------------------------

def blur(image, sigma):
    radius = int(3 * sigma + 0.5)
    xs = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-xs * xs / (2 * sigma * sigma))
    kernel /= kernel.sum()
    padded = np.pad(image, radius, mode="reflect")
    rows = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 0, rows)


def realistic_map(truth, seed):
    """What a partly trained U-Net gives: soft membranes, uncertainty, gaps and false membranes."""
    rng = np.random.default_rng(seed)
    h, w = truth.shape
    interior = (truth > 0).astype(np.float64)
    p = 0.08 + 0.84 * blur(interior, 1.3)
    p += 0.22 * blur(rng.standard_normal((h, w)), 2.5) / 0.16
    yy, xx = np.mgrid[0:h, 0:w]
    membrane = np.argwhere(interior == 0)
    for k in range(max(3, h * w // 2500)):  # gaps: a membrane spot read as interior (merges cells)
        y, x = membrane[rng.integers(len(membrane))]
        p[(yy - y) ** 2 + (xx - x) ** 2 <= rng.integers(2, 6)] = 0.55 + 0.4 * rng.random()
    inside = np.argwhere(interior > 0)
    for k in range(max(3, h * w // 3000)):  # spurious membrane lines and blobs inside cells
        y, x = inside[rng.integers(len(inside))]
        angle, length = rng.random() * math.pi, rng.integers(3, 25)
        for t in range(length):
            yy0, xx0 = int(round(y + t * math.sin(angle))), int(round(x + t * math.cos(angle)))
            if 0 <= yy0 < h and 0 <= xx0 < w:
                p[yy0, xx0] = min(p[yy0, xx0], 0.05 + 0.4 * rng.random())
    p = np.clip(p, 0.0, 1.0)
    p[blur(interior, 2.0) > 0.995] = 1.0            # saturated softmax deep inside cells
    p[blur(interior, 1.0) < 0.002] = 0.0            # and deep in thick membrane
    tenths = rng.random((h, w)) < 0.05               # exact float32 tenths: float vs double compare
    p[tenths] = rng.integers(0, 11, size=int(tenths.sum())) / 10.0
    return p.astype(np.float32)


# ---- the Java, ported -------------------------------------------------------------------------------

def find_connected_regions(binary):
    """util.FindConnectedRegions on an 8-bit image with 4-adjacency, values > 0 in regions: labels
    1, 2, ... in the raster order (y outer, x inner) of each region's first pixel. [y][x]."""
    h, w = binary.shape
    labels = [[0] * w for _ in range(h)]
    fg = binary.tolist()
    region = 0
    for y0 in range(h):
        for x0 in range(w):
            if fg[y0][x0] <= 0 or labels[y0][x0]:
                continue
            region += 1
            labels[y0][x0] = region
            stack = [(x0, y0)]
            while stack:
                x, y = stack.pop()
                for u, v in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)):
                    if 0 <= u < w and 0 <= v < h and fg[v][u] > 0 and not labels[v][u]:
                        labels[v][u] = region
                        stack.append((u, v))
    return labels


MASK, WSHED, INIT, INQUEUE = -2, 0, -1, -3


def watershed_transform_2d(image):
    """utils.WatershedTransform2D(input, 4).apply() on a ByteProcessor (getMin() 0, getMax() 255);
    image[y][x] grey values. Returns labels[y][x] (the Java's INIT -> 0, dams WSHED = 0)."""
    size2, size1 = len(image), len(image[0])  # height, width
    h_min, h_max = 0.0, 255.0
    tab = [[INIT] * size2 for _ in range(size1)]  # tabLabels[x][y]
    current_label = 0
    flag = False
    # extractPixelValues: x outer, y inner; Collections.sort by value, ties by creation order.
    pixel_list = []
    for x in range(size1):
        for y in range(size2):
            value = float(image[y][x])
            if h_min <= value <= h_max:
                pixel_list.append((value, len(pixel_list), x, y))  # (value, seqNum, cursor)
    pixel_list.sort(key=lambda r: (r[0], r[1]))

    def neighbours(x, y):  # Neighborhood2DC4
        return ((x - 1, y), (x, y - 1), (x + 1, y), (x, y + 1))

    fifo = []
    head = 0
    h = h_min
    current_index = 0
    while h < h_min:
        h = pixel_list[current_index][0]
        current_index += 1
    height_index1 = current_index
    height_index2 = current_index
    while current_index < len(pixel_list) and h <= h_max:
        h = pixel_list[current_index][0]
        for pixel_index in range(height_index1, len(pixel_list)):
            value, _, i, j = pixel_list[pixel_index]
            if value != h:
                height_index1 = pixel_index
                break
            tab[i][j] = MASK
            for u, v in neighbours(i, j):
                if 0 <= u < size1 and 0 <= v < size2 and tab[u][v] >= WSHED:
                    fifo.append((i, j))
                    tab[i][j] = INQUEUE
                    break
        while head < len(fifo):
            i, j = fifo[head]
            head += 1
            for u, v in neighbours(i, j):
                if 0 <= u < size1 and 0 <= v < size2:
                    if tab[u][v] > 0:
                        if tab[i][j] == INQUEUE or (tab[i][j] == WSHED and flag):
                            tab[i][j] = tab[u][v]
                        elif tab[i][j] > 0 and tab[i][j] != tab[u][v]:
                            tab[i][j] = WSHED
                            flag = False
                    elif tab[u][v] == WSHED:
                        if tab[i][j] == INQUEUE:
                            tab[i][j] = WSHED
                            flag = True
                    elif tab[u][v] == MASK:
                        tab[u][v] = INQUEUE
                        fifo.append((u, v))
        pixel_index = height_index2
        while pixel_index < len(pixel_list):
            value, _, i, j = pixel_list[pixel_index]
            if value != h:
                height_index2 = pixel_index
                break
            if tab[i][j] == MASK:
                current_label += 1
                fifo.append((i, j))
                tab[i][j] = current_label
                while head < len(fifo):
                    i2, j2 = fifo[head]
                    head += 1
                    for u, v in neighbours(i2, j2):
                        if 0 <= u < size1 and 0 <= v < size2 and tab[u][v] == MASK:
                            fifo.append((u, v))
                            tab[u][v] = current_label
            pixel_index += 1
            current_index += 1
    # FloatProcessor of the labels (INIT -> 0), then convertToShortProcessor(false): clamp to 0.
    return [[max(tab[x][y], 0) for x in range(size1)] for y in range(size2)]


def overlap(labels1, labels2):
    """pij counts as {(i, j): count}, n = pixels with labels1 != 0, and the label maxima."""
    cont = {}
    n = 0
    max1 = max2 = 0
    for row1, row2 in zip(labels1, labels2):
        for a, b in zip(row1, row2):
            cont[(a, b)] = cont.get((a, b), 0) + 1
            if a != 0:
                n += 1
            max1, max2 = max(max1, a), max(max2, b)
    return cont, float(n), max1, max2


def table_n2(labels1, labels2):
    """The shared start of the foreground-restricted methods: pij /= n, a_i (i >= 1, over all j),
    b_j (i >= 1, j >= 1), aux = sum_i>=1 p_i0; sums in the Java's loop order, zero cells skipped
    (adding 0.0 changes nothing; with n = 0 only row 0 exists, which no sum below reads)."""
    cont, n, max1, max2 = overlap(labels1, labels2)
    pij = {key: jdiv(float(c), n) for key, c in cont.items()}
    ai = [0.0] * (max1 + 1)
    for (i, j) in sorted(pij):                 # for i: for j
        if i >= 1:
            ai[i] += pij[(i, j)]
    bj = [0.0] * (max2 + 1)
    for (i, j) in sorted(pij, key=lambda k: (k[1], k[0])):  # for j: for i
        if i >= 1 and j >= 1:
            bj[j] += pij[(i, j)]
    aux = 0.0
    for i in range(1, max1 + 1):
        aux += pij.get((i, 0), 0.0)
    cells = [pij[k] for k in sorted(pij) if k[0] >= 1 and k[1] >= 1]  # for i >= 1: for j >= 1
    return n, ai, bj, aux, cells


class ClassificationStatistics:
    def __init__(self, tp, tn, fp, fn):
        self.tp, self.tn, self.fp, self.fn = tp, tn, fp, fn
        self.precision = 1.0 if fp == 0 else jdiv(tp, tp + fp)
        self.recall = 1.0 if fn == 0 else jdiv(tp, tp + fn)
        self.f_score = 0.0
        if self.precision + self.recall > 0:
            self.f_score = jdiv(2.0 * self.precision * self.recall, self.precision + self.recall)


def rand_stats_n2(labels1, labels2):
    """RandError.getForegroundRestrictedRandIndexStatsN2(ShortProcessor, ShortProcessor)."""
    n, ai, bj, aux, cells = table_n2(labels1, labels2)
    sum_a2 = 0.0
    for a in ai:
        sum_a2 += a * a
    sum_b2 = 0.0
    for b in bj:
        sum_b2 += b * b
    sum_b2 += jdiv(aux, n)
    sum_ab2 = 0.0
    for c in cells:
        sum_ab2 += c * c
    sum_ab2 += jdiv(aux, n)
    n2 = n * n
    tp = n2 * sum_ab2
    fp = n2 * sum_b2 - tp
    fn = n2 * sum_a2 - tp
    tn = n2 - tp - fp - fn
    return ClassificationStatistics(tp, tn, fp, fn)


def vinfo_fscore(labels1, labels2):
    """VariationOfInformation.foregroundRestrictedFscore(ShortProcessor, ShortProcessor)."""
    n, ai, bj, aux, cells = table_n2(labels1, labels2)
    sum_a = 0.0
    for a in ai:
        if a != 0:
            sum_a += a * jlog(a)
    sum_b = 0.0
    for b in bj:
        if b != 0:
            sum_b += b * jlog(b)
    sum_b -= aux * jlog(n)
    sum_ab = 0.0
    for c in cells:
        if c != 0:
            sum_ab += c * jlog(c)
    sum_ab -= aux * jlog(n)
    ha, hb = -sum_a, -sum_b
    hab, hba = sum_b - sum_ab, sum_a - sum_ab
    prec = jdiv(ha - hab, ha)
    rec = jdiv(hb - hba, hb)
    if ha == 0:
        prec, rec = 0.0, 1.0
    if hb == 0:
        prec, rec = 1.0, 0.0
    return jdiv(2.0 * prec * rec, prec + rec)


def binarize(truth, proposal, th, proposal_foreground):
    """binaryLabel = label > th ? 255 : 0; binaryProposal = proposal > th ? fg : 255 - fg.
    `proposal` holds float32 values; Python compares them as doubles, like Java's float > double."""
    label = [[255 if float(v) > th else 0 for v in row] for row in truth.tolist()]
    other = 255 - proposal_foreground
    prop = [[proposal_foreground if v > th else other for v in row] for row in proposal.tolist()]
    return label, prop


def slice_scores(truth, proposal, th):
    """Per slice and threshold: pixel counts, Rand stats and V_info F of the components, and of
    the thinned proposal (getForegroundRestrictedRandAfterThinningStatsN2 /
    foregroundRestrictedScoreAfterThinningN2)."""
    label_pix = truth.astype(np.float32)  # PixelError.precisionRecallStats: labelPix > 0
    prop_fg = proposal.astype(np.float64) > th
    gt_fg = label_pix > 0
    pixel = (float(np.sum(prop_fg & gt_fg)), float(np.sum(~prop_fg & ~gt_fg)),
             float(np.sum(prop_fg & ~gt_fg)), float(np.sum(~prop_fg & gt_fg)))
    binary_label, binary_proposal = binarize(truth, proposal, th, 255)
    components1 = find_connected_regions(np.array(binary_label))
    components2 = find_connected_regions(np.array(binary_proposal))
    _, inverted = binarize(truth, proposal, th, 0)  # borders white for the watershed
    thinned = watershed_transform_2d(inverted)
    return {
        "pixel": pixel,
        "rand": rand_stats_n2(components1, components2),
        "vinfo": vinfo_fscore(components1, components2),
        "rand_thin": rand_stats_n2(components1, thinned),
        "vinfo_thin": vinfo_fscore(components1, thinned),
    }


def challenge_measures(truths, proposals):
    """Every measure at every threshold as the Java's stack methods aggregate the slices, and the
    maximal-score loops (max starts at 0, strict >, NaN never wins)."""
    thresholds = java_thresholds(0.0, 1.0, 0.1)
    scores = {k: [] for k in ("pixel_error", "rand_error", "vinfo_error",
                              "vrand_thinned_error", "vinfo_thinned_error")}
    for th in thresholds:
        per = [slice_scores(t, p, th) for t, p in zip(truths, proposals)]
        tp = tn = fp = fn = 0.0                  # PixelError.getPrecisionRecallStats(th): pooled
        for s in per:
            tp += s["pixel"][0]; tn += s["pixel"][1]; fp += s["pixel"][2]; fn += s["pixel"][3]
        scores["pixel_error"].append(ClassificationStatistics(tp, tn, fp, fn).f_score)
        tp = tn = fp = fn = 0.0                  # RandError.getForegroundRestrictedRandIndexStats(th)
        for s in per:
            tp += s["rand"].tp; tn += s["rand"].tn; fp += s["rand"].fp; fn += s["rand"].fn
        scores["rand_error"].append(ClassificationStatistics(tp, tn, fp, fn).f_score)
        f = 0.0                                  # VariationOfInformation.getForegroundRestrictedFscore
        for s in per:
            f += s["vinfo"]
        scores["vinfo_error"].append(f / len(per))
        f = 0.0                                  # getForegroundRestrictedRandAfterThinningStats(th, true)
        for s in per:
            f += s["rand_thin"].f_score
        scores["vrand_thinned_error"].append(f / len(per))
        f = 0.0                                  # getForegroundRestrictedScoreAfterThinning(th)
        for s in per:
            f += s["vinfo_thin"]
        scores["vinfo_thinned_error"].append(f / len(per))
    result = {"thresholds": thresholds, "measures": {}}
    for key, values in scores.items():
        best, best_th = 0.0, thresholds[0]
        for v, th in zip(values, thresholds):
            if v > best:
                best, best_th = v, th
        result["measures"][key] = {"error": 1.0 - best, "best_threshold": best_th,
                                   "per_threshold": [1.0 - v for v in values]}
    return result


# ---- the fixture and the comparison ----------------------------------------------------------------

def load_truth(data, name):
    return read_png_grey8(os.path.join(data, "train", "labels", name + ".png"))


def fixture_stacks(data):
    def crop(name, y, x, h, w):
        return load_truth(data, name)[y:y + h, x:x + w]

    realistic = []
    for k, (name, y, x, h, w) in enumerate([("20", 40, 300, 150, 110), ("22", 200, 60, 128, 128),
                                             ("24", 330, 210, 100, 140)]):
        t = crop(name, y, x, h, w)
        realistic.append((f"r{name}", t, realistic_map(t, 1000 + k)))

    special = []
    t = crop("21", 100, 100, 90, 120)
    special.append(("s_all_interior", t, np.ones(t.shape, dtype=np.float32)))
    t = crop("23", 250, 250, 110, 80)
    special.append(("s_all_membrane", t, np.zeros(t.shape, dtype=np.float32)))
    full = load_truth(data, "21")
    labels = np.array(find_connected_regions((full > 0).astype(np.int64)))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    biggest = int(np.argmax(sizes))
    ys, xs = np.nonzero(labels == biggest)
    y0, y1, x0, x1 = max(ys.min() - 3, 0), ys.max() + 4, max(xs.min() - 3, 0), xs.max() + 4
    one = np.where(labels[y0:y1, x0:x1] == biggest, 255, 0)
    special.append(("s_one_region", one, realistic_map(one, 2001)))
    t = crop("20", 10, 10, 70, 95)
    special.append(("s_tenths", t, (np.round(realistic_map(t, 2003) * 10) / 10).astype(np.float32)))

    empty = []
    t = np.zeros((60, 75), dtype=np.int64)
    empty.append(("e_no_foreground", t, realistic_map(crop("22", 0, 0, 60, 75), 3001)))
    t = crop("23", 300, 20, 80, 90)
    empty.append(("e_normal", t, realistic_map(t, 3002)))
    return [("realistic", realistic), ("special cases", special), ("empty ground truth", empty)]


def compare(name, expected, got, tolerance):
    failures = []
    thresholds = got["thresholds"]
    if thresholds != expected["thresholds"]:
        failures.append(f"thresholds {thresholds} != the Java loop's {expected['thresholds']}")
    for key, m in expected["measures"].items():
        g = got[key]
        if g is None or abs(g - m["error"]) > tolerance:
            failures.append(f"{key}: evaluate {g}, Java port {m['error']}")
        # The best threshold is the first maximum. Two thresholds whose scores are equal in
        # exact arithmetic (the same binary images on every slice, or a score that is exactly 0
        # in one program and 1e-16 in the other) are told apart by rounding alone, which differs
        # between any two implementations (the order of a sum, Java's Math.log against C's
        # log): evaluate must name the first threshold whose port score is within the tolerance
        # of the port's best.
        got_th = got["best_threshold"][key]
        first = next(th for th, e in zip(expected["thresholds"], m["per_threshold"])
                     if abs(e - m["error"]) <= tolerance)
        if got_th != first:
            failures.append(f"{key}: best threshold {got_th}, Java port {m['best_threshold']} "
                            f"(first within rounding: {first})")
        elif got_th != m["best_threshold"]:
            print(f"  {name} {key}: thresholds {got_th} and {m['best_threshold']} tie within rounding")
        for th, gv, ev in zip(expected["thresholds"], got["per_threshold"][key], m["per_threshold"]):
            if math.isnan(ev) != (gv is None) or (gv is not None and abs(gv - ev) > tolerance):
                failures.append(f"{key} at th {th}: evaluate {gv}, Java port {ev}")
    print(f"{name}: " + ", ".join(f"{k} {m['error']:.6f} (th {m['best_threshold']:.1f})"
                                  for k, m in expected["measures"].items())
          + f"; evaluate's pooled V_info error {got['vinfo_error_pooled']:.6f}")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--evaluate", help="the examples/evaluate binary")
    ap.add_argument("--data", required=True, help="data/isbi2012")
    ap.add_argument("--work", help="scratch folder")
    ap.add_argument("--maps-only", help="write full slices 20-24 and realistic maps here, then stop")
    ap.add_argument("--pred", help="instead of the fixture: score this folder of float TIFF maps "
                    "(e.g. train_em's val/) against --data's labels, port and evaluate (slow: minutes)")
    args = ap.parse_args()

    if args.pred:
        names = sorted(f[:-4] for f in os.listdir(args.pred) if f.endswith(".tif"))
        truths = [load_truth(args.data, n) for n in names]
        maps = [read_tiff_grey(os.path.join(args.pred, n + ".tif")) for n in names]
        out = os.path.join(args.work, "evaluate.json")
        os.makedirs(args.work, exist_ok=True)
        subprocess.run([args.evaluate, "--pred", args.pred, "--truth",
                        os.path.join(args.data, "train", "labels"), "--json", out, "--no-warping"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        failures = compare(args.pred, challenge_measures(truths, maps), json.load(open(out)), 1e-12)
        for f in failures:
            print("MISMATCH " + f)
        print("isbi_challenge_reference: " + ("ok" if not failures else f"{len(failures)} mismatches"))
        return 1 if failures else 0

    if args.maps_only:
        for sub in ("pred", "truth"):
            os.makedirs(os.path.join(args.maps_only, sub), exist_ok=True)
        for k, name in enumerate(["20", "21", "22", "23", "24"]):
            t = load_truth(args.data, name)
            write_tiff(os.path.join(args.maps_only, "truth", name + ".tif"), t.astype(np.uint8))
            write_tiff(os.path.join(args.maps_only, "pred", name + ".tif"), realistic_map(t, 500 + k))
        return 0

    # Tolerance: both sides compute the same doubles; the C++ sums counts where the Java sums
    # count/n fractions, in another order, so values may differ by a few ulps of 1 (~1e-15).
    tolerance = 1e-12
    failures = []
    for stack_name, stack in fixture_stacks(args.data):
        folder = os.path.join(args.work, stack_name.replace(" ", "_"))
        for sub in ("pred", "truth"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        for name, truth, proposal in stack:
            write_tiff(os.path.join(folder, "truth", name + ".tif"), truth.astype(np.uint8))
            write_tiff(os.path.join(folder, "pred", name + ".tif"), proposal)
        out = os.path.join(folder, "evaluate.json")
        subprocess.run([args.evaluate, "--pred", os.path.join(folder, "pred"), "--truth",
                        os.path.join(folder, "truth"), "--json", out, "--no-warping"],
                       check=True, stdout=subprocess.DEVNULL)
        got = json.load(open(out))
        order = sorted(range(len(stack)), key=lambda i: stack[i][0])  # evaluate's file order
        expected = challenge_measures([stack[i][1] for i in order], [stack[i][2] for i in order])
        failures += [f"{stack_name}: {f}" for f in compare(stack_name, expected, got, tolerance)]
    for f in failures:
        print("MISMATCH " + f)
    print("isbi_challenge_reference: " + ("ok" if not failures else f"{len(failures)} mismatches"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
