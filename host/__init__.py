"""Host side: put firmware on the emulator or a board, and run the serial accuracy check.

    from lenet_mcu.host import flash, report
    from lenet_mcu.host.verify import run_verify, VerifyFailed

    state = flash.flash_qemu(artifacts, elf)      # a built firmware.elf (lenet_mcu.pipeline builds it)
    rep = run_verify(artifacts, port=state["url"])
    flash.stop_qemu(artifacts)
    manifest_entry = report.summary(rep)

run_verify raises LenetMcuError for user errors (stale firmware, bad port) and
VerifyFailed (exit code 1) when any output byte differs from the TFLM reference;
it writes artifacts/verify/{report.json, report.md, confusion.png,
misclassified.png, checkpoint.jsonl}. This package imports no other stage.

Modules, one concern each:
    protocol.py    frames and messages of the serial protocol (docs/protocol.md)
    link.py        a byte link to the device (serial port or pyserial URL)
    device.py      one device on one link: handshake, pipelined requests, retries
    references.py  what the device is compared with: references.npz, test images
    checkpoint.py  the append-only record of results (--resume)
    report.py      report.json / report.md / PNGs
    verify.py      the whole check: inputs, devices, checkpoint, report
    qemu.py        the emulator: command line, attached or detached, stop
    flash.py       firmware onto the emulator or a board (debug probes)
"""
