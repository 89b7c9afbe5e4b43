"""A bound on a child's memory, for tests of inputs that were once read
without limit (/dev/zero as a certificate or a prefix file): a regression
then fails fast instead of taking the shared machine's memory."""
import os
import resource

CAP = 1 << 30  # 1 GiB of address space


def capped():
    """preexec_fn for subprocess: the child's address space capped at CAP,
    unless under a sanitizer (ASan maps terabytes of shadow)."""
    if os.environ.get("SANITIZE", "none") in ("", "none"):
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))
