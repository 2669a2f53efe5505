"""The native runtime's buffer plan: every activation in one static arena.

Greedy, largest buffer first, like TFLM's planner: two buffers share bytes only
when their lifetimes (first to last step that touches them) do not overlap.
The graph input is the caller's `in`, the graph output the caller's `out`; a
RESHAPE between internal tensors is an alias, not a copy.
"""

from __future__ import annotations


def plan_arena(model, steps: list, buffer_bytes: dict[int, int] | None = None) -> tuple[list, dict, int]:
    """-> (steps without aliased RESHAPEs, {tensor or ("scratch", step): C expression}, arena bytes).

    buffer_bytes: the size of the tensors not stored as one int8 per value."""
    buffer_bytes = buffer_bytes or {}
    graph_in, graph_out = model.inputs[0], model.outputs[0]
    alias: dict[int, int] = {}
    kept = []
    for s in steps:
        if s.kind == "copy" and s.output != graph_out:
            alias[s.output] = alias.get(s.input, s.input)
            continue
        kept.append(s)

    def root(t):
        return alias.get(t, t)

    for s in kept:
        s.input, s.output = root(s.input), root(s.output)
    life: dict = {}  # tensor index or ("scratch", step name) -> [first step, last step]
    sizes: dict = {}
    for i, s in enumerate(kept):
        for t in (s.input, s.output):
            if t in (graph_in, graph_out):
                continue
            life.setdefault(t, [i, i])
            life[t][0] = min(life[t][0], i)
            life[t][1] = max(life[t][1], i)
            sizes[t] = buffer_bytes.get(t, model.tensors[t].size)
        if s.scratch_bytes:
            life[("scratch", s.name)] = [i, i]
            sizes[("scratch", s.name)] = s.scratch_bytes
    order = sorted(life, key=lambda t: (-sizes[t], life[t][0]))
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    offsets: dict = {}
    for t in order:
        size = sizes[t]
        first, last = life[t]
        offset = 0
        for o, sz, f, l in sorted(placed):
            overlaps_in_time = not (last < f or first > l)
            if overlaps_in_time and offset < o + sz and o < offset + size:
                offset = (o + sz + 3) // 4 * 4
        offsets[t] = offset
        placed.append((offset, size, first, last))
    arena = max([o + sizes[t] for t, o in offsets.items()], default=0)
    storage = {graph_in: "in", graph_out: "out"}
    for t, o in offsets.items():
        storage[t] = f"arena + {o}"
    for t, r in alias.items():
        storage[t] = storage.get(r, "in")
    return kept, storage, (arena + 3) // 4 * 4
