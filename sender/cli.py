"""Command line: flags override ``INVOICE_FRAUD_*`` settings; exit 0 on a clean stop.

Exit codes: 0 finished or stopped by SIGTERM/Ctrl-C, 1 the API never became ready,
2 bad flags, settings or CSV file.
"""

from __future__ import annotations

import enum
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError

from invoice_fraud.settings import Settings, get_settings
from sender.client import Backoff, Readiness, ScoringClient
from sender.config import FraudSchedule, FraudSpike, SenderConfig
from sender.run import run_sender
from sender.source import CsvFormatError, CsvInvoices, GeneratedInvoices
from sender.stopping import Stopper

log = logging.getLogger("sender")

EXIT_NOT_READY = 1
EXIT_USAGE = 2

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class Scenario(enum.StrEnum):
    STEADY = "steady"
    FRAUD_SPIKE = "fraud-spike"


@app.command(
    help="Post invoices to the invoice fraud API: synthetic ones (steady, or with a fraud "
    "spike) or replayed from a CSV file. One log line per invoice, a summary at the end."
)
def main(
    api_url: Annotated[
        str | None,
        typer.Option(help="Service URL. (default: INVOICE_FRAUD_API_URL or 127.0.0.1:3000)"),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Invoices per second (instead of --interval).")
    ] = None,
    interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between invoices. (default: INVOICE_FRAUD_SENDER_INTERVAL_SECONDS or 30)"
        ),
    ] = None,
    fraud_rate: Annotated[
        float | None,
        typer.Option(
            help="Share of fraudulent generated invoices. "
            "(default: INVOICE_FRAUD_SENDER_FRAUD_RATE or 0.03)"
        ),
    ] = None,
    scenario: Annotated[
        Scenario, typer.Option(help="fraud-spike raises the fraud share for a while.")
    ] = Scenario.STEADY,
    spike_start: Annotated[
        float, typer.Option(help="Seconds into the run when the spike starts.")
    ] = FraudSpike.start_seconds,
    spike_duration: Annotated[
        float, typer.Option(help="How many seconds the spike lasts.")
    ] = FraudSpike.duration_seconds,
    spike_fraud_rate: Annotated[
        float, typer.Option(help="Fraud share during the spike.")
    ] = FraudSpike.fraud_rate,
    count: Annotated[int | None, typer.Option(help="Stop after this many invoices.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Replay invoices from this CSV (amount, tax, total, and invoice_year/"
            "invoice_month/invoice_day or invoice_date; optional invoice_weekday, invoice_id).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible invoices.")] = None,
    ready_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds to wait for /readyz. "
            "(default: INVOICE_FRAUD_SENDER_READY_TIMEOUT_SECONDS or 120)"
        ),
    ] = None,
    request_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds for one HTTP request. "
            "(default: INVOICE_FRAUD_SENDER_REQUEST_TIMEOUT_SECONDS or 10)"
        ),
    ] = None,
    max_backoff: Annotated[
        float, typer.Option(help="Longest wait between two retries, in seconds.")
    ] = 30.0,
    max_attempts: Annotated[
        int | None,
        typer.Option(help="Give up on an invoice after this many attempts. (default: never)"),
    ] = None,
    heartbeat_file: Annotated[
        Path | None,
        typer.Option(
            envvar="INVOICE_FRAUD_SENDER_HEARTBEAT_FILE",
            help="File touched while the loop is alive (for container health checks).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    _configure_logging(log_level)
    if rate is not None and interval is not None:
        _usage_error("give --rate or --interval, not both")
    if csv_path is not None and (scenario is not Scenario.STEADY or fraud_rate is not None):
        _usage_error("--scenario and --fraud-rate apply to generated invoices, not to --csv")
    try:
        settings = get_settings(**({"api_url": api_url} if api_url is not None else {}))
        config = _build_config(
            settings,
            rate=rate,
            interval=interval,
            fraud_rate=fraud_rate,
            spike=(
                FraudSpike(spike_start, spike_duration, spike_fraud_rate)
                if scenario is Scenario.FRAUD_SPIKE
                else None
            ),
            csv_path=csv_path,
            count=count,
            duration=duration,
            seed=seed,
            ready_timeout=ready_timeout,
            request_timeout=request_timeout,
            max_backoff=max_backoff,
            max_attempts=max_attempts,
            heartbeat_file=heartbeat_file,
        )
    except (ValidationError, ValueError) as exc:
        _usage_error(f"invalid setting: {exc}")
    raise typer.Exit(send(config))


def send(config: SenderConfig) -> int:
    """Run the sender with signal handling; return the process exit code."""
    stopper = Stopper(heartbeat_file=config.heartbeat_file)
    previous = {
        signum: signal.signal(signum, _on_signal(stopper))
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return _send(config, stopper)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _send(config: SenderConfig, stopper: Stopper) -> int:
    try:
        source = (
            CsvInvoices(config.csv_path)
            if config.csv_path is not None
            else GeneratedInvoices(config.schedule, seed=config.seed)
        )
    except CsvFormatError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    backoff = Backoff(
        initial_seconds=min(0.5, config.max_backoff_seconds),
        max_seconds=config.max_backoff_seconds,
    )
    with ScoringClient(
        config.api_url,
        stopper,
        timeout=config.request_timeout_seconds,
        backoff=backoff,
        max_attempts=config.max_attempts,
    ) as client:
        try:
            readiness = client.wait_until_ready(config.ready_timeout_seconds)
            if readiness is Readiness.TIMED_OUT:
                return EXIT_NOT_READY
            if readiness is Readiness.STOPPED:
                log.info("stopped by %s before the API was ready", stopper.reason)
                return 0
            log.info("sending to %s: %s", config.api_url, _describe(config))
            summary = run_sender(
                source,
                client,
                stopper,
                interval_seconds=config.interval_seconds,
                count=config.count,
                duration_seconds=config.duration_seconds,
            )
        finally:
            if isinstance(source, CsvInvoices):
                source.close()
    log.info("%s", summary.line())
    return 0


def _build_config(
    settings: Settings,
    *,
    rate: float | None,
    interval: float | None,
    fraud_rate: float | None,
    spike: FraudSpike | None,
    csv_path: Path | None,
    count: int | None,
    duration: float | None,
    seed: int | None,
    ready_timeout: float | None,
    request_timeout: float | None,
    max_backoff: float,
    max_attempts: int | None,
    heartbeat_file: Path | None,
) -> SenderConfig:
    if rate is not None:
        if not rate > 0:
            raise ValueError("--rate must be > 0 invoices per second")
        interval = 1.0 / rate
    return SenderConfig(
        api_url=settings.api_url,
        interval_seconds=interval if interval is not None else settings.sender_interval_seconds,
        schedule=FraudSchedule(
            fraud_rate if fraud_rate is not None else settings.sender_fraud_rate, spike
        ),
        csv_path=csv_path,
        count=count,
        duration_seconds=duration,
        seed=seed,
        ready_timeout_seconds=(
            ready_timeout if ready_timeout is not None else settings.sender_ready_timeout_seconds
        ),
        request_timeout_seconds=(
            request_timeout
            if request_timeout is not None
            else settings.sender_request_timeout_seconds
        ),
        max_backoff_seconds=max_backoff,
        max_attempts=max_attempts,
        heartbeat_file=heartbeat_file,
    )


def _describe(config: SenderConfig) -> str:
    parts = [f"one invoice every {config.interval_seconds:g}s"]
    if config.csv_path is not None:
        parts.append(f"replaying {config.csv_path}")
    else:
        parts.append(f"fraud rate {config.schedule.fraud_rate:g}")
        spike = config.schedule.spike
        if spike is not None:
            parts.append(
                f"fraud spike to {spike.fraud_rate:g} from {spike.start_seconds:g}s "
                f"for {spike.duration_seconds:g}s"
            )
    if config.count is not None:
        parts.append(f"count {config.count}")
    if config.duration_seconds is not None:
        parts.append(f"duration {config.duration_seconds:g}s")
    return ", ".join(parts)


def _on_signal(stopper: Stopper) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        # Only set a flag here: the loop notices at once and logs outside the handler.
        stopper.request_stop(signal.Signals(signum).name)

    return handler


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # httpx logs every request at INFO; the sender logs its own line per invoice.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _usage_error(message: str) -> None:
    log.error("%s", message)
    raise typer.Exit(EXIT_USAGE)
