"""``datalab-ocr serve``: its options are checked, its defaults shown, its refusals explained;
and ``ocr -v`` names the embedded server once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from datalab_ocr.cli import build_parser
from datalab_ocr.server.__main__ import main as server_main
from datalab_ocr.server.cli import config_from_args, serving_line
from datalab_ocr.server.config import API_KEY_ENV

from .conftest import CLI


@pytest.mark.parametrize(
    ("option", "value", "complaint"),
    [
        ("--workers", "0", "expected a number at least 1, not 0"),
        ("--queue-size", "-1", "expected a number at least 0, not -1"),
        ("--port", "99999", "expected a number from 0 to 65535, not 99999"),
        ("--port", "http", "expected a whole number, not 'http'"),
        ("--log-level", "loud", "invalid choice: 'loud'"),
        ("--latency", "-2", "expected a number of at least 0, not -2"),
        ("--result-ttl", "0", "expected a number above 0, not 0"),
        ("--max-upload-mb", "inf", "expected a number above 0, not inf"),
        ("--rate-limit", "0/60", "the rate limit needs N >= 1"),
        ("--max-render-pixels", "5000", "expected a number at least 1000000, not 5000"),
        ("--long-poll-max", "301", "expected a number up to 300, not 301"),
    ],
)
def test_an_out_of_range_option_is_a_usage_error(
    cli: CLI, option: str, value: str, complaint: str
) -> None:
    run = cli("serve", option, value)
    assert run.code == 2
    assert f"argument {option}: {complaint}" in run.err
    assert "Traceback" not in run.err


def test_python_dash_m_server_checks_its_options_the_same_way(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stop:
        server_main(["--workers", "0"])
    assert stop.value.code == 2
    assert "argument --workers: expected a number at least 1, not 0" in capsys.readouterr().err


def test_help_shows_every_default(cli: CLI) -> None:
    run = cli("serve", "--help")
    assert run.code == 0
    text = " ".join(run.out.split())  # argparse wraps lines
    for default in (
        "(default: 127.0.0.1",
        "(default: 8000)",
        "(default: tesseract)",
        "(default: 64)",
        "(default: 3600.0)",
        "(default: 200.0)",
        "(default: info)",
        "(default: 25000000)",
        "(default: 20.0)",
        f"(default: ${API_KEY_ENV}, else no key)",
    ):
        assert default in text


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another server listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_a_port_in_use_is_one_clear_line_and_nothing_claims_to_serve(
    cli: CLI, busy_port: int
) -> None:
    run = cli("serve", "--port", str(busy_port), "--engine", "none")
    assert run.code == 1
    assert run.err == (
        f"datalab-ocr serve: error: port {busy_port} on 127.0.0.1 is already in use (another "
        "server?): stop it or pick another --port\n"
    )


def test_a_network_address_without_a_key_is_refused_naming_the_ways_to_go_on(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    run = cli("serve", "--host", "0.0.0.0", "--engine", "none")
    assert run.code == 2
    assert "refusing to serve on 0.0.0.0 without an API key" in run.err
    assert "--api-key-file" in run.err
    assert API_KEY_ENV in run.err
    assert "--allow-no-key-on-network" in run.err


def test_the_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("s3cret-from-file\n")
    args = build_parser().parse_args(["serve", "--api-key-file", str(key_file)])
    assert config_from_args(args).api_key == "s3cret-from-file"


def test_the_render_budget_and_the_long_poll_reach_the_server_config() -> None:
    args = build_parser().parse_args(
        ["serve", "--max-render-pixels", "4000000", "--long-poll-max", "0"]
    )
    config = config_from_args(args)
    assert (config.max_render_pixels, config.long_poll_max) == (4_000_000, 0.0)


@pytest.mark.parametrize(
    ("value", "stated"),
    [
        ("5", "at most 5 requests per 60 s"),
        ("200/60", "at most 200 requests per 60 s"),
        ("10/1.5", "at most 10 requests per 1.5 s"),
    ],
)
def test_the_start_line_states_the_rate_limit_in_force(value: str, stated: str) -> None:
    config = config_from_args(build_parser().parse_args(["serve", "--rate-limit", value]))
    line = serving_line("127.0.0.1", 8000, config)
    assert line.startswith("serving the Datalab OCR API on http://127.0.0.1:8000 with engine")
    assert stated in line


def test_the_start_line_says_nothing_of_a_limit_when_there_is_none() -> None:
    config = config_from_args(build_parser().parse_args(["serve"]))
    assert "requests per" not in serving_line("127.0.0.1", 8000, config)


def test_the_key_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "s3cret-from-env")
    args = build_parser().parse_args(["serve"])
    assert config_from_args(args).api_key == "s3cret-from-env"


def test_an_unreadable_key_file_is_a_usage_error(cli: CLI, tmp_path: Path) -> None:
    run = cli("serve", "--api-key-file", str(tmp_path / "missing"))
    assert run.code == 2
    assert f"cannot read the key file {tmp_path / 'missing'}" in run.err


def test_an_empty_key_file_is_a_usage_error(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("\n")
    run = cli("serve", "--api-key-file", str(tmp_path / "key"))
    assert run.code == 2
    assert "is empty" in run.err


# 192.0.2.1 is a documentation address (TEST-NET-1) no machine here has: getting past the
# refusal shows as failing to bind it, and nothing ever listens beyond loopback.
NOT_HERE = "192.0.2.1"


def test_allow_no_key_on_network_lifts_the_refusal(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    run = cli("serve", "--host", NOT_HERE, "--engine", "none", "--allow-no-key-on-network")
    assert run.code == 1
    assert f"{NOT_HERE} is not an address of this machine" in run.err


def test_a_key_from_the_environment_lifts_the_refusal(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "s3cret-from-env")
    run = cli("serve", "--host", NOT_HERE, "--engine", "none")
    assert run.code == 1
    assert "refusing" not in run.err
    assert f"{NOT_HERE} is not an address of this machine" in run.err
    assert "s3cret-from-env" not in run.err


def test_verbose_ocr_names_the_embedded_server_once(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from datalab_ocr.server import embedded

    monkeypatch.setattr(embedded, "_embedded", None)  # this command starts a server of its own
    document = Path(__file__).resolve().parents[1] / "server" / "documents"
    try:
        run = cli("ocr", "-v", "--local", document / "newsletter.pdf", "-o", "-")
    finally:
        started = embedded._embedded
        if started is not None:
            started.stop()
    assert run.code == 0, run.err
    assert run.err.count("http://127.0.0.1:") == 1, run.err
