"""The ``realconnect`` command line.

realconnect serve ingest|feeds|console     run an HTTP service (uvicorn)
realconnect worker matcher|notifier        run a faust stream processor
realconnect topics                         create the stack's topics (idempotent)
realconnect convert copenhagen OUT         convert a shared dataset to canonical JSONL
realconnect replay FILE [--direct] [--wait]
realconnect suggestions --from-beginning --until-idle
realconnect connect bluesky|mastodon|discord|reddit   forward a platform to ingest
realconnect backfill SOURCE --since DATE  forward a platform's history
realconnect drain | summary
realconnect explain A B [--json]           why a pair was suggested, or why not
"""

from __future__ import annotations

import asyncio
import dataclasses
from enum import Enum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import structlog
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from schemas.suggestions import Suggestion
from services.common.logging import configure_logging
from services.common.settings import Settings

app = typer.Typer(
    help="realconnect: turn repeated, meaningful, reciprocal exchanges into meetups.",
    no_args_is_help=True,
)


class HttpService(str, Enum):
    ingest = "ingest"
    feeds = "feeds"
    console = "console"


class WorkerService(str, Enum):
    normalizer = "normalizer"
    matcher = "matcher"
    notifier = "notifier"


class Platform(str, Enum):
    """The platforms that do not push webhooks: a connector reads them."""

    bluesky = "bluesky"
    mastodon = "mastodon"
    discord = "discord"
    reddit = "reddit"


class Dataset(str, Enum):
    copenhagen = "copenhagen"


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level)
    return settings


@app.command()
def serve(service: HttpService) -> None:
    """Run an HTTP service with uvicorn."""
    import uvicorn

    from services.common.http_server import uvicorn_options

    settings = _settings()
    if service is HttpService.ingest:
        from services.ingest.app import create_app

        host, port = settings.ingest.host, settings.ingest.port
    elif service is HttpService.feeds:
        from services.feeds.app import create_app

        host, port = settings.feeds.host, settings.feeds.port
    else:
        from services.console.app import create_app

        host, port = settings.console.host, settings.console.port
    if service is HttpService.ingest and settings.ingest.workers > 1:
        # several processes, each with its own SO_REUSEPORT listener so that the kernel
        # spreads connections over them (see services.common.reuseport)
        from services.common.reuseport import Supervisor

        raise typer.Exit(
            Supervisor(
                host=host,
                port=port,
                workers=settings.ingest.workers,
                log_level=settings.log_level,
                uvicorn_kwargs={
                    "app": "services.ingest.app:app_from_env",
                    "factory": True,
                    "log_config": None,
                    "loop": "uvloop",
                    "access_log": False,
                    **uvicorn_options(settings),
                },
            ).run()
        )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        loop="uvloop",
        access_log=False,
        # connections, slow clients, heads, proxies: services.common.http_server
        **uvicorn_options(settings),
    )


async def _prepare_worker_topics(settings: Settings, changelogs: list[str]) -> None:
    """Create the stack's topics and the worker's changelog topics, and wait until they are
    visible, before faust subscribes: a changelog faust creates itself can be missing from
    the metadata at its first subscription, and the worker then never got its partitions
    (seen in CI on a fresh broker).

    A worker started while its broker is unreachable (an orchestrator restarting it during
    an outage) waits for the broker as its consumer does, up to ``START_PATIENCE_S``, instead
    of exiting: it exited 1 on "Unable to bootstrap" at each restart (CI, test_chaos)."""
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

    from services.common.backoff import Backoff
    from services.common.faust_fixes import START_PATIENCE_S
    from services.common.kafka import ensure_topics

    backoff = Backoff(base=0.2, cap=5.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_PATIENCE_S
    while True:
        try:
            await ensure_topics(settings)
            if changelogs:
                await ensure_topics(settings, changelogs, compacted=changelogs)
            return
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            if loop.time() > deadline:
                raise
            delay = backoff.next()
            structlog.get_logger(__name__).warning(
                "broker_unreachable_at_start", error=repr(exc), retry_in_s=delay
            )
            await asyncio.sleep(delay)


@app.command()
def worker(service: WorkerService) -> None:
    """Run a faust stream processor (matcher or notifier)."""
    from services.common.worker import run_worker

    settings = _settings()
    if service is WorkerService.matcher:
        from services.matcher.app import create_app
    elif service is WorkerService.normalizer:
        from services.normalizer.app import create_app
    else:
        from services.notifier.app import create_app
    worker_app = create_app(settings)
    changelogs = [t.changelog_topic.get_topic_name() for t in worker_app.tables.values()]
    asyncio.run(_prepare_worker_topics(settings, changelogs))
    run_worker(worker_app, settings.log_level, settings.gc_thresholds)


@app.command()
def topics() -> None:
    """Create the stack's topics in this namespace (idempotent)."""
    from services.common.kafka import ensure_topics

    settings = _settings()
    configure_logging("warning")  # the line below says what was created
    created = asyncio.run(ensure_topics(settings))
    typer.echo(f"created {len(created)} topic(s)" + (f": {', '.join(created)}" if created else ""))


@app.command()
def convert(
    dataset: Dataset,
    out: Path,
    data_dir: Annotated[Path, typer.Option(envvar="REALCONNECT_DATA_DIR")] = Path("../shared/data"),
) -> None:
    """Convert a dataset from the shared data folder to canonical interaction JSONL."""
    from services.datasets import copenhagen

    if not (data_dir / "copenhagen_cns").is_dir():
        typer.echo(
            f"error: {data_dir}/copenhagen_cns not found (set REALCONNECT_DATA_DIR)", err=True
        )
        raise typer.Exit(2)
    n = copenhagen.write_jsonl(data_dir, out)
    typer.echo(f"wrote {n} interactions to {out}")


def _progress() -> Progress:
    # rich draws a live bar on a terminal and stays quiet in logs and CI.
    return Progress(
        TextColumn("[bold]replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    direct: Annotated[
        bool, typer.Option(help="Produce straight to Kafka instead of HTTP.")
    ] = False,
    wait: Annotated[
        bool, typer.Option(help="Return once matcher and notifier have processed it all.")
    ] = False,
    url: Annotated[str | None, typer.Option(help="Ingest base URL.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=5000)] = 2000,
    timeout: Annotated[float, typer.Option(help="Seconds --wait may take.")] = 600.0,
    strict: Annotated[
        bool, typer.Option(help="All or nothing: send nothing if any line is bad.")
    ] = False,
    from_line: Annotated[
        int, typer.Option(min=1, help="Start at this line (an interrupted replay says which).")
    ] = 1,
    retry_for: Annotated[
        float,
        typer.Option(help="Seconds a batch is retried while ingest answers 503/429 or times out."),
    ] = 300.0,
) -> None:
    """Send canonical JSONL through the ingest API (or --direct to Kafka).

    A bad line (not a valid interaction) is reported with its line number and reason and
    skipped; the valid lines are sent, and the command exits 1 with a summary. With
    ``--strict`` the whole file is checked first and nothing is sent if any line is bad.
    While ingest cannot store (503), throttles (429) or does not answer, each batch is sent
    again with backoff for up to ``--retry-for`` seconds; a replay that stops anyway names
    the ``--from-line`` to resume from, and resending lines is harmless (event ids)."""
    from services import pipeline

    settings = _settings()
    total = sum(1 for _ in pipeline.read_jsonl(file))
    base = url or f"http://{settings.ingest.host}:{settings.ingest.port}"
    bad = pipeline.BadLines()
    if strict:
        bad = pipeline.check_file(file)
        if bad.count:
            _report_bad(bad, total)
            typer.echo(
                f"error: --strict: {bad.count} bad line(s) of {total}; nothing sent", err=True
            )
            raise typer.Exit(1)

    async def run() -> int:
        with _progress() as progress:
            task = progress.add_task("replay", total=total)

            def advance(n: int) -> None:
                progress.advance(task, n)

            if direct:
                sent = await pipeline.replay_direct(file, settings, progress=advance, bad=bad)
            else:
                sent = await pipeline.replay_http(
                    file,
                    base,
                    batch_size=batch_size,
                    progress=advance,
                    bad=bad,
                    token=settings.producer_token.get_secret_value(),
                    from_line=from_line,
                    retry_for_s=retry_for,
                )
        if wait:
            typer.echo("waiting for matcher and notifier to drain…", err=True)
            await pipeline.drain(settings, timeout=timeout)
        return sent

    try:
        sent = asyncio.run(run())
    except pipeline.ReplayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except TimeoutError as exc:  # --wait: every line was accepted, the drain took too long
        typer.echo(f"error: every line was sent, but --wait gave up: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"replayed {sent} interactions" + (" (drained)" if wait else ""), err=True)
    if bad.count:
        _report_bad(bad, total)
        typer.echo(
            f"error: {bad.count} bad line(s) of {total} skipped; the other {sent} were sent",
            err=True,
        )
        raise typer.Exit(1)


def _report_bad(bad: Any, total: int) -> None:
    for n, reason in bad.lines:
        typer.echo(f"line {n}: {reason}", err=True)
    if bad.count > len(bad.lines):
        typer.echo(f"… and {bad.count - len(bad.lines)} more bad line(s)", err=True)


@app.command()
def connect(source: Platform) -> None:
    """Read SOURCE with its own protocol (Jetstream, streaming API, gateway, listings) and
    forward each payload to ingest, signed; resumes where it stopped (docs/sources.md)."""
    from services.connectors.core import Fatal
    from services.connectors.runner import connect as run

    settings = _settings()
    try:
        code = asyncio.run(run(settings, source.value))
    except Fatal as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(78) from exc
    raise typer.Exit(code)


class _BackfillProgress:
    """Two bars: how much of the history since the date has been read, then forwarded."""

    def __init__(self, progress: Progress, since: float, now: float) -> None:
        self.p = progress
        self.since, self.now = since, now
        self.low: float | None = None
        self.high: float | None = None
        self.read = progress.add_task(
            "read (days of history)", total=round((now - since) / 86400, 1)
        )
        self.sent = progress.add_task("forwarded", total=None)

    def reading(self, at: float | None) -> None:
        if at is None:
            return
        self.low = at if self.low is None else min(self.low, at)
        self.high = at if self.high is None else max(self.high, at)
        # history is listed newest first (from now back) or oldest first (from the date on)
        covered = max(self.now - self.low, self.high - self.since) if self.low != self.high else 0.0
        self.p.update(self.read, completed=round(min(covered, self.now - self.since) / 86400, 1))

    def forwarding(self, total: int) -> None:
        self.p.update(self.sent, total=total or None)

    def forwarded(self) -> None:
        self.p.advance(self.sent)


@app.command()
def backfill(
    source: Platform,
    since: Annotated[str, typer.Option(help="Read history from this date (2026-01-31) on.")],
) -> None:
    """Read SOURCE's history since a date through the connector's client and forward it to
    ingest, oldest first; what was already sent is dropped as a duplicate."""
    import time

    from services.connectors.backfill import BACKFILL, since_epoch
    from services.connectors.core import Fatal
    from services.connectors.runner import linked

    settings = _settings()
    try:
        start = since_epoch(since)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc

    async def run() -> int:
        async with linked(settings, source.value) as link:
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            ) as progress:
                sent = await BACKFILL[source.value](
                    link, start, _BackfillProgress(progress, start, time.time())
                )
            counts = link.counts
        typer.echo(
            f"backfilled {sent} {source.value} payloads: "
            + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())),
            err=True,
        )
        return sent

    try:
        asyncio.run(run())
    except Fatal as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(78) from exc


@app.command()
def drain(timeout: float = 600.0) -> None:
    """Wait until matcher and notifier have processed everything on their topics."""
    from services import pipeline

    asyncio.run(pipeline.drain(_settings(), timeout=timeout))


@app.command()
def suggestions(
    from_beginning: Annotated[bool, typer.Option("--from-beginning/--latest")] = True,
    until_idle: Annotated[
        bool, typer.Option(help="Exit once none arrived for --idle seconds.")
    ] = True,
    idle: Annotated[float, typer.Option(help="Idle seconds before exiting.")] = 5.0,
) -> None:
    """Print every suggestion on the topic as JSONL (duplicates by suggestion_id removed)."""
    from services import pipeline

    settings = _settings()
    idle_s = idle if until_idle else float("inf")
    for s in asyncio.run(
        pipeline.read_suggestions(
            settings, from_beginning=from_beginning, idle_s=idle_s, unique=True
        )
    ):
        typer.echo(pipeline.dumps_line(s))


@app.command()
def evaluate(
    out: Annotated[Path, typer.Option(help="Where to write the report.")] = Path(
        "docs/evaluation.md"
    ),
    data_dir: Annotated[Path, typer.Option(envvar="REALCONNECT_DATA_DIR")] = Path("../shared/data"),
    timeout: float = 900.0,
    repeats: Annotated[int, typer.Option(min=1, help="Repeated splits by people.")] = 5,
    pipeline_check: Annotated[
        bool, typer.Option(help="Also replay Copenhagen through the running pipeline.")
    ] = True,
) -> None:
    """make eval: judge the matcher against baselines on data it was not fitted on, simulate
    learning from answers, replay Copenhagen through the real pipeline; write the report."""
    import time

    from services.common.settings import MatcherSettings
    from services.evaluation import pipeline_check as check
    from services.evaluation import report
    from services.matcher.handlers import policy_from

    settings = _settings()
    running = policy_from(settings.matcher)  # the matcher the pipeline check replays through
    # every offline figure with the default a user gets
    default_bar = MatcherSettings.model_fields["min_probability"].default
    policy = dataclasses.replace(running, min_probability=default_bar)
    say = lambda msg: typer.echo(msg, err=True)  # noqa: E731 - progress lines on stderr
    if not (data_dir / "copenhagen_cns").is_dir():
        typer.echo(f"error: {data_dir} has no shared datasets (set REALCONNECT_DATA_DIR)", err=True)
        raise typer.Exit(2)
    result = report.evaluate(data_dir, policy, say, repeats=repeats)
    extra = check.reddit_section(check.reddit_report(data_dir))
    if pipeline_check:
        from services import pipeline
        from services.datasets import copenhagen
        from services.evaluation import offline
        from services.evaluation.datasets import copenhagen as cph

        jsonl = Path(".run/eval/copenhagen.jsonl")
        n = copenhagen.write_jsonl(data_dir, jsonl)
        start = time.monotonic()

        async def replay() -> list[Suggestion]:
            with _progress() as progress:
                task = progress.add_task("replay", total=n)
                await pipeline.replay_direct(
                    jsonl, settings, progress=lambda k: progress.advance(task, k)
                )
            await pipeline.drain_matcher(settings, timeout=timeout)
            return await pipeline.read_suggestions(settings, idle_s=2.0, unique=False)

        got = asyncio.run(replay())
        _, expected = offline.replay(copenhagen.interactions(data_dir), running)
        extra = (
            check.pipeline_section(
                got,
                expected,
                cph(data_dir),
                events=n,
                elapsed_s=time.monotonic() - start,
                min_probability=running.min_probability,
            )
            + "\n"
            + extra
        )
    png = out.with_suffix(".png")
    report.plot(result["held"], result["sims"], png)
    text = report.render(result, policy, png.name, check.header(), extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(text)


@app.command()
def judge(
    events: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="Canonical JSONL, as replayed."),
    ],
    labels: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="CSV with the header a,b: the pairs named close."
        ),
    ],
    people: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="The people the labels speak for, one id a line; pairs with anyone else "
            "are left out (default: everyone).",
        ),
    ] = None,
    suggestions_file: Annotated[
        Path | None,
        typer.Option(
            "--suggestions",
            exists=True,
            dir_okay=False,
            help="The pipeline's suggestions (realconnect suggestions > FILE); default: the "
            "matcher's pure core decides on EVENTS with this deployment's settings.",
        ),
    ] = None,
    mutual: Annotated[
        bool, typer.Option(help="A pair is close only if both named each other.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Judge the matcher on your own community: the precision of its suggested pairs against
    the same number of pairs by raw count, reciprocal-first and recency, with 95% intervals.

    Bad event lines are reported with their line number and skipped (exit 1 after the
    report); an unreadable labels, people or suggestions file is an error (exit 2)."""
    import orjson

    from schemas.suggestions import SUGGESTION_ADAPTER
    from services import pipeline
    from services.evaluation import judge as judging
    from services.evaluation import offline
    from services.matcher.handlers import policy_from

    settings = _settings()
    policy = policy_from(settings.matcher)
    try:
        close, rows, skipped = judging.read_labels(labels, mutual=mutual)
        who = judging.read_people(people) if people is not None else None
    except (judging.LabelError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    bad = pipeline.BadLines()
    got: list[Any] = []
    for _, _, interaction in pipeline.valid_lines(pipeline.read_jsonl(events), bad):
        got.append(interaction)
    total = len(got) + bad.count
    if not got:
        typer.echo(f"error: {events} holds no valid interaction", err=True)
        raise typer.Exit(2)
    made: list[Suggestion] = []
    if suggestions_file is not None:
        for n, line in pipeline.read_jsonl(suggestions_file):
            try:
                made.append(SUGGESTION_ADAPTER.validate_json(line))
            except ValueError as exc:
                typer.echo(f"error: {suggestions_file} line {n}: not a suggestion", err=True)
                raise typer.Exit(2) from exc
    else:
        _, made = offline.replay(got, policy)  # in file order, as a replay sends them
    suggested: dict[tuple[str, str], float] = {}
    for s in made:  # a pair suggested again: its highest score
        suggested[s.pair] = max(s.score, suggested.get(s.pair, s.score))
    got.sort(key=lambda e: (e.occurred_at, e.event_id))
    result = judging.judge(got, close, suggested, policy, people=who)
    if as_json:
        typer.echo(orjson.dumps(judging.as_dict(result), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(
            f"labels: {len(close):,} close pairs from {rows:,} rows"
            + (f" ({skipped} naming themselves skipped)" if skipped else "")
        )
        typer.echo(judging.render(result))
    if bad.count:
        _report_bad(bad, total)
        typer.echo(f"error: {bad.count} bad line(s) of {total} skipped", err=True)
        raise typer.Exit(1)


@app.command("train-model")
def train_model(
    out: Annotated[Path, typer.Option(help="The model file to write.")] = Path(
        "services/matcher/models/tie-strength-v2.json"
    ),
    data_dir: Annotated[Path, typer.Option(envvar="REALCONNECT_DATA_DIR")] = Path("../shared/data"),
) -> None:
    """Fit the tie-strength model on the shared datasets and write it with its provenance."""
    from services.evaluation import report

    _settings()
    model = report.fit_shipped(data_dir, out, lambda m: typer.echo(m, err=True))
    typer.echo(f"wrote {out} ({model.version})")


@app.command("rebuild-feeds")
def rebuild_feeds() -> None:
    """Rebuild every feed in Redis from the Kafka topics (after Redis lost its data)."""
    from services.notifier.rebuild import rebuild

    counts = asyncio.run(rebuild(_settings()))
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@app.command("opt-in")
def opt_in(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    max_per_week: int = 100,
) -> None:
    """Record consent for every person in a canonical JSONL file (demos and trials, where
    the participants agreed to take part as a whole)."""
    from services.demo import opt_in_everyone

    n = asyncio.run(opt_in_everyone(_settings(), file, max_per_week=max_per_week))
    typer.echo(f"opted in {n} people")


@app.command("signin-link")
def signin_link(
    person: Annotated[
        str | None, typer.Argument(help="Whose page; default: someone with a suggestion")
    ] = None,
    ttl_s: Annotated[
        int | None, typer.Option(help="Seconds it works (default: FEEDS__SIGNIN_TTL_S)")
    ] = None,
) -> None:
    """Print a one-time sign-in link to a person's web page (through the feeds admin API)."""
    import httpx

    from services.demo import example_person

    settings = _settings()
    if person is None:
        person = asyncio.run(example_person(settings))
        if person is None:
            typer.echo("nobody has a suggestion yet: name a person", err=True)
            raise typer.Exit(1)
    base = settings.feeds.public_url.rstrip("/")
    r = httpx.post(
        f"{base}/v1/people/{quote(person, safe='')}/signin-links",
        params={"ttl_s": ttl_s} if ttl_s else None,
        headers={"authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
        timeout=10,
    )
    if r.status_code != 201:
        typer.echo(f"the feeds service at {base} answered {r.status_code}: {r.text}", err=True)
        raise typer.Exit(1)
    body = r.json()
    typer.echo(f"page of {person} (works once, until {body['expires_at']}):")
    typer.echo(f"  {body['url']}")


@app.command()
def summary(examples: int = 3) -> None:
    """Print the pipeline's counts and a few example feed items with their explanations."""
    from services.demo import summarize

    text = asyncio.run(summarize(_settings(), examples=examples))
    typer.echo(text)


@app.command()
def explain(
    a: Annotated[str, typer.Argument(help="One person (canonical id or source handle).")],
    b: Annotated[str, typer.Argument(help="The other.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Why a pair was suggested, or why not: every gate in order with its value and threshold,
    the one that decided, and what would change the answer (docs/matching.md)."""
    import orjson

    from services.explain import ExplainError
    from services.explain import explain as run

    try:
        got = asyncio.run(run(_settings(), a, b))
    except ExplainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    out = got.to_dict()
    if as_json:
        typer.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    from rich.table import Table

    console = Console()
    verdict = "[green]suggested[/]" if out["suggested"] else "[red]not suggested[/]"
    decided = "" if out["decided_by"] is None else f", decided by [bold]{out['decided_by']}[/]"
    console.print(f"{a} and {b}: {verdict} as of {out['at']}{decided}")
    table = Table("", "gate", "value", "threshold", "in words")
    for g in out["gates"]:
        mark = "[green]✓[/]" if g["passed"] else "[red]✗[/]"
        table.add_row(mark, g["name"], str(g["value"]), str(g["threshold"]), g["says"])
    console.print(table)
    if out["probability"] is not None:
        shares = ", ".join(f"{c['feature']} {c['share']:+.2f}" for c in out["contributions"][:4])
        console.print(f"model {out['model']}: {out['probability']:.3f} ({shares})")
    if out["would_change"]:
        console.print(f"what would change it: {out['would_change']}")
    if out["suggested"]:
        now = out["now"]
        console.print(
            f"suggestion {out['suggestion_id']}, answer: {out['outcome'] or 'none yet'}; "
            f"now: {'; '.join(g['says'] for g in now['gates'] if not g['passed']) or 'due again'}"
        )
    delivery = out.get("delivery")
    if delivery is not None:
        failed = [g for g in delivery["gates"] if not g["passed"]]
        action = {"deliver": "delivered", "hold": "held", "drop": "not delivered"}
        console.print(
            f"notifier ({delivery['at']}): {action.get(delivery['action'], delivery['action'])}"
            + (f", decided by [bold]{delivery['decided_by']}[/]" if delivery["decided_by"] else "")
            + "".join(f"; {g['says']}" for g in failed)
        )


if __name__ == "__main__":
    app()
