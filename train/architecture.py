"""LeNet-5 architecture facts that need no TensorFlow: sizes and the C3 connection table.

Output sizes follow (W - K + 2P)/S + 1 with P = 0:
  input 32x32x1 -> C1 28x28x6 -> S2 14x14x6 -> C3 10x10x16 -> S4 5x5x16 -> C5 1x1x120 -> F6 84 -> 10
"""

from __future__ import annotations

import numpy as np

from lenet_mcu.errors import LenetMcuError

INPUT_SHAPE = (32, 32, 1)
NUM_CLASSES = 10

# Table I of the paper: which of the 6 S2 maps each of the 16 C3 maps sees.
# Maps 0-5: 3 contiguous inputs; 6-11: 4 contiguous; 12-14: 4 non-contiguous; 15: all 6.
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (4, 5, 0),
    (5, 0, 1),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (3, 4, 5, 0),
    (4, 5, 0, 1),
    (5, 0, 1, 2),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def c3_connection_matrix() -> np.ndarray:
    """0/1 matrix [6 S2 maps, 16 C3 maps]; 60 of the 96 entries are 1."""
    table = np.zeros((6, 16), dtype=np.float32)
    for out_map, inputs in enumerate(C3_CONNECTIONS):
        table[list(inputs), out_map] = 1.0
    return table


def c3_kernel_mask(kernel_size: int = 5) -> np.ndarray:
    """The table broadcast to the Conv2D kernel layout [kh, kw, in=6, out=16]."""
    return np.broadcast_to(c3_connection_matrix(), (kernel_size, kernel_size, 6, 16)).astype(np.float32)


def conv_output_size(width: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """(W - K + 2P)/S + 1, refusing sizes that do not divide evenly."""
    span = width - kernel + 2 * padding
    if span < 0 or span % stride:
        raise LenetMcuError(
            f"a {kernel}x{kernel} window with stride {stride}, padding {padding} does not tile width {width}"
        )
    return span // stride + 1


def expected_output_shapes() -> dict[str, tuple[int, ...]]:
    """Per-layer output shapes (without batch) derived from the formula."""
    w = INPUT_SHAPE[0]
    c1 = conv_output_size(w, 5)
    s2 = conv_output_size(c1, 2, stride=2)
    c3 = conv_output_size(s2, 5)
    s4 = conv_output_size(c3, 2, stride=2)
    c5 = conv_output_size(s4, 5)
    return {
        "c1": (c1, c1, 6),
        "s2": (s2, s2, 6),
        "c3": (c3, c3, 16),
        "s4": (s4, s4, 16),
        "c5": (c5, c5, 120),
        "flatten": (c5 * c5 * 120,),
        "f6": (84,),
        "output": (NUM_CLASSES,),
    }


# The RBF output layer's fixed codes: LeCun et al. drew each class as a 7x12 bitmap
# (+1 ink, -1 background) so that confusable digits get similar codes (3/8, 6/8)
# and a distance from F6's 84 outputs scores each class. Our own drawing of the ten digits.
DIGIT_BITMAPS: tuple[tuple[str, ...], ...] = (
    (
        ".......",
        "..###..",
        ".#...#.",
        "#.....#",
        "#.....#",
        "#.....#",
        "#.....#",
        "#.....#",
        "#.....#",
        ".#...#.",
        "..###..",
        ".......",
    ),
    (
        ".......",
        "...#...",
        "..##...",
        ".#.#...",
        "...#...",
        "...#...",
        "...#...",
        "...#...",
        "...#...",
        "...#...",
        ".#####.",
        ".......",
    ),
    (
        ".......",
        "..###..",
        ".#...#.",
        "#.....#",
        "......#",
        ".....#.",
        "....#..",
        "...#...",
        "..#....",
        ".#.....",
        "#######",
        ".......",
    ),
    (
        ".......",
        ".#####.",
        "#.....#",
        "......#",
        "......#",
        "..####.",
        "......#",
        "......#",
        "......#",
        "#.....#",
        ".#####.",
        ".......",
    ),
    (
        ".......",
        ".....#.",
        "....##.",
        "...#.#.",
        "..#..#.",
        ".#...#.",
        "#....#.",
        "#######",
        ".....#.",
        ".....#.",
        ".....#.",
        ".......",
    ),
    (
        ".......",
        "#######",
        "#......",
        "#......",
        "#.####.",
        "##....#",
        "......#",
        "......#",
        "......#",
        "#.....#",
        ".#####.",
        ".......",
    ),
    (
        ".......",
        "..####.",
        ".#.....",
        "#......",
        "#......",
        "#.####.",
        "##....#",
        "#.....#",
        "#.....#",
        "#.....#",
        ".#####.",
        ".......",
    ),
    (
        ".......",
        "#######",
        "......#",
        ".....#.",
        ".....#.",
        "....#..",
        "....#..",
        "...#...",
        "...#...",
        "..#....",
        "..#....",
        ".......",
    ),
    (
        ".......",
        ".#####.",
        "#.....#",
        "#.....#",
        "#.....#",
        ".#####.",
        "#.....#",
        "#.....#",
        "#.....#",
        "#.....#",
        ".#####.",
        ".......",
    ),
    (
        ".......",
        ".#####.",
        "#.....#",
        "#.....#",
        "#.....#",
        "#....##",
        ".####.#",
        "......#",
        "......#",
        ".....#.",
        ".####..",
        ".......",
    ),
)
F6_UNITS = 84  # = 7 x 12, one unit per bitmap pixel
# The paper's F6 squashes with A*tanh(S*a), A = 1.7159, and its codes are +-1. Our F6 is
# plain tanh (S folds into the weights), i.e. the paper's F6 divided by A, so its codes
# are +-1/A: the same geometry, every distance divided by A^2.
PAPER_TANH_AMPLITUDE = 1.7159


def rbf_codes() -> np.ndarray:
    """[10, 84] float32 +-1/A: row i is digit i's bitmap read row by row."""
    codes = np.array(
        [[1.0 if ch == "#" else -1.0 for row in bitmap for ch in row] for bitmap in DIGIT_BITMAPS], dtype=np.float32
    )
    if codes.shape != (NUM_CLASSES, F6_UNITS):
        raise LenetMcuError(f"RBF codes have shape {codes.shape}, expected ({NUM_CLASSES}, {F6_UNITS})")
    return codes / np.float32(PAPER_TANH_AMPLITUDE)
