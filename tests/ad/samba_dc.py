"""A throwaway Samba AD domain controller on a loopback address, for the live AD tests (issue 12).

Everything lives in one directory: a CA and a server certificate made with openssl (SANs: the
loopback IP, localhost, the DC's FQDN and short name), the provisioned domain, the admin password
in a file, the log. The DC listens on its own loopback address (ports are fixed: 389, 636, 3268,
3269), so two forests run side by side on 127.0.0.2 and 127.0.0.3. Facts it rests on:
../shared/domain/SAMBA-AD-DC.md.

A Python module rather than a shell script: the pytest fixture holds the `Popen` it started and
stops exactly that PID (never a process found by name), errors are one-line `SambaError`s the
fixture turns into a failed test, and the same code runs by hand:

    python -m tests.ad.samba_dc run /tmp/dc1 --address 127.0.0.2 [--forest 2]

(prints the connection facts, stops the DC on Ctrl-C or SIGTERM). The Debian packages are
installed with apt-get when missing and running as root; otherwise one line names them.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

# samba-ad-provision is only a Recommends of samba-ad-dc (and --no-install-recommends is used).
PACKAGES = ("samba-ad-dc", "samba-ad-provision", "ldb-tools", "ldap-utils", "openssl")
# Loopback addresses of the test DCs (ports are fixed, so one address per DC): the session's
# two forests and a spare for tests that start, stop or kill a DC of their own. Two test
# sessions at once (two checkouts) give each other different ones, e.g.
# SYNCAUDIT_TEST_DC_ADDRESSES=127.0.1.2,127.0.1.3,127.0.1.4
TEST_ADDRESSES = tuple(
    os.environ.get("SYNCAUDIT_TEST_DC_ADDRESSES", "127.0.0.2,127.0.0.3,127.0.0.4").split(",")
)
if len(TEST_ADDRESSES) != 3:
    raise RuntimeError("SYNCAUDIT_TEST_DC_ADDRESSES must name three loopback addresses")
READY_TIMEOUT = 30.0  # seconds from start until an LDAPS bind must work (measured: 0.3-0.9 s)
STOP_TIMEOUT = 10.0


class SambaError(Exception):
    """Why the DC could not be had, in one line."""


@dataclass(frozen=True)
class Forest:
    realm: str  # the DNS domain, upper case
    domain: str  # the NetBIOS name
    host: str  # the DC's short name

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.realm.lower().split("."))

    @property
    def fqdn(self) -> str:
        return f"{self.host}.{self.realm}".lower()


FOREST_ONE = Forest(realm="CORP.EXAMPLE.TEST", domain="CORP", host="DC1")
FOREST_TWO = Forest(realm="FABRIKAM.EXAMPLE.TEST", domain="FABRIKAM", host="DC2")


@dataclass(frozen=True)
class DcInfo:
    """How a test reaches a running DC. The password is only in `password_file` (no newline);
    `password_env(name)` gives it as an environment mapping, as a config's password_env reads it."""

    host: str  # the loopback IP the DC is bound to (the certificate names it)
    fqdn: str  # also in the certificate; not resolvable (no DNS): connect by `host`
    ldap_port: int
    ldaps_port: int
    base_dn: str
    bind_dn: str
    bind_upn: str
    password_file: Path
    ca_file: Path
    directory: Path
    forest: Forest
    pid: int | None = None  # the samba process, once started
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @classmethod
    def provisioned(
        cls, forest: Forest, host: str, directory: Path, timings: dict[str, float] | None = None
    ) -> DcInfo:
        """How to reach the DC provision() made for `forest` on `host` in `directory` (its
        admin password and CA where provision() puts them)."""
        return cls(
            host=host,
            fqdn=forest.fqdn,
            ldap_port=389,
            ldaps_port=636,
            base_dn=forest.base_dn,
            bind_dn=f"CN=Administrator,CN=Users,{forest.base_dn}",
            bind_upn=f"Administrator@{forest.realm.lower()}",
            password_file=directory / "admin.password",
            ca_file=directory / "tls" / "ca.pem",
            directory=directory,
            forest=forest,
            timings=timings if timings is not None else {},
        )

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.host}:{self.ldap_port}"

    def password(self) -> str:
        return self.password_file.read_text(encoding="utf-8")

    def password_env(self, name: str) -> dict[str, str]:
        return {name: self.password()}


# --- packages ---------------------------------------------------------------------------------


def missing_packages(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    missing = []
    for package in packages:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if "install ok installed" not in status.stdout:
            missing.append(package)
    return missing


def ensure_packages() -> float:
    """Install the Debian packages when missing (root and apt-get only); the seconds it took."""
    if shutil.which("dpkg-query") is None:
        raise SambaError(f"not a Debian system: Samba AD DC needs {' '.join(PACKAGES)}")
    missing = missing_packages()
    if not missing:
        return 0.0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SambaError(f"missing Debian packages; run: sudo apt-get install {' '.join(missing)}")
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SambaError(f"{' '.join(command[:2])} failed for {' '.join(missing)}: {last}")
    return time.monotonic() - started


# --- TLS --------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SambaError(f"openssl {args[0]} failed: {last}")


def make_tls(directory: Path, address: str, forest: Forest) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate it signed with the DC's names as SANs.
    Returns (ca file, certificate, key); the key is mode 600, as Samba demands."""
    tls = directory / "tls"
    tls.mkdir(parents=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "7",
        "-subj", f"/CN=syncaudit throwaway test CA {forest.realm}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=tls,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", "key.pem", "-out", "server.csr",
        "-subj", f"/CN={forest.fqdn}",
        cwd=tls,
    )  # fmt: skip
    (tls / "server.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n"
        f"subjectAltName = IP:{address}, DNS:localhost, DNS:{forest.fqdn}, "
        f"DNS:{forest.host.lower()}\n",
        encoding="utf-8",
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "7", "-extfile", "server.ext", "-out", "cert.pem",
        cwd=tls,
    )  # fmt: skip
    for key in ("ca.key", "key.pem"):
        (tls / key).chmod(0o600)
    return tls / "ca.pem", tls / "cert.pem", tls / "key.pem"


# --- the DC -----------------------------------------------------------------------------------


def _password() -> str:
    # Samba's default policy: 7+ characters from 3 of 4 classes. No quote or space, so it
    # survives any shell a person pastes it into.
    return f"Sa1-{secrets.token_hex(12)}"


class SambaDC:
    """One DC in `directory` (which must not exist or be empty), bound to `address`."""

    def __init__(self, directory: Path, address: str, forest: Forest = FOREST_ONE) -> None:
        self.directory = directory.resolve()
        self.address = address
        self.forest = forest
        self.process: subprocess.Popen[bytes] | None = None
        self.info: DcInfo | None = None
        self.timings: dict[str, float] = {}

    @property
    def conf(self) -> Path:
        return self.directory / "etc" / "smb.conf"

    @property
    def log(self) -> Path:
        return self.directory / "samba.log"

    def check_address_free(self) -> None:
        for port in (389, 636):
            if _answers(self.address, port):
                raise SambaError(
                    f"{self.address}:{port} is already in use (another DC still running there?)"
                )

    def provision(self) -> DcInfo:
        if self.directory.exists() and any(self.directory.iterdir()):
            raise SambaError(f"{self.directory} is not empty: give a new directory to provision")
        self.check_address_free()
        started = time.monotonic()
        d = self.directory
        (d / "run").mkdir(parents=True, exist_ok=True)
        ca, cert, key = make_tls(d, self.address, self.forest)
        self.timings["tls"] = time.monotonic() - started
        password = _password()
        password_file = d / "admin.password"
        password_file.touch(mode=0o600)
        password_file.write_text(password, encoding="utf-8")  # no newline: ldapsearch -y
        empty = d / "empty.conf"  # -s: nothing is inherited from /etc/samba/smb.conf
        empty.write_text("", encoding="utf-8")
        options = {
            # an address with the /8 of lo: Samba binds that address alone (a /32 matches no
            # interface, since only 127.0.0.1 is configured on lo)
            "interfaces": f"{self.address}/8",
            "bind interfaces only": "yes",
            "server services": "ldap",
            "pid directory": f"{d}/run",
            "ncalrpc dir": f"{d}/run/ncalrpc",
            "winbindd socket directory": f"{d}/run/winbindd",
            "ntp signd socket directory": f"{d}/run/ntp_signd",
            "tls enabled": "yes",
            "tls keyfile": str(key),
            "tls certfile": str(cert),
            "tls cafile": str(ca),
        }
        f = self.forest
        command = [
            "samba-tool", "domain", "provision", "-s", str(empty),
            f"--realm={f.realm}", f"--domain={f.domain}", f"--host-name={f.host}",
            f"--host-ip={self.address}", "--server-role=dc", "--dns-backend=NONE",
            f"--adminpass={password}", "--use-rfc2307", "--base-schema=2012_R2",
            "--backend-store=mdb", f"--targetdir={d}",
            *(f"--option={name}={value}" for name, value in options.items()),
        ]  # fmt: skip
        step = time.monotonic()
        with (d / "provision.log").open("wb") as out:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        if done.returncode != 0:
            raise SambaError(
                f"samba-tool domain provision failed: {_last_line(d / 'provision.log')}"
            )
        self.timings["provision"] = time.monotonic() - step
        # Provision drops these silently: set them in [global] afterwards (test data only).
        # Schema extensions (Exchange's attributes, 2016's msDS-SourceAnchor, which this
        # Samba's provision and schemaupgrade stop short of) are test data too.
        _add_to_global(self.conf, {"ldb:nosync": "true", "dsdb:schema update allowed": "true"})
        self.info = DcInfo.provisioned(f, self.address, d, self.timings)
        assert (self.info.password_file, self.info.ca_file) == (password_file, ca)
        return self.info

    def start(self, timeout: float = READY_TIMEOUT) -> DcInfo:
        info = self.info or self.provision()
        self.check_address_free()
        started = time.monotonic()
        with self.log.open("ab") as log:
            # stdin must be /dev/null: `samba -i` exits when its stdin closes.
            self.process = subprocess.Popen(
                ["samba", "-i", "-M", "single", "-s", str(self.conf), "--debug-stdout"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the test's terminal is not the DC's
                preexec_fn=_die_with_parent,
            )
        while True:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise SambaError(
                    f"samba exited with {code} before answering on {info.ldaps_url}: "
                    f"{_last_line(self.log)} (log: {self.log})"
                )
            error = ldaps_bind_error(info)
            if error is None:
                break
            if time.monotonic() - started > timeout:
                self.stop()
                raise SambaError(
                    f"no LDAPS bind to {info.ldaps_url} within {timeout:.0f} s: {error} "
                    f"(log: {self.log})"
                )
            time.sleep(0.1)
        self.timings["start"] = time.monotonic() - started
        self.info = replace(info, pid=self.process.pid)
        return self.info

    def stop(self) -> None:
        """Stop the samba this object started, by its PID: SIGTERM, then SIGKILL."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def ldaps_bind_error(info: DcInfo) -> str | None:
    """None when a simple bind over LDAPS, verified against the DC's CA, works; else why not.
    With OpenLDAP's ldapsearch: it needs no Python package and is Samba-independent."""
    env = {
        **os.environ,
        "LDAPTLS_CACERT": str(info.ca_file),
        "LDAPTLS_REQCERT": "demand",
    }
    done = subprocess.run(
        [
            "ldapsearch", "-LLL", "-x", "-H", info.ldaps_url, "-D", info.bind_dn,
            "-y", str(info.password_file), "-o", "nettimeout=5", "-l", "5",
            "-s", "base", "-b", "", "defaultNamingContext",
        ],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode == 0 and info.base_dn.lower() in done.stdout.lower():
        return None
    return (done.stderr.strip().splitlines() or [f"ldapsearch exit {done.returncode}"])[-1]


@contextmanager
def running_dc(directory: Path, address: str, forest: Forest = FOREST_ONE) -> Iterator[DcInfo]:
    """Install if needed, provision, start, yield the facts; stop by PID however it ends."""
    started = time.monotonic()
    installed = ensure_packages()
    dc = SambaDC(directory, address, forest)
    dc.timings["install"] = installed
    try:
        info = dc.start()
        dc.timings["total"] = time.monotonic() - started
        yield info
    finally:
        dc.stop()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies, even by
    SIGKILL, so a killed test run leaves no DC holding its address. Linux sends it when the
    *thread* that forked exits (prctl(2)): start a DC from a thread that outlives it."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _add_to_global(conf: Path, options: dict[str, str]) -> None:
    lines = conf.read_text(encoding="utf-8").splitlines()
    at = next((i for i, line in enumerate(lines) if line.strip().lower() == "[global]"), None)
    if at is None:
        raise SambaError(f"{conf} has no [global] section")
    lines[at + 1 : at + 1] = [f"\t{name} = {value}" for name, value in options.items()]
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no output"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ad.samba_dc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="provision and run a DC until Ctrl-C or SIGTERM")
    run.add_argument("directory", type=Path)
    run.add_argument("--address", default="127.0.0.2", help="a loopback address of its own")
    run.add_argument("--forest", type=int, choices=(1, 2), default=1)
    sub.add_parser("install", help="install the Debian packages when missing")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(f"packages ready ({ensure_packages():.1f} s)")
            return 0
        forest = FOREST_ONE if args.forest == 1 else FOREST_TWO
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with running_dc(args.directory, args.address, forest) as info:
            for name in ("ldaps_url", "ldap_url", "base_dn", "bind_dn", "password_file", "ca_file"):
                print(f"{name}: {getattr(info, name)}")
            print("timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in info.timings.items()))
            print("running; Ctrl-C stops it", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    except SambaError as error:
        print(f"samba_dc: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
