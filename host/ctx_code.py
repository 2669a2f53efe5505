"""The CTX input encoding (docs/protocol.md): a context-modelled binary arithmetic code.

Each element of the input tensor, read row by row as an offset `u` from the
fill value (the input zero point: MNIST background), is coded as a "differs
from fill" bit whose context is which of six already-decoded neighbours
(W, N, NW, NE, WW, NN) differ; an element that differs then codes its 8 bits,
the top four on a binary tree and the low four one per position, with a
context of the median predictor median(W, N, W + N - NW) in four classes.
Probabilities are 12-bit, start at 1/2 for every image and adapt by 1/16 per
bit, so the device needs no tables. The coder is the carry-less 32-bit binary
arithmetic coder of the PAQ family; the decoder reads zeros past the end of
the body.

`encode` is the readable reference (one image); `encode_batch` gives the same
bytes for many images at once, one numpy lane per image, fast enough to code a
whole test set before a run. `decode` is the host's reference decoder (the
firmware has its own in C, firmware/protocol/ctx.c).
"""

import numpy as np

PROB_BITS = 12
PROB_ONE = 1 << PROB_BITS
ADAPT_SHIFT = 4
ZERO_CONTEXTS = 64
CLASS_CONTEXTS = 20
CONTEXTS = ZERO_CONTEXTS + 4 * CLASS_CONTEXTS
MASK32 = 0xFFFFFFFF


def _neighbours(u):
    """u: uint8-valued int32 [..., H, W] -> a(W), b(N), c(NW), d(NE), e(WW), f(NN), 0 outside."""
    P = np.pad(u, [(0, 0)] * (u.ndim - 2) + [(2, 0), (2, 2)])
    return (
        P[..., 2:, 1:-3],
        P[..., 1:-1, 2:-2],
        P[..., 1:-1, 1:-3],
        P[..., 1:-1, 3:-1],
        P[..., 2:, 0:-4],
        P[..., :-2, 2:-2],
    )


def contexts(u):
    a, b, c, d, e, f = _neighbours(u)
    z = (a != 0) | (b != 0) << 1 | (c != 0) << 2 | (d != 0) << 3 | (e != 0) << 4 | (f != 0) << 5
    g = a + b - c
    pred = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), g))  # median(a, b, a+b-c)
    cls = np.clip(pred, 0, 255) >> 6
    return z.astype(np.int32), cls.astype(np.int32)


def decisions(u):
    """(contexts, bits) of one image u [H, W] (offsets from fill, 0..255), in coding order."""
    z, cls = contexts(u)
    u, z, cls = u.ravel(), z.ravel(), cls.ravel()
    ctxs, bits = [], []
    for i in range(u.size):
        v = int(u[i])
        ctxs.append(int(z[i]))
        bits.append(int(v != 0))
        if v:
            base = ZERO_CONTEXTS + int(cls[i]) * CLASS_CONTEXTS
            node = 1
            for k in range(7, 3, -1):  # top nibble: a binary tree
                bit = (v >> k) & 1
                ctxs.append(base + node)
                bits.append(bit)
                node = 2 * node + bit
            for k in range(3, -1, -1):  # low nibble: one context per bit position
                ctxs.append(base + 16 + 3 - k)
                bits.append((v >> k) & 1)
    return ctxs, bits


def encode(tensor, fill, width) -> bytes:
    """The code of one int8 tensor, read as rows of `width` elements (without the fill byte)."""
    u = (np.asarray(tensor, np.int32).reshape(-1, width) - int(fill)) & 0xFF
    ctxs, bits = decisions(u)
    p = [PROB_ONE // 2] * CONTEXTS
    x1, x2 = 0, MASK32
    out = bytearray()
    for ctx, bit in zip(ctxs, bits, strict=True):
        q = p[ctx]
        r = x2 - x1
        xmid = x1 + (r >> PROB_BITS) * q + (((r & (PROB_ONE - 1)) * q) >> PROB_BITS)
        if bit:
            x2 = xmid
            p[ctx] = q + ((PROB_ONE - q) >> ADAPT_SHIFT)
        else:
            x1 = xmid + 1
            p[ctx] = q - (q >> ADAPT_SHIFT)
        while not ((x1 ^ x2) & 0xFF000000):
            out.append(x2 >> 24)
            x1 = (x1 << 8) & MASK32
            x2 = ((x2 << 8) & MASK32) | 0xFF
    out.append((x1 >> 24) + 1)
    return bytes(out)


def decode(body: bytes, fill: int, size: int, width: int) -> np.ndarray:
    """Reference decoder of a code (without the fill byte); ValueError if bytes remain unread."""
    n = len(body)
    state = {"pos": 0, "x": 0, "x1": 0, "x2": MASK32}
    p = [PROB_ONE // 2] * CONTEXTS

    def next_byte() -> int:
        b = body[state["pos"]] if state["pos"] < n else 0
        state["pos"] += 1
        return b

    for _ in range(4):
        state["x"] = (state["x"] << 8) | next_byte()

    def bit_(ctx: int) -> int:
        q, x1, x2 = p[ctx], state["x1"], state["x2"]
        r = x2 - x1
        xmid = x1 + (r >> PROB_BITS) * q + (((r & (PROB_ONE - 1)) * q) >> PROB_BITS)
        if state["x"] <= xmid:
            y, x2 = 1, xmid
            p[ctx] = q + ((PROB_ONE - q) >> ADAPT_SHIFT)
        else:
            y, x1 = 0, xmid + 1
            p[ctx] = q - (q >> ADAPT_SHIFT)
        while not ((x1 ^ x2) & 0xFF000000):
            x1 = (x1 << 8) & MASK32
            x2 = ((x2 << 8) & MASK32) | 0xFF
            state["x"] = ((state["x"] << 8) & MASK32) | next_byte()
        state["x1"], state["x2"] = x1, x2
        return y

    rows = size // width
    u = np.zeros((rows + 2, width + 4), np.int32)  # two rows above, two columns either side: zeros
    for r in range(2, rows + 2):
        for c in range(2, width + 2):
            a, b, nw, ne, ww, nn = (
                int(u[r, c - 1]),
                int(u[r - 1, c]),
                int(u[r - 1, c - 1]),
                int(u[r - 1, c + 1]),
                int(u[r, c - 2]),
                int(u[r - 2, c]),
            )
            z = (a != 0) | (b != 0) << 1 | (nw != 0) << 2 | (ne != 0) << 3 | (ww != 0) << 4 | (nn != 0) << 5
            if bit_(z):
                pred = max(min(a, b), min(max(a, b), a + b - nw))
                base = ZERO_CONTEXTS + (min(max(pred, 0), 255) >> 6) * CLASS_CONTEXTS
                node = 1
                for _ in range(4):
                    node = 2 * node + bit_(base + node)
                v = node - 16
                for k in range(4):
                    v = 2 * v + bit_(base + 16 + k)
                u[r, c] = v
    if state["pos"] - 3 < n:  # the decoder reads 3 bytes past the encoder's last
        raise ValueError(f"{n - (state['pos'] - 3)} bytes left unread")
    return ((u[2:, 2:-2].ravel() + int(fill)) & 0xFF).astype(np.uint8).view(np.int8)


def encode_batch(tensors, fill, width) -> list[bytes]:
    """encode() of every tensor in `tensors` at once: one numpy lane per image, same bytes."""
    t = np.asarray(tensors, np.int32).reshape(len(tensors), -1, width)
    n = t.shape[0]
    u = (t - int(fill)) & 0xFF
    z, cls = contexts(u)
    u, z, cls = u.reshape(n, -1), z.reshape(n, -1), cls.reshape(n, -1)
    nz = u != 0
    count = 1 + 8 * nz
    start = np.cumsum(count, axis=1) - count
    length = count.sum(axis=1)
    T = int(length.max())
    ctx = np.zeros((n, T), np.int32)
    bit = np.zeros((n, T), np.uint8)
    lane = np.broadcast_to(np.arange(n)[:, None], u.shape)
    ctx[lane, start] = z
    bit[lane, start] = nz
    li, pi = np.nonzero(nz)
    v = u[li, pi]
    base = ZERO_CONTEXTS + cls[li, pi] * CLASS_CONTEXTS
    s = start[li, pi] + 1
    node = np.ones_like(v)
    for j, k in enumerate(range(7, 3, -1)):
        b = (v >> k) & 1
        ctx[li, s + j] = base + node
        bit[li, s + j] = b
        node = 2 * node + b
    for j, k in enumerate(range(3, -1, -1)):
        ctx[li, s + 4 + j] = base + 16 + j
        bit[li, s + 4 + j] = (v >> k) & 1
    # the coder, one step for every lane at a time
    p = np.full((n, CONTEXTS), PROB_ONE // 2, np.int64)
    x1 = np.zeros(n, np.int64)
    x2 = np.full(n, MASK32, np.int64)
    out = np.zeros((n, T // 8 + 16), np.uint8)
    outpos = np.zeros(n, np.int64)
    lanes = np.arange(n)
    for step in range(T):
        if step == 0 or step % 64 == 0:
            act = lanes[length > step]
        c = ctx[act, step]
        b = bit[act, step].astype(bool)
        q = p[act, c]
        lo, hi = x1[act], x2[act]
        r = hi - lo
        xmid = lo + (r >> PROB_BITS) * q + (((r & (PROB_ONE - 1)) * q) >> PROB_BITS)
        live = length[act] > step
        hi = np.where(b & live, xmid, hi)
        lo = np.where(~b & live, xmid + 1, lo)
        p[act, c] = np.where(live, np.where(b, q + ((PROB_ONE - q) >> ADAPT_SHIFT), q - (q >> ADAPT_SHIFT)), q)
        for _ in range(4):
            m = ((lo ^ hi) & 0xFF000000) == 0
            if not m.any():
                break
            idx = act[m]
            out[idx, outpos[idx]] = hi[m] >> 24
            outpos[idx] += 1
            lo[m] = (lo[m] << 8) & MASK32
            hi[m] = ((hi[m] << 8) & MASK32) | 0xFF
        x1[act], x2[act] = lo, hi
    out[lanes, outpos] = (x1 >> 24) + 1
    outpos += 1
    return [out[i, : outpos[i]].tobytes() for i in range(n)]
