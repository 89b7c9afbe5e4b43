"""Each test's report of its call phase on its item (item.rep_call), for
fixtures that put a shared lab back only after a test that failed
(test_bgp_feed.py: one failure once left the feed over its bound or
paused for a confirm, and every later test of the module failed with it)."""
import pytest


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
