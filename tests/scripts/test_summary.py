"""scripts/test-summary: the counts per meson test, and a failed one's
first failure shown whole (CI's log once kept only the last 100 lines of a
suite in which one failure had made twenty-three more)."""
import json
import os
import subprocess

SUMMARY = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "test-summary")

PYTEST_OUT = """..F.
=================================== FAILURES ===================================
_________________ test_more_than_max_prefixes_stops_at_the_max _________________

lab = <bgplab.Lab object>

    def test_more_than_max_prefixes_stops_at_the_max(lab):
>       wait_for(lambda: False, what="learned up to the max")
E       AssertionError: learned up to the max not met in 30 s

../tests/control/test_bgp_feed.py:378: AssertionError
_________________________ test_a_later_one_that_failed _________________________
E       AssertionError: the cascade
=========================== short test summary info ============================
FAILED ../tests/control/test_bgp_feed.py::test_more_than_max_prefixes_stops_at_the_max
FAILED ../tests/control/test_bgp_feed.py::test_a_later_one_that_failed
2 failed, 83 passed in 733.91s (0:12:13)
"""
CMOCKA_OUT = """[ RUN      ] test_x
[  ERROR   ] --- 0x1 != 0
[   LINE   ] --- ../tests/unit/test_table.c:753: error: Failure!
[  FAILED  ] test_x
[  PASSED  ] 16 test(s).
[  FAILED  ] 1 test(s), listed below:
"""


def run(tmp_path, *tests):
    log = tmp_path / "testlog.json"
    log.write_text("".join(json.dumps(t) + "\n" for t in tests))
    return subprocess.run(["/usr/bin/python3", SUMMARY, str(log)], capture_output=True, text=True, timeout=60)


def test_counts_and_the_first_failure(tmp_path):
    p = run(tmp_path,
            {"name": "control-restarts", "result": "FAIL", "duration": 733.9, "stdout": PYTEST_OUT},
            {"name": "unit / table", "result": "FAIL", "duration": 0.5, "stdout": CMOCKA_OUT},
            {"name": "unit / parse", "result": "OK", "duration": 1.0, "stdout": "[  PASSED  ] 9 test(s).\n"})
    assert p.returncode == 1, p
    out = p.stdout.splitlines()
    first = out.index("== control-restarts: its first failure")
    assert "test_more_than_max_prefixes_stops_at_the_max" in out[first + 1], out
    assert out[first + 2].strip() == "E       AssertionError: learned up to the max not met in 30 s", out
    assert "test_bgp_feed.py:378: AssertionError" in out[first + 3], out
    assert "the cascade" not in p.stdout, out
    assert "  [   LINE   ] --- ../tests/unit/test_table.c:753: error: Failure!" in out, out
    assert out[-1] == "summary: 108 passed, 3 failed", out


def test_all_passed_says_only_the_counts(tmp_path):
    p = run(tmp_path, {"name": "unit / parse", "result": "OK", "duration": 1.0, "stdout": "[  PASSED  ] 9 test(s).\n"})
    assert p.returncode == 0 and "first failure" not in p.stdout and p.stdout.endswith("summary: 9 passed, 0 failed\n"), p
