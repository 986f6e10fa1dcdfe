"""`make central`: a central rsyslogd and this host's agent, in the foreground, on loopback.

    python3 deploy/rsyslog/dev.py --logs /tmp --dir .central --port 20514 --host my-laptop

Everything lives under --dir: a development CA made on the first run (ca/), the rendered
configurations, each daemon's work directory, and the central root (root/<host>/...). The
system's own rsyslog is never touched: each daemon runs with `-n -f <its config> -i <its
pid file>` and loads no input but imfile (agent) and imrelp on 127.0.0.1 (central).
Ctrl-C stops both. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import render  # the renderer beside this file

RSYSLOGD = "/usr/sbin/rsyslogd"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", required=True, type=Path, help="this host's log directory")
    parser.add_argument("--dir", required=True, type=Path, help="where everything is kept")
    parser.add_argument("--port", type=int, default=20514, help="the central's RELP port")
    parser.add_argument("--host", default="local", type=render.check_host)
    args = parser.parse_args()
    if not Path(RSYSLOGD).exists():
        print("rsyslogd is missing: apt-get install rsyslog rsyslog-relp rsyslog-gnutls")
        return 1
    base = args.dir.resolve()
    certs = base / "ca"
    if not (certs / "ca.pem").exists():
        render.make_ca(certs)
    for name in ("central", args.host):
        if not (certs / f"{name}.pem").exists():
            render.make_cert(certs, name)
    root, logs = base / "root", args.logs.resolve()
    central_conf, agent_conf = base / "central.conf", base / "agent.conf"
    for work in (base / "central-work", base / "agent-work", root):
        work.mkdir(parents=True, exist_ok=True)
    central = render.Central(
        root, base / "central-work", certs, {args.host: args.port}, address="127.0.0.1"
    )
    central_conf.write_text(central.render())
    agent = render.Agent(
        args.host, logs, base / "agent-work", "127.0.0.1", args.port, certs, retry_interval=1
    )
    agent_conf.write_text(agent.render())
    procs = [
        subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(base / f"{name}.pid")])
        for name, conf in (("central", central_conf), ("agent", agent_conf))
    ]
    print(
        f"central: RELP over TLS on 127.0.0.1:{args.port}, writing {root}/{args.host}/\n"
        f"agent:   tailing {logs}/billing_api*.log as host {args.host!r}\n"
        f"read it: make central-logs   (logtrace --root {root})\n"
        f"rsyslogd's own messages: {base}/central-work/rsyslogd.log, "
        f"{base}/agent-work/rsyslogd.log\nCtrl-C stops both."
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("an rsyslogd exited: see its rsyslogd.log above")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)


if __name__ == "__main__":
    sys.exit(main())
