"""LD_PRELOAD wrappers the tests build from C source, to make a library
call fail or stall as a disk or a driver would."""
import os
import subprocess


def preload_shim(tmp_path, name, source):
    """Build @source (C) into @tmp_path/@name.so: the value for LD_PRELOAD,
    with the ASan runtime first when the binaries under test are sanitized
    (it must be the first object loaded)."""
    src, lib = tmp_path / f"{name}.c", tmp_path / f"{name}.so"
    src.write_text(source)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(src), "-ldl"], check=True)
    pre = str(lib)
    if os.environ.get("SANITIZE", "none") not in ("", "none"):
        asan = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
        pre = asan + ":" + pre
    return pre
