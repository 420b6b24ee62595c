"""A throw-away single-node SLURM cluster for tests: munged, slurmctld and slurmd.

Everything lives in one temporary folder (config copy, key, socket, state, spool,
logs), on free ports. The config must also sit at /etc/slurm/slurm.conf: the
Snakemake SLURM plugin drops SLURM_CONF from the environment of its inner `srun`.
An existing /etc/slurm/slurm.conf is backed up and restored. Every wait is
bounded, and `cluster()` stops every daemon it started, on failure too.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGES = "slurmctld slurmd slurm-client munge"
COMMANDS = ["munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "sinfo", "squeue"]
COMMANDS += ["scancel", "scontrol"]
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


@dataclass
class Cluster:
    partition: str
    root: Path
    env: dict
    pids: list[int]  # munged, slurmctld, slurmd

    def log_tail(self, chars: int = 3000) -> str:
        """The end of every daemon log, for failure messages."""
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')[-chars:]}"
            for p in sorted(self.root.glob("*.log"))
        )


def missing_commands() -> list[str]:
    """The SLURM and munge commands that are not installed (looked up in sbin too)."""
    return [c for c in COMMANDS if _command(c) is None]


def _command(name: str) -> str | None:
    """The command's full path, looked up in PATH and in sbin (where the daemons live)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def _free_ports(count: int) -> list[int]:
    """Ports that nothing listens on now, all different (held open together while chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def node_line() -> str:
    """`slurmd -C`'s hardware line for this machine, renamed to localhost."""
    out = subprocess.run(
        [_command("slurmd"), "-C"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    hardware = next(line for line in out.splitlines() if line.startswith("NodeName="))
    return "NodeName=localhost NodeAddr=127.0.0.1 " + hardware.split(" ", 1)[1]


def slurm_conf(root: Path, partition: str, munge_socket: Path) -> str:
    """A single-node config: no cgroups, no accounting, jobs remembered for 10 minutes."""
    controller, node = _free_ports(2)
    return f"""\
ClusterName=rankvideo-test
SlurmctldHost=localhost
SlurmctldPort={controller}
SlurmdPort={node}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=600
ReturnToService=2
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
{node_line()} State=UNKNOWN
PartitionName={partition} Nodes=localhost Default=NO MaxTime=INFINITE State=UP
"""


def wait_until(check, timeout: float, what: str, interval: float = 0.2):
    """Poll `check()` until it returns something true; raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


def node_state(env) -> str:
    out = subprocess.run(
        [_command("sinfo"), "-h", "-N", "-n", "localhost", "-o", "%t"],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    return out.stdout.strip()


def _start(command, env, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def _cancel_jobs(env, timeout: float = 30) -> None:
    """Cancel every job still queued or running and wait (bounded) until none is left."""
    subprocess.run([_command("scancel"), "--full", "-u", getpass.getuser()], env=env, timeout=10)

    def empty():
        out = subprocess.run(
            [_command("squeue"), "-h", "-t", "PD,R,CG", "-o", "%i"],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
        )
        return out.returncode == 0 and not out.stdout.strip()

    with contextlib.suppress(TimeoutError):
        wait_until(empty, timeout, "cancelled jobs to end", interval=0.5)


def _restore(backup: bytes | None) -> None:
    if backup is None:
        SYSTEM_CONF.unlink(missing_ok=True)
    else:
        SYSTEM_CONF.write_bytes(backup)


@contextlib.contextmanager
def cluster(root, partition: str = "rankvideo_test", timeout: float = 60):
    """Start munged, slurmctld and slurmd under `root`; yield a Cluster; stop them all."""
    missing = missing_commands()
    if missing:
        raise RuntimeError(
            f"SLURM is not installed (missing: {', '.join(missing)}). Install it with "
            f"`apt-get install -y {PACKAGES}` (as .ci/run does)."
        )
    if os.geteuid() != 0:
        raise RuntimeError("the test cluster runs its daemons as root and writes /etc/slurm")
    root = Path(root)
    for name in ("state", "spool", "munge"):
        (root / name).mkdir(parents=True, exist_ok=True)
    munge_socket = root / "munge" / "munge.socket"
    conf = slurm_conf(root, partition, munge_socket)
    (root / "slurm.conf").write_text(conf)
    env = {**os.environ, "SLURM_CONF": str(SYSTEM_CONF)}
    backup = SYSTEM_CONF.read_bytes() if SYSTEM_CONF.exists() else None
    processes: list[subprocess.Popen] = []
    try:
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.write_text(conf)
        key = root / "munge" / "munge.key"
        subprocess.run(
            [_command("mungekey"), "--create", f"--keyfile={key}"], check=True, timeout=30
        )
        munged = [_command("munged"), "--foreground", "--force", f"--socket={munge_socket}"]
        munged += [f"--key-file={key}", f"--pid-file={root}/munge/munged.pid"]
        munged += [f"--seed-file={root}/munge/munged.seed"]
        processes.append(_start(munged, env, root / "munged.log"))
        wait_until(munge_socket.exists, timeout, "munged's socket")
        conf_arg = ["-f", str(SYSTEM_CONF)]
        processes.append(_start([_command("slurmctld"), "-D", *conf_arg], env, root / "ctld.log"))
        processes.append(
            _start([_command("slurmd"), "-D", "-N", "localhost", *conf_arg], env, root / "d.log")
        )

        def idle():
            dead = [p.args[0] for p in processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while starting")
            return node_state(env) == "idle"

        cluster = Cluster(partition, root, env, [p.pid for p in processes])
        try:
            wait_until(idle, timeout, "the node to be idle in sinfo")
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"{error}\n{cluster.log_tail()}") from error
        yield cluster
    finally:
        # every step runs, even when one raises; in reverse order of registration
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(_restore, backup)
            for process in processes:
                cleanup.callback(_stop, process)
            if len(processes) == 3 and processes[1].poll() is None:
                cleanup.callback(_cancel_jobs, env)  # jobs end before the daemons
