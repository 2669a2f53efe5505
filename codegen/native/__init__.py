"""Native runtime code generator: .tflite -> readable C calling the int8 kernels of firmware/runtime/native/.

tflm_arithmetic.py  TFLM's integer arithmetic (QuantizeMultiplier, activation ranges, softmax constants)
lowering.py         operator checks and fusion: the model as layer steps with their constants
memory.py           the static activation arena (buffer plan)
render.py           the generated C: native_weights.h/.c (constants), native_model.h/.c (program)
"""

from lenet_mcu.codegen.native.lowering import NativePlan, Step, lower
from lenet_mcu.codegen.native.render import GENERATED_FILES, generate

__all__ = ["GENERATED_FILES", "NativePlan", "Step", "generate", "lower"]
