"""Host side: flash a board or the emulator, and run the serial accuracy check.

For other stages (e.g. `lenet-mcu pipeline`):

    from lenet_mcu.host.verify import verify_on_qemu, run_verify, VerifyFailed
    from lenet_mcu.host import flash, report

    rep = verify_on_qemu(artifacts, "native", data_dir=mnist_dir)   # build if stale, QEMU, check, stop
    flash.flash_qemu(artifacts, "native"); rep = run_verify(artifacts); flash.stop_qemu(artifacts)
    manifest_entry = report.summary(rep)

run_verify raises LenetMcuError for user errors (stale firmware, bad port) and
VerifyFailed (exit code 1) when any output byte differs from the TFLM reference;
it writes artifacts/verify/{report.json, report.md, confusion.png,
misclassified.png, checkpoint.jsonl}.
"""
