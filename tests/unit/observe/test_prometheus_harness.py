"""The dev harness's Prometheus without a server: scrape config, start failures, the CLI flags."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest
import yaml

from inferfleet_dev import devcluster
from inferfleet_dev.prometheus import (
    Prometheus,
    PrometheusError,
    operator_target,
    scrape_config,
    simulator_target,
)


def test_scrape_config_honours_the_simulator_s_labels_only(tmp_path: Path) -> None:
    prom = Prometheus(
        tmp_path, 29999, [simulator_target(), operator_target("127.0.0.1:18080")], scrape_interval_s=1
    )
    prom.write_config()
    doc = yaml.safe_load((tmp_path / "prometheus.yml").read_text())  # written as JSON, read as YAML
    assert doc == scrape_config(prom.targets, 1)
    assert doc["global"]["scrape_interval"] == "1000ms"
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert jobs["simulator"]["honor_labels"] is True and jobs["inferfleet-operator"]["honor_labels"] is False
    assert jobs["simulator"]["static_configs"] == [{"targets": ["127.0.0.1:9400"]}]
    assert "--web.listen-address=127.0.0.1:29999" in prom.argv(Path("/x/prometheus"))


def test_a_port_in_use_is_reported_before_starting(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        prom = Prometheus(tmp_path, port, [simulator_target()], executable=Path("/bin/true"))
        with pytest.raises(PrometheusError, match=f"port {port} on 127.0.0.1"):
            prom.start(timeout=5)


def test_a_prometheus_that_exits_is_an_error_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prom = Prometheus(tmp_path, port, [simulator_target()], executable=Path("/bin/false"))
    with pytest.raises(PrometheusError, match="exited while starting"):
        prom.start(timeout=10)
    assert not prom.pid_file.exists()


def test_dev_cluster_up_takes_the_prometheus_flags() -> None:
    parser = argparse.ArgumentParser()
    devcluster.register(parser.add_subparsers(required=True))
    args = parser.parse_args(
        ["dev-cluster", "up", "--prometheus", "--prometheus-port", "29950", "--scrape-interval", "1"]
    )
    assert (args.prometheus, args.prometheus_port, args.scrape_interval) == (True, 29950, 1.0)
    assert args.simulator == "127.0.0.1:9400" and args.operator_metrics == "127.0.0.1:18080"
    assert parser.parse_args(["dev-cluster", "up"]).prometheus is False
