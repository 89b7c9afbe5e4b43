"""meson install into a scratch DESTDIR: every file where a Debian box
expects it, the installed example configs valid together, the man pages
rendering without a warning, the units passing systemd-analyze verify,
and the preflight naming each missing piece."""
import glob
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from dpfake import fake_regionfwd  # noqa: E402

BUILD = os.environ.get("BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))


def build_option(name):
    p = subprocess.run(["meson", "introspect", "--buildoptions", BUILD], capture_output=True, text=True)
    return {o["name"]: o["value"] for o in json.loads(p.stdout)}[name]


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    """(DESTDIR, DESTDIR/prefix, prefix)"""
    d = tmp_path_factory.mktemp("destdir")
    p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", str(d), "--no-rebuild", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    prefix = build_option("prefix")
    return d, str(d) + prefix, prefix


def etc_dir(dest):
    """sysconfdir/regionfwd: /etc for prefix /usr, else under the prefix."""
    d, root, prefix = dest
    sysconf = build_option("sysconfdir")
    return os.path.join(str(d) + sysconf if os.path.isabs(sysconf) else os.path.join(root, sysconf), "regionfwd")


def test_every_doc_the_man_pages_name_is_installed(dest):
    """regiond(8) sent the operator to bgp-feed.md and fleet.md, which
    neither install shipped (and monitoring.md's rules nowhere); the man
    pages named .md.gz where meson installs .md. Every path the man pages
    and dist/ (the preflight, the units' env files) name is installed."""
    import re
    d, root, prefix = dest
    named = set()
    for page in glob.glob(os.path.join(SOURCE, "docs", "man", "*.scd")) + glob.glob(os.path.join(SOURCE, "dist", "*")):
        text = open(page).read()
        named |= set(re.findall(r"/usr/share/doc/regionfwd/([\w.-]+?\.md(?:\.gz)?)", text))
        named |= {"examples/"} if "/usr/share/doc/regionfwd/examples" in text else set()
    assert {"fleet.md", "bgp-feed.md", "operations.md", "examples/"} <= named, named
    doc = os.path.join(root, "share/doc/regionfwd")
    missing = [n for n in named if not (os.path.isdir if n.endswith("/") else os.path.isfile)(os.path.join(doc, n))]
    assert not missing, missing
    # the examples the preflight says to copy: every one of the source's
    for f in os.listdir(os.path.join(SOURCE, "docs", "examples")):
        assert os.path.isfile(os.path.join(doc, "examples", f)), f


def test_layout(dest):
    d, root, prefix = dest
    etc = etc_dir(dest)
    want = [f"bin/{b}" for b in ("regionfwd", "regionfwd-gen", "regionctl", "regiond")]
    want += ["lib/regionfwd/regionfwd-preflight", "lib/sysusers.d/regionfwd.conf",
             "share/bash-completion/completions/regionctl", "share/bash-completion/completions/regionfwd"]
    want += [f"share/man/man8/{p}.8" for p in ("regionfwd", "regiond", "regionctl")]
    want += ["share/man/man1/regionfwd-gen.1", "share/man/man5/regionfwd-node.5", "share/man/man5/regionfwd-table.5"]
    # what the man pages and monitoring.md send the operator to
    want += [f"share/doc/regionfwd/{p}.md" for p in ("operations", "bgp-feed", "fleet", "table-format",
                                                     "load-testing", "monitoring", "api")]
    want += ["share/doc/regionfwd/monitoring/regionfwd-alerts.yml",
             "share/doc/regionfwd/monitoring/regionfwd-dashboard.json"]
    if os.path.exists(os.path.join(BUILD, "bpf", "xdp_filter.bpf.o")):
        want += ["lib/regionfwd/xdp_filter.bpf.o"]
    missing = [w for w in want if not os.path.exists(os.path.join(root, w))]
    assert not missing, missing
    for f in ("node.yaml", "table.yaml", "regionfwd.env", "regiond.env"):
        assert os.path.isfile(os.path.join(etc, f)), f
    assert oct(os.stat(os.path.join(etc, "credentials")).st_mode & 0o777) == "0o700"
    assert os.access(os.path.join(root, "lib/regionfwd/regionfwd-preflight"), os.X_OK)


def test_an_install_over_an_install_keeps_the_configs(tmp_path):
    """meson install again (an upgrade from a build tree) once replaced
    the operator's node.yaml, table.yaml and .env files with the examples
    (install_data): the next start ran on the example's ports, lcores and
    table. They are kept, as the package keeps its conffiles; one that is
    missing is installed again."""
    d = tmp_path / "destdir"

    def install():
        p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", str(d), "--no-rebuild", "--quiet"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr

    install()
    etc = etc_dir((d, str(d) + build_option("prefix"), build_option("prefix")))
    edited = {}
    for f in ("node.yaml", "table.yaml", "regionfwd.env", "regiond.env"):
        with open(os.path.join(etc, f), "a") as fh:
            fh.write("# the operator's edit\n")
        edited[f] = open(os.path.join(etc, f)).read()
    os.unlink(os.path.join(etc, "regiond.env"))
    install()
    for f in ("node.yaml", "table.yaml", "regionfwd.env"):
        assert open(os.path.join(etc, f)).read() == edited[f], f
    assert open(os.path.join(etc, "regiond.env")).read() == open(os.path.join(SOURCE, "dist", "regiond.env")).read()


def test_installed_configs_are_valid_together(dest):
    d, root, prefix = dest
    etc = etc_dir(dest)
    p = subprocess.run([os.path.join(root, "bin", "regionfwd"), "--check-node", os.path.join(etc, "node.yaml"),
                        "--table", os.path.join(etc, "table.yaml")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def man_pages(root):
    pages = sorted(glob.glob(os.path.join(root, "share", "man", "man*", "*")))
    assert len(pages) == 6, pages
    return pages


def test_man_pages_render_without_warnings(dest):
    d, root, prefix = dest
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    for page in man_pages(root):
        p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0 and p.stderr == "", (page, p.stderr)
        assert "NAME" in p.stdout and "SEE ALSO" in p.stdout, page
        g = subprocess.run(["groff", "-ww", "-z", "-man", "-Tutf8", page], capture_output=True, text=True)
        assert g.returncode == 0 and g.stderr == "", (page, g.stderr)


def test_man_pages_carry_the_help_texts(dest):
    """The options in each page are the binary's --help, word for word."""
    d, root, prefix = dest
    env = dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8")

    def rendered(name, sec):
        return subprocess.run(["man", "-l", os.path.join(root, "share", "man", f"man{sec}", f"{name}.{sec}")],
                              capture_output=True, text=True, env=env).stdout

    for name, sec, help_args in [("regionfwd", 8, ["--help"]), ("regiond", 8, ["--help"]),
                                 ("regionfwd-gen", 1, ["--help"]), ("regionctl", 8, ["apply", "--help"]),
                                 ("regionctl", 8, ["explain", "--help"]), ("regionfwd-node", 5, None)]:
        prog = os.path.join(root, "bin", name if help_args else "regionfwd")
        out = subprocess.run([prog, *(help_args or ["--help-node"])], capture_output=True, text=True).stdout
        page = rendered(name, sec)
        for line in out.splitlines():
            if line.strip():
                assert line.strip() in page, (name, help_args, line)


def test_units_verify(dest, tmp_path):
    """systemd-analyze verify on the installed units, their paths moved into
    DESTDIR so the binaries and man pages it checks for are found."""
    d, root, prefix = dest
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze")
    units = glob.glob(os.path.join(root, "lib", "systemd", "system", "*.service"))
    assert sorted(os.path.basename(u) for u in units) == [
        "regiond.service", "regiond@.service", "regionfwd.service", "regionfwd@.service"]
    unitdir = tmp_path / "units"
    unitdir.mkdir()
    names = []
    for u in units:
        text = open(u).read().replace(prefix + "/", root + "/")
        name = os.path.basename(u).replace("@.", "@lab.")
        (unitdir / os.path.basename(u)).write_text(text)
        names.append(str(unitdir / name))
    env = dict(os.environ, MANPATH=os.path.join(root, "share", "man"), SYSTEMD_LOG_LEVEL="notice")
    p = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True, env=env,
                       cwd=str(unitdir), timeout=60)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr


def test_no_unit_removes_another_units_runtime_directory(dest):
    """systemd removes a unit's RuntimeDirectory whole when the unit stops
    (or restarts): regiond.service's /run/regiond holds regiond@NAME's
    /run/regiond/NAME/api.sock, so 'systemctl restart regiond' once took
    every running instance's API socket away. A unit whose runtime
    directory holds another's must preserve it."""
    d, root, prefix = dest

    def settings(name):
        out = {}
        for line in open(os.path.join(root, "lib", "systemd", "system", name)):
            if "=" in line and not line.startswith("#"):
                k, v = line.strip().split("=", 1)
                out[k] = v
        return out

    units = {n: settings(n) for n in ("regiond.service", "regiond@.service", "regionfwd.service",
                                      "regionfwd@.service")}
    for n, s in units.items():
        for other, o in units.items():
            if n == other or "RuntimeDirectory" not in s or "RuntimeDirectory" not in o:
                continue
            if o["RuntimeDirectory"].startswith(s["RuntimeDirectory"] + "/"):
                assert s.get("RuntimeDirectoryPreserve") == "yes", (n, other)


def preflight(dest, tmp_path, *args, **env):
    d, root, prefix = dest
    sysfs, procfs, devfs = tmp_path / "sys", tmp_path / "proc", tmp_path / "dev"
    for x in (sysfs, procfs, devfs):
        x.mkdir(exist_ok=True)
    (procfs / "mounts").touch()
    e = dict(os.environ, RFW_SYSFS=str(sysfs), RFW_PROC=str(procfs), RFW_DEV=str(devfs),
             RFW_REGIONFWD=os.path.join(root, "bin", "regionfwd"), RFW_REGIOND=os.path.join(root, "bin", "regiond"),
             **env)
    return subprocess.run([os.path.join(root, "lib", "regionfwd", "regionfwd-preflight"), *args],
                          capture_output=True, text=True, env=e, timeout=60)


def fake_box(tmp_path, hugepages=4, driver="vfio-pci", vfio=True, mounted=True):
    sysfs, procfs, devfs = tmp_path / "sys", tmp_path / "proc", tmp_path / "dev"
    hp = sysfs / "kernel/mm/hugepages/hugepages-1048576kB"
    hp.mkdir(parents=True, exist_ok=True)
    (hp / "nr_hugepages").write_text(f"{hugepages}\n")
    procfs.mkdir(exist_ok=True)
    (procfs / "mounts").write_text("nodev /dev/hugepages hugetlbfs rw 0 0\n" if mounted else "")
    for addr in ("0000:3b:00.0", "0000:3b:00.1"):
        dev = sysfs / "bus/pci/devices" / addr
        dev.mkdir(parents=True, exist_ok=True)
        if driver:
            drv = sysfs / "bus/pci/drivers" / driver
            drv.mkdir(parents=True, exist_ok=True)
            if not (dev / "driver").is_symlink():
                (dev / "driver").symlink_to(drv)
    if vfio:
        (devfs / "vfio").mkdir(parents=True, exist_ok=True)
        (devfs / "vfio" / "vfio").touch()


def node_and_table(tmp_path, sock=None, group=None):
    node = tmp_path / "node.yaml"
    node.write_text('ports:\n  edge0: {device: "0000:3b:00.0", ingress: true}\n  uplink0: {device: "3b:00.1"}\n'
                    + (f"control_socket: {sock}\n" if sock else "") + (f"control_group: {group}\n" if group else ""))
    table = tmp_path / "table.yaml"
    table.write_text("links: {l: {port: uplink0, next_hop_mac: '02:00:00:00:00:01'}}\n"
                     "default: {action: steer, to: l}\n")
    return str(node), str(table)


def test_preflight_passes_on_a_ready_box(dest, tmp_path):
    fake_box(tmp_path)
    node, table = node_and_table(tmp_path, sock=str(tmp_path / "run" / "rfw.sock"), group="root")
    p = preflight(dest, tmp_path, "regionfwd", node, table, "-l", "1-2")
    assert p.returncode == 0 and p.stderr == "", p.stderr


@pytest.mark.parametrize("what,box,node_kw,eal,words", [
    ("no hugepages", dict(hugepages=0), {}, [], ["no hugepages reserved", "nr_hugepages"]),
    ("no hugetlbfs", dict(mounted=False), {}, [], ["no hugetlbfs mounted"]),
    ("NIC on a kernel driver", dict(driver="ixgbe"), {}, [],
     ["0000:3b:00.0", "bound to the kernel's ixgbe", "dpdk-devbind.py -b vfio-pci 0000:3b:00.0"]),
    ("NIC unbound", dict(driver=None), {}, [], ["3b:00.1", "bound to no driver"]),
    ("no vfio device", dict(vfio=False), {}, [], ["/vfio/vfio is missing", "modprobe vfio-pci"]),
    ("socket directory", {}, dict(sock="/nonexistent-rfw/run/rfw.sock"), [],
     ["control_socket /nonexistent-rfw/run/rfw.sock", "/nonexistent-rfw does not exist"]),
    ("group", {}, dict(group="no-such-rfw-group"), [], ["control_group 'no-such-rfw-group' is not a group"]),
    ("a file at the socket's path", {}, dict(sock="/etc/hostname"), [],
     ["control_socket /etc/hostname exists and is not a socket"]),
])
def test_preflight_names_the_missing_piece(dest, tmp_path, what, box, node_kw, eal, words):
    fake_box(tmp_path, **box)
    node, table = node_and_table(tmp_path, **node_kw)
    p = preflight(dest, tmp_path, "regionfwd", node, table, *eal)
    assert p.returncode == 1, p
    assert len(p.stderr.splitlines()) >= 1
    for w in words:
        assert w in p.stderr, (w, p.stderr)


def test_preflight_no_huge_skips_hugepages(dest, tmp_path):
    fake_box(tmp_path, hugepages=0, mounted=False)
    node, table = node_and_table(tmp_path)
    p = preflight(dest, tmp_path, "regionfwd", node, table, "--no-huge", "-m", "512")
    assert p.returncode == 0, p.stderr


def test_preflight_missing_files_and_bad_config(dest, tmp_path):
    fake_box(tmp_path)
    p = preflight(dest, tmp_path, "regionfwd", str(tmp_path / "none.yaml"), str(tmp_path / "none2.yaml"))
    assert p.returncode == 1 and "none.yaml: no such file" in p.stderr and "none2.yaml: no such file" in p.stderr
    node, table = node_and_table(tmp_path)
    open(table, "a").write("bogus: 1\n")
    p = preflight(dest, tmp_path, "regionfwd", node, table)
    assert p.returncode == 1 and "refused" in p.stderr and "bogus" in p.stderr, p.stderr


def test_preflight_regiond_waits_for_the_socket(dest, tmp_path):
    p = preflight(dest, tmp_path, "regiond", "/nonexistent-rfw/regionfwd.sock", "1")
    assert p.returncode == 1 and "/nonexistent-rfw does not exist" in p.stderr, p.stderr
    p = preflight(dest, tmp_path, "regiond", str(tmp_path / "fwd.sock"), "1")
    assert p.returncode == 1 and "did not appear within 1 s" in p.stderr, p.stderr
    s = fake_regionfwd(str(tmp_path / "fwd.sock"))
    try:
        p = preflight(dest, tmp_path, "regiond", str(tmp_path / "fwd.sock"), "1")
        assert p.returncode == 0 and p.stderr == "", p.stderr
    finally:
        s.close()


def test_preflight_regiond_wants_a_socket_that_accepts(dest, tmp_path):
    """The socket a regionfwd killed with SIGKILL leaves behind refuses
    every connection: the preflight once passed on the file alone, and
    regiond started on a regionfwd that was not there. It waits for one
    that accepts, as for a file not there yet."""
    import threading
    sock = str(tmp_path / "fwd.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock)  # bound, not listening: what a killed process leaves
    try:
        p = preflight(dest, tmp_path, "regiond", sock, "1")
        assert p.returncode == 1, p.stderr
        assert p.stderr == (f"regionfwd-preflight: regionfwd's control socket {sock} is there, but for 1 s "
                            "nothing accepts on it: is regionfwd running (systemctl status regionfwd)? A "
                            "regionfwd killed leaves its socket behind\n"), p.stderr
        # regionfwd (re)started meanwhile: passed once it answers
        threading.Timer(1.0, fake_regionfwd, (sock, "status", s)).start()
        p = preflight(dest, tmp_path, "regiond", sock, "30")
        assert p.returncode == 0 and p.stderr == "", p.stderr
    finally:
        s.close()


@pytest.mark.parametrize("answer,said", [
    ("silent", "it accepts, but no status reply came within 5 s (a stopped or hung regionfwd, or not regionfwd)"),
    ("garbage", "it accepts, but gave no status reply (what came is not regionfwd's framing)"),
    ("refused", "regionfwd refused a status request (unknown_op)"),
])
def test_preflight_regiond_wants_a_regionfwd_that_answers(dest, tmp_path, answer, said):
    """A socket that accepts and never answers (a regionfwd stopped with
    SIGSTOP or hung) or answers what is not regionfwd's (another program
    on the path) passed the preflight, and regiond started on no
    regionfwd: it asks for a status now."""
    sock = str(tmp_path / "fwd.sock")
    srv = fake_regionfwd(sock, answer)
    try:
        p = preflight(dest, tmp_path, "regiond", sock, "1")
        assert p.returncode == 1, p.stderr
        assert p.stderr == (f"regionfwd-preflight: regionfwd's control socket {sock} is there, but for 1 s "
                            f"{said}: is regionfwd running (systemctl status regionfwd)? A regionfwd killed "
                            "leaves its socket behind\n"), p.stderr
    finally:
        srv.close()


def test_preflight_regiond_waits_by_the_clock(dest, tmp_path):
    """Each check of a regionfwd that accepts and never answers takes 5 s;
    the wait once counted tries of 0.2 s (a 90 s wait would have been 40
    minutes). A 7 s wait now ends after two checks, well inside the 60 s
    this test gives the preflight (preflight() raises TimeoutExpired
    past it)."""
    sock = str(tmp_path / "fwd.sock")
    srv = fake_regionfwd(sock, "silent")
    try:
        p = preflight(dest, tmp_path, "regiond", sock, "7")
        assert p.returncode == 1, p.stderr
        assert "is there, but for 7 s it accepts, but no status reply came within 5 s" in p.stderr, p.stderr
    finally:
        srv.close()
