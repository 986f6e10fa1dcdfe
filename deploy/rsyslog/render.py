"""Render the rsyslog agent and central configurations, and make a development CA.

    python3 deploy/rsyslog/render.py ca DIR                    # a CA: DIR/ca.pem, DIR/ca.key
    python3 deploy/rsyslog/render.py cert DIR NAME             # DIR/NAME.pem, DIR/NAME.key
    python3 deploy/rsyslog/render.py agent OUT --host app-a --logs /var/log/billing \
        --work /var/lib/billing-agent --central central.example --port 20514 --certs DIR
    python3 deploy/rsyslog/render.py central OUT --root /srv/logs --work /var/lib/central \
        --certs DIR --host app-a=20514 --host app-b=20515

The templates beside this file (`*.conf.in`) are the configuration, documented line by line;
this fills in their names in double braces (a name left unfilled is an error, never an empty value).
Standard library only: it runs before any virtualenv exists. Certificates are made with the
`openssl` program, on the spot (no key is ever kept in the repository).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The five files (observability.conf.DEFAULT_LOG_FILES): what an agent tails and the central keeps.
FILE_NAMES = (
    "billing_api.log",
    "billing_api_debug.log",
    "billing_api_errors.log",
    "billing_api_requests.log",
    "billing_api_security.log",
)
#: Above our longest line (a 32 KB traceback, escaped, in a JSON line) with room to spare.
MAX_MESSAGE_SIZE = "256k"
#: A host name as a certificate and a folder carry it: DNS labels, no dots at the ends.
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


def fill(template: str, values: dict[str, str]) -> str:
    """`template` with every `{{NAME}}` replaced; a name without a value raises KeyError."""
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _read(name: str) -> str:
    return (HERE / name).read_text()


def _quote(value: str) -> str:
    if '"' in value or "\\" in value or "\n" in value:
        msg = f"not usable in an rsyslog string: {value!r}"
        raise ValueError(msg)
    return value


def check_host(name: str) -> str:
    if not HOST_NAME.fullmatch(name):
        msg = f"host name {name!r}: lower-case letters, digits, '-' and '.' only"
        raise ValueError(msg)
    return name


@dataclass
class Agent:
    host: str
    logs: Path
    work: Path
    central: str
    port: int
    certs: Path
    central_name: str = "central"
    retry_interval: int = 5
    timeout: int = 10
    queue_max_disk: str = "1g"
    queue_file_size: str = "4m"
    batch: int = 256
    queue_size: int = 500000
    poll: int = 1

    def render(self) -> str:
        inputs = []
        for name in FILE_NAMES:
            inputs.append(
                fill(
                    _read("agent-input.conf.in"),
                    {"PATTERN": _quote(str(self.logs / (name + "*"))), "NAME": name},
                )
            )
        return fill(
            _read("agent.conf.in"),
            {
                "WORK_DIR": _quote(str(self.work)),
                "MAX_MESSAGE_SIZE": MAX_MESSAGE_SIZE,
                "HOST": check_host(self.host),
                "QUEUE_MAX_DISK": self.queue_max_disk,
                "QUEUE_FILE_SIZE": self.queue_file_size,
                "BATCH": str(self.batch),
                "QUEUE_SIZE": str(self.queue_size),
                "POLL": str(self.poll),
                "CENTRAL_ADDRESS": _quote(self.central),
                "CENTRAL_PORT": str(self.port),
                "CA_CERT": _quote(str(self.certs / "ca.pem")),
                "HOST_CERT": _quote(str(self.certs / f"{self.host}.pem")),
                "HOST_KEY": _quote(str(self.certs / f"{self.host}.key")),
                "CENTRAL_NAME": check_host(self.central_name),
                "RELP_TIMEOUT": str(self.timeout),
                "RETRY_INTERVAL": str(self.retry_interval),
                "INPUTS": "\n".join(inputs),
            },
        )


@dataclass
class Central:
    root: Path
    work: Path
    certs: Path
    hosts: dict[str, int] = field(default_factory=dict)  # host -> its listener's port
    address: str = "0.0.0.0"  # noqa: S104 (a server's listeners: the deployment picks)
    name: str = "central"

    def render(self) -> str:
        listeners = [
            fill(
                _read("central-host.conf.in"),
                {
                    "HOST": check_host(host),
                    "ADDRESS": _quote(self.address),
                    "PORT": str(port),
                    "MAX_MESSAGE_SIZE": MAX_MESSAGE_SIZE,
                    "CA_CERT": _quote(str(self.certs / "ca.pem")),
                    "CENTRAL_CERT": _quote(str(self.certs / f"{self.name}.pem")),
                    "CENTRAL_KEY": _quote(str(self.certs / f"{self.name}.key")),
                },
            )
            for host, port in self.hosts.items()
        ]
        return fill(
            _read("central.conf.in"),
            {
                "WORK_DIR": _quote(str(self.work)),
                "ROOT": _quote(str(self.root)),
                "MAX_MESSAGE_SIZE": MAX_MESSAGE_SIZE,
                "FILE_NAMES": ", ".join(f'"{name}"' for name in FILE_NAMES),
                "DYNAFILE_CACHE": str(max(10, 5 * len(self.hosts))),
                "HOST_LISTENERS": "\n".join(listeners),
            },
        )


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, subject: str = "/CN=billing development CA") -> None:
    """A CA key and self-signed certificate: `directory`/ca.key, ca.pem (for tests, dev)."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "ca.key", directory / "ca.pem"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    key.chmod(0o600)
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", "30",
        "-subj", subject,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip


def make_cert(ca: Path, name: str, out: Path | None = None) -> tuple[Path, Path]:
    """A key and a certificate for `name` (subject CN and DNS subjectAltName), signed by the
    CA in `ca`, written to `out` (default: beside the CA) as NAME.key and NAME.pem."""
    out = out or ca
    out.mkdir(parents=True, exist_ok=True)
    key, csr, cert = out / f"{name}.key", out / f"{name}.csr", out / f"{name}.pem"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    key.chmod(0o600)
    _openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    extensions = out / f"{name}.ext"
    extensions.write_text(
        f"subjectAltName=DNS:{name}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca / "ca.pem"), "-CAkey", str(ca / "ca.key"),
        "-CAcreateserial", "-out", str(cert), "-days", "30", "-extfile", str(extensions),
    )  # fmt: skip
    csr.unlink()
    extensions.unlink()
    return key, cert


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.partition("=")
    return check_host(host), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    ca = sub.add_parser("ca", help="make a development CA in DIR")
    ca.add_argument("dir", type=Path)
    cert = sub.add_parser("cert", help="make NAME.key and NAME.pem signed by the CA in DIR")
    cert.add_argument("dir", type=Path)
    cert.add_argument("name", type=check_host)
    agent = sub.add_parser("agent", help="write an agent's configuration to OUT")
    agent.add_argument("out", type=Path)
    agent.add_argument("--host", required=True, type=check_host)
    agent.add_argument("--logs", required=True, type=Path)
    agent.add_argument("--work", required=True, type=Path)
    agent.add_argument("--central", required=True)
    agent.add_argument("--port", required=True, type=int)
    agent.add_argument("--certs", required=True, type=Path)
    agent.add_argument("--central-name", default="central", type=check_host)
    agent.add_argument("--queue-max-disk", default="1g")
    central = sub.add_parser("central", help="write the central's configuration to OUT")
    central.add_argument("out", type=Path)
    central.add_argument("--root", required=True, type=Path)
    central.add_argument("--work", required=True, type=Path)
    central.add_argument("--certs", required=True, type=Path)
    central.add_argument("--address", default="0.0.0.0")  # noqa: S104
    central.add_argument("--host", action="append", required=True, type=_host_port)
    args = parser.parse_args(argv)
    if args.what == "ca":
        make_ca(args.dir)
    elif args.what == "cert":
        make_cert(args.dir, args.name)
    elif args.what == "agent":
        args.out.write_text(
            Agent(
                args.host, args.logs.resolve(), args.work.resolve(), args.central, args.port,
                args.certs.resolve(), central_name=args.central_name,
                queue_max_disk=args.queue_max_disk,
            ).render()
        )  # fmt: skip
    else:
        args.out.write_text(
            Central(
                args.root.resolve(), args.work.resolve(), args.certs.resolve(),
                dict(args.host), address=args.address,
            ).render()
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
