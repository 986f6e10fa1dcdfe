"""deploy/rsyslog/: the rendered agent and central configurations are ones rsyslogd accepts
(`rsyslogd -N1`, its own check), and the renderer refuses what would break them. The
end-to-end tests with running daemons are tests/e2e/test_central.py."""

from __future__ import annotations

import subprocess

import pytest

from deploy.rsyslog import render
from tests.e2e.rsyslog import RSYSLOGD, require_rsyslog


def check(conf) -> str:
    done = subprocess.run(
        [RSYSLOGD, "-N1", "-f", str(conf)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_agent_and_the_central_are_valid_for_rsyslogd(tmp_path):
    require_rsyslog()
    certs = tmp_path / "certs"
    render.make_ca(certs)
    for name in ("central", "app-a"):
        render.make_cert(certs, name)
    agent = render.Agent("app-a", tmp_path / "logs", tmp_path, "central.example", 20514, certs)
    (tmp_path / "agent.conf").write_text(agent.render())
    central = render.Central(tmp_path / "root", tmp_path, certs, {"app-a": 20514, "app-b": 20515})
    (tmp_path / "central.conf").write_text(central.render())
    check(tmp_path / "agent.conf")
    check(tmp_path / "central.conf")
    text = (tmp_path / "central.conf").read_text()
    assert text.count('type="imrelp"') == 2  # a listener per host
    assert 'tls.permittedPeer=["app-b"]' in text
    assert 'string="%msg%\\n"' in text
    assert "{{" not in text and "{{" not in (tmp_path / "agent.conf").read_text()


@pytest.mark.parametrize("host", ["App-A", "a b", 'a"b', "-a", "a/b", ""])
def test_a_host_name_that_is_not_a_dns_name_is_refused(tmp_path, host):
    with pytest.raises(ValueError, match="host name"):
        render.Agent(host, tmp_path, tmp_path, "c", 1, tmp_path).render()
    with pytest.raises(ValueError, match="host name"):
        render.Central(tmp_path, tmp_path, tmp_path, {host: 1}).render()


def test_a_path_with_a_quote_is_refused(tmp_path):
    with pytest.raises(ValueError, match="rsyslog string"):
        render.Agent("app-a", tmp_path / 'x"y', tmp_path, "c", 1, tmp_path).render()


def test_a_template_name_without_a_value_is_an_error():
    with pytest.raises(KeyError):
        render.fill("a {{MISSING}} b", {})
