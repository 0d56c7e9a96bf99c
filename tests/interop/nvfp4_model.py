"""Independent numpy model of the NVFP4 MoE numeric contract for the fp4moe interop test
(shared/spec/nvfp4-moe.md: §1 element formats, §2 block quantization, §3 scale layouts, §5 fused MoE forward),
plus a self-check of the model against hand-written facts from the spec."""

import numpy as np

F32 = np.float32
FLT_MAX = np.finfo(np.float32).max

# ---------------------------------------------------------------------------------------------------------------
# element formats (spec §1)
# ---------------------------------------------------------------------------------------------------------------

def _e4m3_table():
    vals = []
    for c in range(127):  # finite non-negative codes 0x00..0x7E
        e, m = c >> 3, c & 7
        vals.append(m * 2.0 ** -9 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7))
    return np.array(vals, dtype=np.float64)


E4M3_POS = _e4m3_table()                                   # code -> value, ascending
E4M3_ALL = np.concatenate([E4M3_POS, [np.nan], -E4M3_POS, [np.nan]])  # all 256 byte values
E2M1_POS = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float64)
E2M1_ALL = np.concatenate([E2M1_POS, -E2M1_POS])            # code 8 is -0.0


def nearest_code(a, table):
    """Index of the nearest entry of the ascending `table` to each a >= 0; ties go to the even index;
    values past the end saturate to the last entry."""
    a = np.asarray(a, dtype=np.float64)
    hi = np.clip(np.searchsorted(table, a, side="left"), 0, len(table) - 1)
    lo = np.clip(hi - 1, 0, len(table) - 1)
    d_lo = a - table[lo]
    d_hi = table[hi] - a
    take_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0))
    return np.where(take_hi, hi, lo).astype(np.uint8)


def e4m3_encode(s):
    """fp32 (non-negative here) -> E4M3 byte, RNE, saturating to 448."""
    return nearest_code(s, E4M3_POS)


def e2m1_encode(v):
    """fp32 -> E2M1 code, nearest, ties to the even code, saturating to ±6, sign kept (-0 -> 8)."""
    v = np.asarray(v, dtype=F32)
    code = nearest_code(np.abs(v), E2M1_POS)
    return np.where(np.signbit(v), code | 8, code).astype(np.uint8)


def bf16_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(F32)


def f32_to_bf16(x):
    """fp32 -> BF16 bits, round to nearest even (finite inputs)."""
    u = np.asarray(x, dtype=F32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def round_bf16(x):
    return bf16_to_f32(f32_to_bf16(np.asarray(x, dtype=np.float64).astype(F32))).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------------
# NVFP4 block quantization (spec §2) and scale layouts (spec §3), in float32 exactly as specified
# ---------------------------------------------------------------------------------------------------------------

def auto_gs(x):
    amax = F32(np.max(np.abs(np.asarray(x, dtype=F32)))) if np.size(x) else F32(0)
    if not (amax > 0 and np.isfinite(amax)):
        return F32(1.0)
    return F32(F32(448.0 * 6.0) / amax)


def quantize(x, gs):
    """x: float32 [rows, K]; gs: float32. Returns (packed uint8 [rows, K/2], scale bytes uint8 [rows, K/16])."""
    x = np.asarray(x, dtype=F32)
    gs = F32(gs)
    rows, k = x.shape
    blocks = x.reshape(rows, k // 16, 16)
    amax = np.max(np.abs(blocks), axis=2)                                  # fp32
    s = amax * F32(gs * (F32(1.0) / F32(6.0)))                               # each product fp32, RN
    sf = e4m3_encode(s)
    sff = E4M3_POS[sf].astype(F32)
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.minimum(F32(1.0) / (sff * (F32(1.0) / gs)), FLT_MAX).astype(F32)
    inv = np.where(sff == 0, F32(0.0), inv).astype(F32)
    with np.errstate(over="ignore"):
        q = e2m1_encode((blocks * inv[:, :, None]).astype(F32)).reshape(rows, k)
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8)
    return packed, sf


def unpack_codes(packed):
    packed = np.asarray(packed, dtype=np.uint8)
    codes = np.empty(packed.shape[:-1] + (packed.shape[-1] * 2,), dtype=np.uint8)
    codes[..., 0::2] = packed & 0xF
    codes[..., 1::2] = packed >> 4
    return codes


def dequant_unscaled(packed, sf):
    """e2m1(q) · sf (no global scale) in float64; sf linear [..., K/16]."""
    vals = E2M1_ALL[unpack_codes(packed)]
    return vals * np.repeat(E4M3_ALL[np.asarray(sf, dtype=np.uint8)], 16, axis=-1)


def qdq_unscaled(x, gs):
    """Quantize fp32 rows per §2 with gs and return e2m1(q)·sf in float64."""
    p, s = quantize(np.asarray(x, dtype=F32), gs)
    return dequant_unscaled(p, s)


def swizzle_128x4(sf):
    rows, cols = sf.shape
    prow, pcol = -(-rows // 128) * 128, -(-cols // 4) * 4
    n_ktiles = pcol // 4
    m = np.arange(rows)[:, None]
    k = np.arange(cols)[None, :]
    off = (m // 128) * n_ktiles * 512 + (k // 4) * 512 + (m % 32) * 16 + ((m % 128) // 32) * 4 + (k % 4)
    out = np.zeros(prow * pcol, dtype=np.uint8)
    out[off.ravel()] = sf.ravel()
    return out.reshape(prow, pcol)


# ---------------------------------------------------------------------------------------------------------------
# MoE forward model (spec §5) in float64
# ---------------------------------------------------------------------------------------------------------------

def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def activation(kind, g, u, alpha=1.702, beta=1.0, limit=7.0):
    if kind == "silu":
        return g * sigmoid(g) * u
    if kind == "gelu_tanh":
        return 0.5 * g * (1.0 + np.tanh(0.7978845608 * (g + 0.044715 * g ** 3))) * u
    if kind == "relu2":
        return np.maximum(g, 0.0) ** 2
    if kind == "swiglu_clamped":
        gc = np.minimum(g, limit)
        uc = np.clip(u, -limit, limit)
        return gc * sigmoid(alpha * gc) * (uc + beta)
    raise ValueError(kind)


def moe_model(layer, x_bits, ids, tw, act, order="gate_up", mode="w4a16", gs1=None, gs2=None, offset=0,
              n_local=None, swiglu=None):
    """layer: dict with w13/w13_scale/w13_scale_2/w2/w2_scale/w2_scale_2 (linear scales, weight order as stored).
    Returns (out float64 [T, H] before the final BF16 rounding, max |h| over all evaluated pairs)."""
    t_count, hidden = x_bits.shape
    n_local = layer["w13"].shape[0] if n_local is None else n_local
    xf = bf16_to_f32(x_bits)
    a = qdq_unscaled(xf, gs1) if mode == "w4a4" else xf.astype(np.float64)
    out = np.zeros((t_count, hidden), dtype=np.float64)
    hmax = 0.0
    for le in range(n_local):
        t_idx, s_idx = np.nonzero(ids == offset + le)
        if t_idx.size == 0:
            continue
        w13 = dequant_unscaled(layer["w13"][le], layer["w13_scale"][le])
        w2 = dequant_unscaled(layer["w2"][le], layer["w2_scale"][le])
        ws13 = float(layer["w13_scale_2"][le])
        ws2 = float(layer["w2_scale_2"][le])
        alpha1 = ws13 / float(gs1) if mode == "w4a4" else ws13
        alpha2 = ws2 / float(gs2) if mode == "w4a4" else ws2
        f = (a[t_idx] @ w13.T) * alpha1
        inter = w2.shape[1]
        if act == "relu2":
            g, u = f, None
        elif order == "gate_up":
            g, u = f[:, :inter], f[:, inter:]
        elif order == "up_gate":
            u, g = f[:, :inter], f[:, inter:]
        elif order == "interleaved":
            g, u = f[:, 0::2], f[:, 1::2]
        else:
            raise ValueError(order)
        h = activation(act, g, u, **(swiglu or {}))
        hmax = max(hmax, float(np.max(np.abs(h))))
        h = qdq_unscaled(h.astype(F32), gs2) if mode == "w4a4" else round_bf16(h)
        y = (h @ w2.T) * alpha2
        out[t_idx] += tw[t_idx, s_idx][:, None].astype(np.float64) * y
    return out, hmax


def rel_l2(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(got - ref) / (den if den > 0 else 1.0))


def self_check():
    """Sanity of the numpy model against hand-written facts from the spec (not against the library)."""
    facts = []
    e4 = {0.0: 0x00, 2.0 ** -9: 0x01, 2.0 ** -6: 0x08, 1.0: 0x38, 448.0: 0x7E, 1000.0: 0x7E, 464.0: 0x7E,
          1.0625: 0x38, 1.1875: 0x3A, 3 * 2.0 ** -10: 0x02, 2.0 ** -10: 0x00}
    got = e4m3_encode(np.array(list(e4), F32))
    facts.append(("e4m3", np.array_equal(got, np.array(list(e4.values()), np.uint8))))
    e2 = {0.25: 0, 0.75: 2, 1.25: 2, 1.75: 4, 2.5: 4, 3.5: 6, 5.0: 6, -0.25: 8, -0.0: 8, 100.0: 7, -7.0: 15,
          0.26: 1, 5.01: 7}
    got = e2m1_encode(np.array(list(e2), F32))
    facts.append(("e2m1", np.array_equal(got, np.array(list(e2.values()), np.uint8))))
    sw = swizzle_128x4(np.arange(1, 1 + 130 * 5, dtype=np.uint32).reshape(130, 5).astype(np.uint8))
    facts.append(("swizzle", sw.shape == (256, 8) and sw.ravel()[1] == 2 and sw.ravel()[16] == 6 and
                  sw.ravel()[4] == (32 * 5 + 1) % 256 and sw.ravel()[512] == 5 and sw.ravel()[2 * 512] == (128 * 5 + 1) % 256))
    facts.append(("bf16", f32_to_bf16(np.array([1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8], F32)).tolist() ==
                  [0x3F80, 0x3F82]))
    bad = [n for n, ok in facts if not ok]
    return not bad, "ok" if not bad else f"wrong: {bad}"
