"""create_app(settings): builds the aiohttp application and everything it owns.

Nothing connects at import time: the database, the HTTP session, the WeChat client, the
group committer, the spool and the dispatcher open in cleanup contexts and close in reverse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot import db
from bangfu_bot.broadcasts.service import send_pending
from bangfu_bot.cases.procedure import Rules as ProcedureRules
from bangfu_bot.chats import chat_bot
from bangfu_bot.clock import Clock, OffsetClock, SystemClock
from bangfu_bot.conversation import store as dialogues
from bangfu_bot.conversation.bot import Bot
from bangfu_bot.desk.views import setup_desk
from bangfu_bot.group_commit import GroupCommitter
from bangfu_bot.jobs import all_jobs
from bangfu_bot.leadership import Leadership
from bangfu_bot.members.service import prefetch_people
from bangfu_bot.notify.outbox import DeliveryRules, Dispatcher
from bangfu_bot.scheduler import JobContext, start_scheduler
from bangfu_bot.services import SERVICES, Services, run_jobs
from bangfu_bot.settings import Settings
from bangfu_bot.wechat.client import WeChatClient
from bangfu_bot.wechat.crypto import PushVerifier
from bangfu_bot.wechat.fake_api import FakeWeChatAPI
from bangfu_bot.wechat.inbox import Inbox, prefetch_answers
from bangfu_bot.wechat.replay import ReplayGuard
from bangfu_bot.wechat.spool import JournalUnavailable, Spool
from bangfu_bot.wechat.tokens import DatabaseTokenStore
from bangfu_bot.wechat.webhook import Webhook

__all__ = ["SERVICES", "Services", "StartupError", "create_app", "run_jobs"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    bot: Bot | None = None,
    migrate: bool | None = None,
) -> web.Application:
    """Build the application; raises FlowsInvalid if a dialogue file is wrong, and
    HolidaysInvalid if conversations/holidays.toml is.

    `migrate` defaults to True on the embedded SQLite store. In the sandbox the clock is an
    OffsetClock the sandbox page can move forward; where it stood is read back from the
    database at start.
    """
    if bot is None:
        bot = chat_bot(settings)
    if clock is None:
        clock = OffsetClock() if settings.sandbox else SystemClock()
    services = Services(
        settings=settings,
        clock=clock,
        bot=bot,
        spool_retry_s=settings.spool_retry_s,
        shutdown_grace_s=settings.shutdown_grace_s,
        leader_retry_s=settings.leader_retry_s,
    )
    app = web.Application(client_max_size=settings.max_body_bytes + 1024)
    app[SERVICES] = services
    should_migrate = settings.is_sqlite if migrate is None else migrate
    app.cleanup_ctx.append(_database(services, should_migrate))
    app.cleanup_ctx.append(_wechat(services))
    app.cleanup_ctx.append(_message_path(services))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/wechat", _late_bound(services, "url_check"))
    app.router.add_post("/wechat", _late_bound(services, "push"))
    setup_desk(app)
    if settings.sandbox:
        from bangfu_bot.sandbox.views import setup_sandbox

        setup_sandbox(app)
    return app


def _late_bound(services: Services, name: str):
    # The webhook exists only once the cleanup contexts ran; routes are fixed before that.
    async def handler(request: web.Request) -> web.StreamResponse:
        webhook: Webhook = request.app[WEBHOOK]
        return await getattr(webhook, name)(request)

    return handler


WEBHOOK = web.AppKey("webhook", Webhook)


def _database(services: Services, should_migrate: bool):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = services.settings
        engine = db.make_engine(settings.database_url, busy_timeout_ms=settings.db_busy_timeout_ms)
        if should_migrate:
            await db.migrate(engine)
        try:
            await _check_writable(engine, settings)
        except StartupError:
            await engine.dispose()
            raise
        services.changes.watch(engine)
        services.engine = engine
        if settings.sandbox and isinstance(services.clock, OffsetClock):
            # Before the jobs' catch-up run: they run at the time the data was left at.
            from bangfu_bot.sandbox.clock import restore

            await restore(engine, services.clock)
        if settings.notice_working_days:
            _warn_missing_holidays(services)
        yield
        await engine.dispose()

    return ctx


def _warn_missing_holidays(services: Services) -> None:
    """One line in the log when the holidays file lacks this year: its notices' working
    days are counted Monday to Friday."""
    settings = services.settings
    year = services.clock.now().astimezone(settings.tz).year
    ProcedureRules.from_settings(settings).holidays.warn_missing(year)


class StartupError(Exception):
    """The bot cannot start; the message names the path or store and the cause."""


async def _check_writable(engine: AsyncEngine, settings: Settings) -> None:
    """Refuse to start on an embedded store that cannot be written (a read-only file would
    answer reads, say /healthz ok, and fail every push); a database server that is away
    only delays: pushes are journaled until it returns."""
    try:
        await db.writable(engine)
    except Exception as error:  # noqa: BLE001 - sorted: refuse or warn
        cause = db.unavailable(error) or type(error).__name__
        if settings.is_sqlite:
            path = settings.database_url.split(":///", 1)[-1]
            raise StartupError(f"the database {path} cannot be written: {cause}") from None
        log.warning(
            "database unavailable at start (%s): pushes are journaled until it returns", cause
        )


def _wechat(services: Services):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = services.settings
        api_base = settings.wechat_api_base
        if settings.sandbox and not settings.has_credentials:
            services.fake = FakeWeChatAPI(
                appid=settings.wechat_appid,
                secret=settings.wechat_secret,
                clock=services.clock,
                account_type=settings.wechat_account_type,
            )
            delivery = DeliveryRules.from_settings(settings)
            for template_id, template in delivery.all_templates().items():
                # Each kind of notice's template, as a county would add it in the platform.
                services.fake.add_template(
                    template_id,
                    {item.key: item.type for item in template.fields},
                    title=template.title,
                    labels={item.key: item.label for item in template.fields},
                )
            api_base = await services.fake.start()
            log.info("sandbox: fake WeChat API at %s", api_base)
        session = aiohttp.ClientSession()
        assert services.engine is not None
        services.client = WeChatClient(
            appid=settings.wechat_appid,
            secret=settings.wechat_secret,
            api_base=api_base,
            token_store=DatabaseTokenStore(services.engine, services.clock),
            session=session,
            clock=services.clock,
            timeout_s=settings.http_timeout_s,
            on_call=services.metrics.on_wechat_call,
        )
        yield
        await session.close()
        if services.fake is not None:
            await services.fake.stop()

    return ctx


def _message_path(services: Services):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = services.settings
        assert services.engine is not None and services.client is not None
        committer = GroupCommitter(
            services.engine,
            window_s=settings.batch_window_ms / 1000,
            max_batch=settings.batch_max,
            # What every push reads, fetched once per batch (see group_commit).
            prefetch=[prefetch_answers, dialogues.prefetch, prefetch_people],
            on_batch=services.metrics.batch_size.observe,
            writers=1 if services.engine.dialect.name == "sqlite" else 2,
        )
        committer.start()
        spool = Spool(settings.spool_dir)
        try:
            spool.open()
        except JournalUnavailable as error:
            raise StartupError(str(error)) from None
        services.spool = spool
        engine, client, clock = services.engine, services.client, services.clock
        services.job_context = JobContext(engine=engine, clock=clock, tz=settings.tz)
        services.jobs = all_jobs(settings, client)
        rules = DeliveryRules.from_settings(settings)
        dispatcher = Dispatcher(
            engine=engine,
            client=client,
            clock=clock,
            rules=rules,
            also=[lambda: send_pending(engine, client, clock, rules)],
        )
        inbox = Inbox(
            committer=committer,
            bot=services.bot,
            clock=services.clock,
            spool=spool,
            metrics=services.metrics,
            on_outbox=dispatcher.wake,
            capacity=settings.max_inflight,
        )
        services.inbox = inbox
        services.dispatcher = dispatcher
        app[WEBHOOK] = Webhook(
            verifier=PushVerifier(
                token=settings.wechat_token,
                appid=settings.wechat_appid,
                aes_key=settings.wechat_aes_key,
                aes_key_previous=settings.wechat_aes_key_previous,
                max_clock_skew_s=settings.max_clock_skew_s,
                clock=services.clock,
                modes=settings.wechat_modes,
            ),
            # Shared through the database where several processes may serve (not the
            # loopback-only sandbox, where the bench measures the message path).
            replay=ReplayGuard(
                window_s=settings.max_clock_skew_s,
                clock=services.clock,
                engine=None if settings.sandbox or settings.is_sqlite else services.engine,
            ),
            inbox=inbox,
            clock=services.clock,
            metrics=services.metrics,
            reply_budget_s=settings.reply_budget_s,
            max_body_bytes=settings.max_body_bytes,
        )
        leader_work = _LeaderWork(services, dispatcher)
        leadership = Leadership(
            services.engine,
            on_elected=leader_work.start,
            on_deposed=leader_work.stop,
            retry_s=services.leader_retry_s,
        )
        services.leadership = leadership
        leadership.start()
        stop_replaying = asyncio.Event()
        replayer = asyncio.create_task(_replay_spool(inbox, services.spool_retry_s, stop_replaying))
        yield
        await leadership.close()
        stop_replaying.set()
        await asyncio.gather(replayer, return_exceptions=True)
        await inbox.drain(services.shutdown_grace_s)
        await committer.close(services.shutdown_grace_s)
        spool.close()

    return ctx


class _LeaderWork:
    """What only the leader runs: the scheduler (with a catch-up run) and the dispatcher."""

    def __init__(self, services: Services, dispatcher: Dispatcher) -> None:
        self._services = services
        self._dispatcher = dispatcher
        self._scheduler: Any = None
        self._catch_up: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._dispatcher.start()
        assert self._services.job_context is not None
        self._scheduler = start_scheduler(self._services.jobs, self._services.job_context)
        self._catch_up = asyncio.create_task(self._run_all())

    async def _run_all(self) -> None:
        try:
            await run_jobs(self._services, starting=True)
        finally:
            self._services.caught_up.set()

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._catch_up is not None:
            # Let the start-up run finish its transaction rather than cut it off.
            done, _ = await asyncio.wait([self._catch_up], timeout=5)
            if not done:
                self._catch_up.cancel()
            await asyncio.gather(self._catch_up, return_exceptions=True)
        await self._dispatcher.close()


async def _replay_spool(inbox: Inbox, every_s: float, stop: asyncio.Event) -> None:
    # Journaled pushes (answered `success` before their work committed) until they commit.
    # Stops between rounds, never in the middle of one.
    while not stop.is_set():
        try:
            await inbox.replay()
        except Exception as exc:  # noqa: BLE001 - try again at the next round
            log.warning("spool replay failed: %s", type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass


async def healthz(request: web.Request) -> web.Response:
    """200 when the database takes a write and the journal can be written; 503 otherwise,
    naming which and why."""
    services = request.app[SERVICES]
    assert services.engine is not None
    body: dict[str, Any] = {"ok": True, "database": "ok", "journal": "ok"}
    try:
        await asyncio.wait_for(db.writable(services.engine), 2)
    except Exception as exc:  # noqa: BLE001 - any failure is "not healthy"
        body.update(ok=False, database=db.unavailable(exc) or type(exc).__name__)
    trouble = services.spool.healthy if services.spool is not None else "not open"
    if trouble is not None:
        body.update(ok=False, journal=trouble)
    return web.json_response(body, status=200 if body["ok"] else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = request.app[SERVICES].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")
