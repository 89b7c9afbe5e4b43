"""wait_for: poll a condition until it holds or a deadline passes; the one
copy the Python tests share."""

import time


def wait_for(fn, timeout=30.0, what="condition", catch=(OSError, ValueError, KeyError)):
    """fn() until it is true; its value is returned. The polls start 50 ms
    apart and back off to 400 ms: many an fn runs regionctl, a process start
    that costs ~0.2 s of CPU under ASan, and a wait of ten seconds polled
    every 0.1 s kept most of a core busy beside the test's own regiond and
    regionfwd. An exception in @catch counts as "not yet" (a member electing
    a leader answers 503 for a moment, a status read races a restart); the
    last one is named if the deadline passes."""
    deadline = time.time() + timeout
    pause = 0.05
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except catch as e:
            last = e
        time.sleep(pause)
        pause = min(pause * 1.5, 0.4)
    raise AssertionError(f"{what} not met in {timeout} s" + (f" (last error: {last!r})" if last else ""))
