"""Import and run TensorFlow without its C++ notes on stderr.

TensorFlow prints oneDNN/absl notices (and harmless graph-attribute errors
during the first fit) straight to file descriptor 2, ignoring
TF_CPP_MIN_LOG_LEVEL; they would bury the CLI's own messages. quiet_stderr
parks fd 2 in a temp file and replays it only if the wrapped code fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def quiet_stderr():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode("utf-8", "replace")[-20000:])
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """Return the tensorflow module, importing it (and Keras) once, quietly."""
    if "tensorflow" not in sys.modules or "keras" not in sys.modules:
        with quiet_stderr():
            import keras  # noqa: F401  (Keras 3 picks the TensorFlow backend here)
            import tensorflow  # noqa: F401
    return sys.modules["tensorflow"]
