"""Outputs and input offsets committed together: one Kafka transaction per batch.

A stage that reads records and writes what they cause (the matcher: suggestions, dead letters,
its pair states' changelog) uses one transactional producer (aiokafka's, ``transactional_id``
stable per worker). For each batch it:

1. sends the batch's outputs through it (`send`, `send_many`; the first send opens the
   transaction);
2. adds the batch's input offsets (`consumed`) with ``send_offsets_to_transaction``;
3. commits, in the background (`commit_soon`): the stage reads and decides its next batch
   meanwhile, and that batch's first send waits for the commit. The batch's input records are
   acknowledged to the consumer only once it is committed.

Readers read ``read_committed``: a worker killed anywhere in between leaves an open
transaction that the broker aborts when the worker's successor starts with the same
``transactional_id`` (or when ``transaction_timeout_ms`` passes), so its outputs are never
seen, its offsets never committed, and the batch is processed again: nothing is lost and
nothing is duplicated downstream, without any dedupe by the reader.

The futures `send_many` returns resolve only once the transaction is committed (with each
batch's record metadata), so that a local store written on them (``PairStore``) never holds
a write Kafka might still abort. If the commit fails, they fail, and their owner stops the
worker (its batch is then processed again by the next owner).

Limits: aiokafka does not send the consumer group's generation with the offsets (KIP-447),
so a *zombie* (a worker cut off from its group but still running, whose partitions moved)
is fenced only if its successor uses the same ``transactional_id``; a worker that stops
normally or is killed and restarted is. See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import Counter, Histogram

from services.common import records
from services.common.faust_transport import send_in_batches
from services.common.settings import Settings

log = structlog.get_logger(__name__)

COMMITTED: Final = Counter("realconnect_transactions_committed", "Kafka transactions committed")
ABORTED: Final = Counter(
    "realconnect_transactions_aborted",
    "Kafka transactions that failed to commit (aborted: their outputs are never read, their "
    "input records are processed again by the worker's successor)",
)
COMMIT_SECONDS: Final = Histogram(
    "realconnect_transaction_commit_seconds",
    "From a batch's commit being asked for to the broker's commit (acknowledgements included)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def default_transactional_id(app_id: str, web_port: int) -> str:
    """Stable across restarts of the same worker (host and port): a restarted worker fences
    its predecessor's open transaction at once."""
    return f"{app_id}.{socket.gethostname()}.{web_port}"


class Transactions:
    def __init__(
        self,
        settings: Settings,
        *,
        transactional_id: str,
        group_id: str,
        transaction_timeout_ms: int = 15_000,
        on_abort: Callable[[], None] | None = None,
    ) -> None:
        """``on_abort``: called (on the loop, synchronously) when a transaction fails to
        commit, before its owner stops: where the count outlives the process."""
        self.transactional_id = transactional_id
        self._on_abort = on_abort
        self.group_id = group_id
        self._settings = settings
        self._timeout_ms = transaction_timeout_ms
        self._producer_: AIOKafkaProducer | None = None  # made on the running loop (start)
        self._started = False
        self._open = False
        self._committing: asyncio.Task[None] | None = None
        self._offsets: dict[TopicPartition, int] = {}
        # (the future handed out, the send's own future) of `send_many`, until the commit
        self._deferred: list[tuple[asyncio.Future[Any], asyncio.Future[Any]]] = []

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._producer_ is None:
            s = self._settings
            self._producer_ = AIOKafkaProducer(
                bootstrap_servers=s.kafka.bootstrap_servers,
                client_id=f"{self.group_id}-txn",
                transactional_id=self.transactional_id,
                enable_idempotence=True,
                acks="all",
                linger_ms=s.kafka.linger_ms,
                compression_type=s.kafka.compression_type,
                max_batch_size=512 * 1024,
                request_timeout_ms=30_000,
                transaction_timeout_ms=self._timeout_ms,
                partitioner=records.KafkaPartitioner(),
            )
        return self._producer_

    async def start(self) -> None:
        if not self._started:
            await self._producer.start()  # fences (aborts) a predecessor's open transaction
            self._started = True
            log.info("transactions_started", transactional_id=self.transactional_id)

    async def begin(self) -> None:
        """Open a transaction, once the one before is committed (`commit_soon`)."""
        await self.start()
        if self._committing is not None:
            await self._committing  # its failure stops the worker (the owner's callback)
            self._committing = None
        if not self._open:
            await self._producer.begin_transaction()
            self._open = True

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """Send within the transaction (opened by the first send); the future resolves when
        the broker has the record (before the commit: readers see it only after)."""
        if not self._open:
            await self.begin()
        sent: asyncio.Future[Any] = await self._producer.send(
            topic, value, key=key, partition=partition, headers=headers
        )
        return sent

    async def send_many(
        self, topic: str, partition: int, items: Collection[tuple[bytes, bytes | None]]
    ) -> list[asyncio.Future[Any]]:
        """Records of one partition in producer batches; one future per batch, resolved with
        its first record's metadata once the transaction is **committed**."""
        if not self._open:
            await self.begin()
        sent = await send_in_batches(self._producer, topic, partition, items)
        loop = asyncio.get_running_loop()
        handed: list[asyncio.Future[Any]] = []
        for fut in sent:
            mine: asyncio.Future[Any] = loop.create_future()
            self._deferred.append((mine, fut))
            handed.append(mine)
        return handed

    def consumed(self, messages: Iterable[Any]) -> None:
        """Input records of this transaction (anything with ``topic``, ``partition`` and
        ``offset``): their offsets are committed with it."""
        offsets = self._offsets
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            if m.offset + 1 > offsets.get(tp, -1):
                offsets[tp] = m.offset + 1

    async def commit(self) -> None:
        """Commit what was sent since the last commit, with the offsets `consumed`."""
        await self.commit_soon()

    def commit_soon(self) -> asyncio.Task[None]:
        """Commit in the background: what was sent and consumed so far is taken now, and the
        caller goes on (reads and decides its next batch) while the broker acknowledges and
        commits; the next send opens a new transaction once this one is committed. The
        deferred futures resolve (or fail) with the commit. A batch that sent nothing opened
        no transaction: its offsets are left to the consumer's own commit."""
        offsets, self._offsets = self._offsets, {}
        deferred, self._deferred = self._deferred, []
        was_open, self._open = self._open, False
        task = asyncio.ensure_future(self._commit(offsets, deferred, was_open, self._committing))
        self._committing = task
        return task

    async def _commit(
        self,
        offsets: dict[TopicPartition, int],
        deferred: list[tuple[asyncio.Future[Any], asyncio.Future[Any]]],
        was_open: bool,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            await previous
        if not was_open:
            return
        started = time.perf_counter()
        try:
            if deferred:
                await asyncio.gather(*(f for _, f in deferred))
            if offsets:
                await self._producer.send_offsets_to_transaction(offsets, self.group_id)
            await self._producer.commit_transaction()
        except BaseException as exc:
            ABORTED.inc()
            if self._on_abort is not None:
                self._on_abort()
            _fail(deferred, exc)
            if not isinstance(exc, asyncio.CancelledError):  # stopping: the broker aborts it
                await self._abort(exc)
            raise
        COMMITTED.inc()
        COMMIT_SECONDS.observe(time.perf_counter() - started)
        for mine, fut in deferred:
            if not mine.done():
                mine.set_result(fut.result())

    async def _abort(self, cause: BaseException) -> None:
        """Abort the failed transaction if the producer still can (a fenced one cannot: the
        broker aborts it for its successor, or at ``transaction_timeout_ms``)."""
        try:
            await asyncio.wait_for(self._producer.abort_transaction(), timeout=5)
        except Exception as exc:  # the commit's own failure is what counts
            log.warning("transaction_abort_failed", cause=repr(cause), error=repr(exc))
        else:
            log.warning("transaction_aborted", cause=repr(cause))


def _fail(
    deferred: list[tuple[asyncio.Future[Any], asyncio.Future[Any]]], exc: BaseException
) -> None:
    for mine, _ in deferred:
        if not mine.done():
            mine.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))


class TransactionalTopic:
    """A topic the handlers send to as to a faust topic (``send(key=, value=, headers=)``,
    awaited for a future), through the open transaction."""

    def __init__(self, transactions: Transactions, name: str) -> None:
        self._txn = transactions
        self.name = name

    async def send(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        return await self._txn.send(
            self.name, key=key, value=value, partition=partition, headers=headers
        )
