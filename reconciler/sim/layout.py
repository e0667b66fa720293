"""Where a simulated fleet keeps its files.

Outside the hosts (the fleet directory ``DIR``)::

    DIR/fleet.json               hosts, addresses, ports, timings (written once by ``sim up``)
    DIR/id_ed25519[.pub]         the client key every host accepts for root
    DIR/authorized_keys          DIR/id_ed25519.pub, named by every sshd_config
    DIR/ssh_config, known_hosts  for ``ssh -F DIR/ssh_config HOST``
    DIR/supervisor.pid|.log      the one detached supervisor process
    DIR/upstream/src.git         the simulated git.freebsd.org
    DIR/upstream/ports.git       the simulated git.freebsd.org/ports.git (portstree.py)
    DIR/hosts/<h>/state.json     power, boot environments, running kernel (see state.py)
    DIR/hosts/<h>/faults.json    injected faults
    DIR/hosts/<h>/counters.json  how often each command ran
    DIR/hosts/<h>/be/<BE>/{etc,usr,boot,var,root}   overlay upper dirs of a boot environment
    DIR/hosts/<h>/be/<BE>/.work/<d>                 their overlay work dirs
    DIR/hosts/<h>/datasets/usr-src, usr-obj         datasets shared by every BE
    DIR/hosts/<h>/datasets/efi                      the EFI system partition (on /boot/efi)
    DIR/hosts/<h>/datasets/usr-ports                zroot/usr/ports (bsdinstall's zfsboot)

Inside a host the fleet directory is bind-mounted at :data:`NS_FLEET`
(``/run`` is a private tmpfs per host), and :data:`NS_SELF` names the host.
"""

from __future__ import annotations

from pathlib import Path

#: The fleet directory as seen from inside every simulated host.
NS_FLEET = Path("/run/freebsd-sim")
#: A file inside every host holding its own name.
NS_SELF = Path("/run/freebsd-sim.host")
#: Directories each boot environment overlays on this machine's own.
BE_DIRS = ("etc", "usr", "boot", "var", "root")
#: util-linux's mount and umount: FreeBSD's shadow them at /usr/sbin inside a host.
REAL_MOUNT = "/usr/bin/mount"
REAL_UMOUNT = "/usr/bin/umount"


class FleetLayout:
    """Paths of one fleet directory (``root`` is DIR outside, NS_FLEET inside)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def fleet_json(self) -> Path:
        return self.root / "fleet.json"

    @property
    def client_key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "authorized_keys"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def supervisor_pid(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def upstream(self) -> Path:
        return self.root / "upstream" / "src.git"

    @property
    def ports_upstream(self) -> Path:
        return self.root / "upstream" / "ports.git"

    def host(self, name: str) -> Path:
        return self.root / "hosts" / name

    def be(self, name: str, be: str) -> Path:
        return self.host(name) / "be" / be

    def dataset(self, name: str, dataset: str) -> Path:
        """``dataset`` is ``usr-src``, ``usr-obj``, ``usr-ports`` or ``efi`` (the ESP)."""
        return self.host(name) / "datasets" / dataset
