"""A node's own identity: its hostname, /etc/hosts and /etc/resolv.conf.

An EC2 instance has its own name and its own resolver settings; a Mininet node has the
machine's (`hostname` there prints the machine's name, and resolv.conf points at the
machine's resolver). Every node vpclab makes therefore gets:

- its own UTS namespace (NodeWithOwnName: the node's shell starts under `unshare --uts`),
  with the hostname EC2 gives by default, the "IP name" `ip-10-0-0-148` for a VM (its
  display name is an alias in /etc/hosts) and its own name for a host;
- its own /etc/hosts and /etc/resolv.conf: files in the lab's state folder, bind-mounted
  over the machine's inside the node's private mount namespace (the one Mininet's
  `mnexec -n` made for its sysfs). Propagation is made private first, so nothing can leak
  into the machine's own mounts, and the machine's files are never written.

A VM's resolver is its VPC's base address + 2, where AWS puts the VPC resolver: a name
lookup never reaches the machine's resolver, and once a resolver answers there it works.
"""
from __future__ import annotations

import os
import shlex
from ipaddress import IPv4Address
from pathlib import Path

FILES = ("hosts", "resolv.conf")
FSTAB = "fstab"           # the binds of FILES, for one `mount --all --fstab`


def vm_hostname(ip: IPv4Address) -> str:
    """EC2's default hostname for a private address (its "IP name")."""
    return "ip-" + str(ip).replace(".", "-")


def hosts_file(hostname: str, ip: IPv4Address | None = None, aliases: tuple[str, ...] = ()) -> str:
    lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{hostname}" if ip is None else
             f"{ip}\t{' '.join((hostname, *aliases))}"]
    return "# this node's own hosts file (vpclab: its name, no one else's)\n" + "\n".join(lines) + "\n"


def resolv_conf(nameserver: IPv4Address | None) -> str:
    """A resolver setting that never names the machine's: the VPC's, or none (a host)."""
    if nameserver is None:
        return "# a lab host has no resolver (vpclab)\noptions timeout:1 attempts:1\n"
    return (f"# the VPC resolver, at the VPC's base address + 2 (vpclab)\n"
            f"nameserver {nameserver}\noptions timeout:1 attempts:1\n")


def write_files(directory: Path, files: dict[str, str]) -> None:
    """The node's files, in its own folder of the lab's state (made here, root's), and the
    fstab that binds each over the machine's file of the same name in /etc: one `mount`
    for all (a process per bind costs milliseconds per node, seconds per large lab). A file
    the machine lacks is not bound: it is simply not there in the node either."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    binds = [f"{directory / name} /etc/{name} none bind 0 0\n" for name in files
             if name in FILES and os.path.exists(f"/etc/{name}")]
    (directory / FSTAB).write_text("".join(binds))


def remove_files(directory: Path, nodes_root: Path) -> None:
    """A removed VM's files: exactly those write_files made, in a folder proven (resolved,
    not a link) to be a direct child of the lab's nodes folder; then the folder itself."""
    if directory.is_symlink() or directory.resolve().parent != nodes_root.resolve():
        raise ValueError(f"refusing to remove {directory}: not a node folder of {nodes_root}")
    for name in (*FILES, FSTAB):
        (directory / name).unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:             # gone already, or holds something else: `down` removes it
        pass


DONE = "vpclab-identity-set"


def apply_script(hostname: str, directory: Path, private: bool) -> str:
    """Shell to run in the node's own shell (its UTS and mount namespaces): the files bound
    over the machine's (write_files' fstab), only once this namespace's mounts are private
    (a bind in a shared mount would show on the machine: `private` says the runner read the
    node's mount table and found no shared mount), then the hostname. Prints DONE if all
    went well."""
    steps = [] if private else ["mount --make-rprivate /"]
    steps.append(f"mount --all --fstab {shlex.quote(str(directory / FSTAB))}")
    # the hostname through /proc: the shell's own echo, no process to start
    steps.append(f"echo {shlex.quote(hostname)} > /proc/sys/kernel/hostname")
    return "{ " + " && ".join([*steps, f"echo {DONE}"]) + "; } 2>&1"


def private_mounts(pid: int) -> bool:
    """Does no mount of the node `pid`'s mount namespace propagate to a peer (no `shared:`
    tag in its mount table)? Mininet's mnexec makes them private; this checks it."""
    with open(f"/proc/{pid}/mountinfo") as table:
        return not any(" shared:" in line.split(" - ")[0] for line in table)


def not_separate(pid: int) -> str:
    """'' if the node `pid` has a UTS and a mount namespace of its own (not this process's),
    else which it shares: then a hostname or a bind mount there would be the machine's."""
    shared = [kind for kind in ("uts", "mnt")
              if os.readlink(f"/proc/{pid}/ns/{kind}") == os.readlink(f"/proc/self/ns/{kind}")]
    return " and ".join(shared)


def own_name_node(base: type) -> type:
    """A Mininet node class whose shell starts in its own UTS namespace, so `hostname`
    there is the node's (and setting it never renames the machine)."""

    class NodeWithOwnName(base):
        _starting_shell = False

        def startShell(self, *args, **kwargs):   # noqa: N802 - Mininet's name
            self._starting_shell = True
            try:
                return super().startShell(*args, **kwargs)
            finally:
                self._starting_shell = False

        def _popen(self, cmd, **params):
            # Mininet's shell: ['mnexec', OPTS, 'env', ...]; unshare execs in place, so the
            # shell keeps the pid Mininet records (and every tool that enters the node)
            if self._starting_shell and cmd[:1] == ["mnexec"]:
                cmd = [*cmd[:2], "unshare", "--uts", *cmd[2:]]
            # node.popen (pingall's pings, `py`): ['mnexec', '-da', PID, ...] joins only the
            # node's network and mount namespaces; its UTS namespace too, then
            elif cmd[:3] == ["mnexec", "-da", str(self.pid)]:
                cmd = [*cmd[:3], "nsenter", f"--uts=/proc/{self.pid}/ns/uts", "--", *cmd[3:]]
            return super()._popen(cmd, **params)

    NodeWithOwnName.__name__ = f"{base.__name__}WithOwnName"
    return NodeWithOwnName
