"""The Triton supervisor without Triton: backoff decisions, the status file, the orphaned-stub rule, stale
shared-memory regions, process-group plumbing and the stub watch on real (tiny) processes, and the supervision loop
over a fake tritonserver script (real processes; only the binaries are stand-ins): restarts, requested restarts
(during a backoff too), stub deaths in the status."""

from __future__ import annotations

import mmap
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks.stack import free_port
from visualizr import launcher, process_tree
from visualizr.launcher import TritonInstall, TritonStartError
from visualizr.process_tree import ProcessInfo
from visualizr.settings import Settings
from visualizr.stubs import STUB_NAME, StubWatch, is_stub, model_of
from visualizr.supervisor import RestartBackoff, TritonSupervisor
from visualizr.supervisor_status import SupervisorStatus, read_supervisor_status, write_status
from visualizr.triton_orphans import is_orphaned_stub, remove_stale_shm_regions


def test_backoff_resets_only_after_a_stable_run() -> None:
    backoff = RestartBackoff(first_s=1, max_s=30, stable_s=60)
    assert backoff.failures_after(0, None) == 1
    assert backoff.failures_after(3, None) == 4  # never ready: one more consecutive failure
    assert backoff.failures_after(3, 59.9) == 4  # ready, but not for long
    assert backoff.failures_after(5, 60.0) == 1  # stable: counts as a fresh start


def test_backoff_from_settings() -> None:
    env = {"VISUALIZR_TRITON_RESTART_BACKOFF": "2", "VISUALIZR_TRITON_RESTART_BACKOFF_MAX": "9",
           "VISUALIZR_TRITON_RESTART_STABLE": "5"}  # fmt: skip
    assert RestartBackoff.from_settings(Settings.from_env(env)) == RestartBackoff(2, 9, 5)


def test_status_file_round_trip(tmp_path: Path) -> None:
    path = Settings(data_dir=tmp_path).supervisor_status_path
    assert read_supervisor_status(path) is None
    now = datetime.now(UTC)
    status = SupervisorStatus(os.getpid(), "ready", restarts=2, pid=123, last_exit_code=-9, last_exit_at=now)
    write_status(path, status)
    assert path == tmp_path / "run" / "triton-supervisor.json"
    assert read_supervisor_status(path) == status
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging file left behind
    assert status.supervisor_alive()
    path.write_text('{"state": "ready"')  # not ours / truncated: no status rather than an exception
    assert read_supervisor_status(path) is None


def test_status_of_a_dead_supervisor_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not SupervisorStatus(child.pid, "ready").supervisor_alive()


def _stub(pid: int = 50, ppid: int = 40, argv_parent: str = "40", region: str = "visualizr_8001_ab", uid: int = 7,
          name: str = STUB_NAME) -> ProcessInfo:  # fmt: skip
    argv = (f"/b/python/{name}", "/m/model.py", region, "1048576", "1048576", argv_parent, "/b/python", "336")
    return ProcessInfo(pid, ppid, 40, uid, "S", argv)


def test_orphaned_stub_rule() -> None:
    server = ProcessInfo(40, 1, 40, 7, "S", ("/bin/tritonserver",))
    zombie = ProcessInfo(40, 1, 40, 7, "Z", ())
    prefix = "visualizr_8001_"
    assert not is_orphaned_stub(_stub(), prefix, server, 7)  # its server lives
    assert is_orphaned_stub(_stub(), prefix, zombie, 7)  # its server died, not yet reaped
    assert is_orphaned_stub(_stub(), prefix, None, 7)  # its server is gone
    assert is_orphaned_stub(_stub(ppid=1), prefix, server, 7)  # re-parented: pid 40 is someone else now
    assert not is_orphaned_stub(_stub(region="visualizr_9001_ab"), prefix, None, 7)  # another port's server
    assert not is_orphaned_stub(_stub(region="other_8001_ab"), prefix, None, 7)
    assert not is_orphaned_stub(_stub(), prefix, None, 8)  # another user's
    assert not is_orphaned_stub(_stub(name="python3"), prefix, None, 7)
    assert not is_orphaned_stub(_stub(argv_parent="x"), prefix, None, 7)
    assert not is_orphaned_stub(ProcessInfo(50, 1, 40, 7, "S", (STUB_NAME,)), prefix, None, 7)


def test_stale_shm_regions_are_removed_unless_mapped(tmp_path: Path) -> None:
    prefix = f"visualizr_{free_port()}_"
    stale, live, other = tmp_path / f"{prefix}a", tmp_path / f"{prefix}b", tmp_path / "visualizr_1_c"
    for path in (stale, live, other):
        path.write_bytes(b"\0" * mmap.PAGESIZE)
    with live.open("r+b") as handle, mmap.mmap(handle.fileno(), mmap.PAGESIZE):
        assert remove_stale_shm_regions(prefix, tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()


def _group_leader_with_children() -> subprocess.Popen[bytes]:
    script = "sleep 60 & sleep 60 & echo started; wait"
    process = subprocess.Popen(["sh", "-c", script], start_new_session=True, stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"started\n"
    return process


def test_a_killed_group_leader_stays_unreaped_until_its_group_is_killed() -> None:
    leader = _group_leader_with_children()
    children = [p.pid for p in process_tree.group_members(leader.pid) if p.pid != leader.pid]
    assert len(children) == 2
    try:
        assert process_tree.exit_code(leader.pid) is None
        os.kill(leader.pid, signal.SIGKILL)
        assert process_tree.wait_exit(leader.pid, 10) == -signal.SIGKILL
        info = process_tree.read_process(leader.pid)
        assert info is not None and info.state == "Z"  # peeking did not reap it
        assert all(process_tree.read_process(pid) is not None for pid in children)
    finally:
        process_tree.kill_group(leader.pid)
        assert leader.wait() == -signal.SIGKILL
    assert process_tree.reap_group(leader.pid, 10)
    assert process_tree.read_process(leader.pid) is None


def test_signal_if_checks_the_process_first() -> None:
    leader = _group_leader_with_children()
    try:
        assert not process_tree.signal_if(leader.pid, signal.SIGKILL, lambda info: info.argv[0] == "nope")
        assert process_tree.exit_code(leader.pid) is None
        assert process_tree.signal_if(leader.pid, signal.SIGKILL, lambda info: info.argv[0] == "sh")
        assert process_tree.wait_exit(leader.pid, 10) == -signal.SIGKILL
    finally:
        process_tree.kill_group(leader.pid)
        leader.wait()
    assert not process_tree.signal_if(leader.pid, signal.SIGKILL, lambda info: True)  # reaped: nothing to signal


FAKE_TRITON = """#!{python}
# A stand-in tritonserver: answers 200 on --http-port, exits with $FAKE_EXIT_CODE after $FAKE_EXIT_AFTER s (only
# the first run when $FAKE_EXIT_ONCE names a marker file); with $FAKE_STUB ("<stub> <model.py>") it starts a stub.
import http.server, os, subprocess, sys, threading
port = int(next(a for a in sys.argv if a.startswith("--http-port=")).split("=")[1])
if os.environ.get("FAKE_STUB"):
    stub, model = os.environ["FAKE_STUB"].split()
    subprocess.Popen([stub, model, "visualizr_1_a", "1", "1", str(os.getpid())], stdin=subprocess.PIPE)
once = os.environ.get("FAKE_EXIT_ONCE")
if once and os.path.exists(once):
    os.environ["FAKE_EXIT_AFTER"] = "600"
elif once:
    open(once, "w").close()
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def log_message(self, *args):
        pass
print("fake tritonserver up", flush=True)
if os.environ.get("FAKE_NEVER_READY"):
    threading.Event().wait(float(os.environ["FAKE_EXIT_AFTER"]))
else:
    server = http.server.HTTPServer(("127.0.0.1", port), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait(float(os.environ.get("FAKE_EXIT_AFTER", "600")))
print("fake tritonserver exits", flush=True)
sys.exit(int(os.environ.get("FAKE_EXIT_CODE", "0")))
"""


@pytest.fixture
def fake_triton(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    binary = tmp_path / "tritonserver"
    binary.write_text(FAKE_TRITON.format(python=sys.executable))
    binary.chmod(0o755)
    monkeypatch.setattr(launcher, "find_triton", lambda: TritonInstall(binary, None))
    return Settings(
        triton_host="127.0.0.1", triton_http_port=free_port(), triton_grpc_port=free_port(),
        data_dir=tmp_path / "data", model_repository=tmp_path, triton_ready_timeout_s=30,
    )  # fmt: skip


def _wait_for(supervisor: TritonSupervisor, predicate: object, timeout_s: float = 30) -> SupervisorStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = read_supervisor_status(supervisor.status_path)
        if status is not None and predicate(status):  # type: ignore[operator]
            return status
        time.sleep(0.05)
    raise AssertionError(f"supervisor status never matched: {read_supervisor_status(supervisor.status_path)}")


def test_an_exit_before_the_first_ready_is_a_start_up_error(
    fake_triton: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NEVER_READY", "1")
    monkeypatch.setenv("FAKE_EXIT_AFTER", "0")
    monkeypatch.setenv("FAKE_EXIT_CODE", "3")
    with TritonSupervisor(fake_triton) as supervisor, pytest.raises(TritonStartError, match="exit code 3 before"):
        supervisor.wait_ready(30)
    status = read_supervisor_status(supervisor.status_path)
    assert status is not None and (status.state, status.restarts, status.last_exit_code) == ("stopped", 0, 3)


def test_restarts_after_exits_with_backoff_and_stops_cleanly(
    fake_triton: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_EXIT_AFTER", "0.5")
    monkeypatch.setenv("FAKE_EXIT_CODE", "7")
    supervisor = TritonSupervisor(fake_triton, backoff=RestartBackoff(first_s=0.1, max_s=0.2, stable_s=60)).start()
    try:
        supervisor.wait_ready(30)
        status = _wait_for(supervisor, lambda s: s.restarts >= 2 and s.state == "ready")
        assert status.last_exit_code == 7 and status.last_exit_at is not None and status.pid is not None
        assert status.ready_at is not None and status.started_at is not None and status.ready_at >= status.started_at
        supervisor.stop_restarting()
        stopped = _wait_for(supervisor, lambda s: s.state == "stopped")
        assert stopped.pid is None and stopped.restarts <= status.restarts + 1
    finally:
        supervisor.stop()
    assert process_tree.read_process(status.pid) is None  # reaped


def test_stop_terminates_the_server_and_records_it(fake_triton: Settings) -> None:
    with TritonSupervisor(fake_triton) as supervisor:
        supervisor.wait_ready(30)
        pid = supervisor.status.pid
        assert pid is not None
    status = read_supervisor_status(supervisor.status_path)
    assert status is not None and status.state == "stopped" and status.restarts == 0
    assert status.last_exit_code == -signal.SIGTERM
    assert process_tree.read_process(pid) is None


def test_a_restart_requested_while_ready_restarts_once_with_the_reason(fake_triton: Settings) -> None:
    with TritonSupervisor(fake_triton) as supervisor:
        supervisor.wait_ready(30)
        first = supervisor.status.pid
        assert supervisor.request_restart("animatediff_unet keeps failing")
        assert not supervisor.request_restart("a second heal gave up")  # one restart is pending already
        status = _wait_for(supervisor, lambda s: s.restarts == 1 and s.state == "ready")
        assert status.last_restart_reason == "restart requested: animatediff_unet keeps failing"
        assert status.last_exit_code == -signal.SIGTERM and status.pid not in (None, first)
        time.sleep(1.0)  # several polls: the dropped request restarts nothing
        assert supervisor.status.restarts == 1 and supervisor.status.pid == status.pid


def test_a_restart_requested_during_the_backoff_is_dropped_and_the_next_server_lives(
    fake_triton: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_EXIT_AFTER", "1")
    monkeypatch.setenv("FAKE_EXIT_ONCE", str(tmp_path / "exited-once"))
    backoff = RestartBackoff(first_s=1.0, max_s=1.0, stable_s=60)
    with TritonSupervisor(fake_triton, backoff=backoff) as supervisor:
        supervisor.wait_ready(30)
        _wait_for(supervisor, lambda s: s.state == "restarting")
        assert not supervisor.request_restart("a heal gave up on the server that just exited")
        status = _wait_for(supervisor, lambda s: s.restarts == 1 and s.state == "ready")
        time.sleep(1.0)  # several polls of the fresh server
        assert supervisor.status.state == "ready" and supervisor.status.restarts == 1
        assert supervisor.status.pid == status.pid and status.last_restart_reason == "tritonserver exit code 0"


def _fake_stub(root: Path, model: str) -> tuple[Path, Path]:
    """A stand-in stub program (this Python under the stub's name) and a model.py that exits with the code it
    reads from stdin (0 at end of input)."""
    program = root / STUB_NAME
    if not program.exists():
        program.symlink_to(sys.executable)
    model_py = root / "repository" / model / "1" / "model.py"
    model_py.parent.mkdir(parents=True)
    model_py.write_text("import sys\nsys.exit(int(sys.stdin.readline() or 0))\n")
    return program, model_py


def _start_stub(root: Path, model: str) -> subprocess.Popen[bytes]:
    program, model_py = _fake_stub(root, model)
    argv = [str(program), str(model_py), "visualizr_1_a", "1", "1", str(os.getpid())]
    return subprocess.Popen(argv, stdin=subprocess.PIPE)


def _wait_state(pid: int, state: str | None) -> None:
    deadline = time.monotonic() + 10
    while (info := process_tree.read_process(pid)) is not None and info.state != state:
        assert time.monotonic() < deadline, f"{pid} never reached {state}"
        time.sleep(0.02)


def test_stub_watch_reports_stubs_that_died_not_those_that_stopped(tmp_path: Path) -> None:
    stubs = {model: _start_stub(tmp_path, model) for model in ("unet", "vae", "text", "gone")}
    try:
        watch = StubWatch(os.getpid(), rescan_s=0)
        deadline = time.monotonic() + 10
        while set(watch.stubs.values()) != set(stubs) and time.monotonic() < deadline:
            assert watch.poll() == []
        assert watch.stubs == {stub.pid: model for model, stub in stubs.items()}
        os.kill(stubs["unet"].pid, signal.SIGKILL)  # our child, not yet reaped
        stubs["vae"].communicate(b"")  # stopped, as Triton stops one (exit 0): not a death
        stubs["text"].stdin.write(b"3\n")  # type: ignore[union-attr]
        stubs["text"].stdin.close()  # type: ignore[union-attr]
        stubs["gone"].kill()
        stubs["gone"].wait()  # reaped before the watch saw it die: not reported
        for stub in (stubs["unet"], stubs["text"]):
            _wait_state(stub.pid, "Z")
        assert process_tree.zombie_exit_code(stubs["unet"].pid) == -signal.SIGKILL
        dead = watch.poll()
        assert sorted((d.model, d.pid, d.exit_code) for d in dead) == [
            ("text", stubs["text"].pid, 3), ("unet", stubs["unet"].pid, -signal.SIGKILL)
        ]  # fmt: skip
        assert watch.poll() == [] and watch.stubs == {}
    finally:
        for stub in stubs.values():
            stub.kill()
            stub.wait()


def test_a_stub_that_dies_is_recorded_in_the_status(
    fake_triton: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program, model_py = _fake_stub(tmp_path, "animatediff_unet")
    monkeypatch.setenv("FAKE_STUB", f"{program} {model_py}")
    with TritonSupervisor(fake_triton) as supervisor:
        supervisor.wait_ready(30)
        server = supervisor.status.pid
        assert server is not None
        deadline = time.monotonic() + 10
        while not (stubs := [p for p in process_tree.children(server) if is_stub(p)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [model_of(p) for p in stubs] == ["animatediff_unet"]
        time.sleep(1.5)  # the supervisor lists the server's children every second
        os.kill(stubs[0].pid, signal.SIGKILL)  # a child of the fake tritonserver we started
        status = _wait_for(supervisor, lambda s: s.stub_deaths != (), timeout_s=10)
        death = status.stub_deaths[0]
        assert (death.seq, death.model, death.pid, death.exit_code) == (
            1, "animatediff_unet", stubs[0].pid, -signal.SIGKILL
        )  # fmt: skip
        assert status.state == "ready" and status.restarts == 0  # a stub's death is the API's to heal
