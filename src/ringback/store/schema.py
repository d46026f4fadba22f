"""The current schema as SQLAlchemy Core tables, used to build queries.

Times are integers: milliseconds since the Unix epoch, UTC (``*_at`` columns). Migrations in
``migrations.py`` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

metadata = sa.MetaData()


class _Json(sa.types.TypeDecorator[Any]):
    """JSON; JSONB on PostgreSQL. A type decorator rather than ``with_variant(JSONB())``: the
    variant needs PostgreSQL's dialect imported (~2 MiB) in every process, SQLite's too."""

    impl = sa.JSON
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(none_as_null=True)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # a database with binary JSON (PostgreSQL) names it among the types it reflects
        binary = getattr(dialect, "ischema_names", {}).get("jsonb")
        return dialect.type_descriptor((binary or sa.JSON)(none_as_null=True))


Json = _Json()
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY = rowid

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

queues = sa.Table(
    "queues",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False, server_default="off"),
    sa.Column("concurrent_task_limit", sa.Integer, nullable=False),
    sa.Column("max_calls_per_second", sa.Float, nullable=True),
    sa.Column("calling_hours", Json, nullable=True),
    sa.Column("rate_tokens", sa.Float, nullable=False, server_default="0"),
    sa.Column("rate_updated_at", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_call_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    # call again a callee whose answered call was cut by a fault (worker lost, shutdown)
    sa.Column("redial_interrupted", sa.Boolean, nullable=False, server_default=sa.false()),
    # migration 13: a task added without expires_at expires this long after it was added
    sa.Column("task_ttl_seconds", sa.Integer, nullable=True),
    sa.UniqueConstraint("client_id", "name", name="queues_client_name"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("queue_id", sa.BigInteger, sa.ForeignKey("queues.id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("payload", Json, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("run_at", sa.BigInteger, nullable=False),
    sa.Column("start_time_utc", sa.BigInteger, nullable=True),
    sa.Column("timezone", sa.Text, nullable=True),
    sa.Column("max_tries", sa.Integer, nullable=False),
    sa.Column("tries_used", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_caller_tries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("caller_tries_used", sa.Integer, nullable=False, server_default="0"),
    sa.Column("backoff", Json, nullable=True),
    sa.Column("caller_pause_s", sa.Float, nullable=False, server_default="0"),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("finish_result", sa.Text, nullable=True),
    sa.Column("finish_comment", sa.Text, nullable=True),
    sa.Column("cdr", sa.Text, nullable=True),
    sa.Column("lease_owner", sa.Text, nullable=True),
    sa.Column("lease_until", sa.BigInteger, nullable=True),
    sa.Column("fence", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("event_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("first_attempt_at", sa.BigInteger, nullable=True),
    sa.Column("last_attempt_at", sa.BigInteger, nullable=True),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    sa.Column("webhooks", Json, nullable=True),  # a job's own webhook URLs (options.webhooks)
    sa.Column("expires_at", sa.BigInteger, nullable=True),  # migration 13: finished if passed
    sa.Column("priority", sa.Integer, nullable=False, server_default="5"),  # 0-9, 9 first
    sa.Column("timezone_source", sa.Text, nullable=True),  # given, number, queue (issue 18)
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("call_uuid", sa.Text, nullable=False),
    sa.Column("leg_uuid", sa.Text, nullable=False),
    sa.Column("leg", sa.Text, nullable=False),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("queue_id", sa.BigInteger, nullable=True),
    sa.Column("task_id", sa.BigInteger, nullable=True),
    sa.Column("attempt", sa.Integer, nullable=True),
    sa.Column("direction", sa.Text, nullable=False),
    sa.Column("from_number", sa.Text, nullable=True),
    sa.Column("to_number", sa.Text, nullable=False),
    sa.Column("caller_id_name", sa.Text, nullable=True),
    sa.Column("sip_code", sa.Integer, nullable=True),
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("hangup_cause", sa.Text, nullable=True),
    sa.Column("hangup_disposition", sa.Text, nullable=True),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("ringing_at", sa.BigInteger, nullable=True),
    sa.Column("answered_at", sa.BigInteger, nullable=True),
    sa.Column("ended_at", sa.BigInteger, nullable=True),
    sa.Column("bridged_at", sa.BigInteger, nullable=True),
    sa.Column("bridged_with", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.BigInteger, nullable=True),
    sa.Column("billsec_ms", sa.BigInteger, nullable=True),
    sa.Column("played", Json, nullable=False),
    sa.Column("dtmf_received", sa.Text, nullable=False, server_default=""),
    sa.Column("detail", Json, nullable=False),
    # dialing -> answered -> ended, or interrupted (closed by the reaper: its worker died)
    sa.Column("state", sa.Text, nullable=False, server_default="ended"),
    sa.Column("worker", sa.Text, nullable=True),  # the worker that placed the leg
    sa.Column("fax", Json, nullable=True),  # the call's fax result (cdr.FAX_FIELDS)
    sa.Column("amd", Json, nullable=True),  # answering-machine detection (amd.AMD_FIELDS)
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("queue_id", sa.BigInteger, nullable=True),
    sa.Column("task_id", sa.BigInteger, nullable=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.BigInteger, nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Column("dispatched_at", sa.BigInteger, nullable=True),  # fanned out to webhook targets
    sa.UniqueConstraint("task_id", "seq", name="events_task_seq"),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("secret_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # migration 10: a rotation bumps the version (older tokens stop working); disabled: refused
    sa.Column("secret_version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("disabled_at", sa.BigInteger, nullable=True),
    sa.Column("rotated_at", sa.BigInteger, nullable=True),
)

# valid while its credential exists, is not disabled and still has this secret_version
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("credential_id", sa.BigInteger, sa.ForeignKey("credentials.id"), nullable=False),
    sa.Column("secret_version", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", Json, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_secret_until", sa.BigInteger, nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

webhook_keys = sa.Table(
    "webhook_keys",
    metadata,
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_secret_until", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("rotated_at", sa.BigInteger, nullable=True),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("task_id", sa.BigInteger, nullable=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("target_kind", sa.Text, nullable=False),
    sa.Column("target_key", sa.Text, nullable=False),
    sa.Column("subscription_id", sa.BigInteger, nullable=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("lease_owner", sa.Text, nullable=True),
    sa.Column("lease_until", sa.BigInteger, nullable=True),
    sa.Column("fence", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("response_excerpt", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.Column("dead_at", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("event_id", "target_key", name="webhook_deliveries_event_target"),
)

# tasks per queue and status, kept by triggers (migrations 8 and 20): one row per (queue,
# status) on SQLite, appended changes on PostgreSQL; a count is the sum of ``n`` (migrations.py)
# kept by triggers on tasks (migrations 8 and 20): how many tasks of each status a queue
# holds, summed (PostgreSQL keeps appended changes); a queue's total is the sum of its rows
queue_status_counts = sa.Table(
    "queue_status_counts",
    metadata,
    sa.Column("queue_id", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
)

# inbound routing (migration 6): a called number belongs to one client and leads to an IVR
numbers = sa.Table(
    "numbers",
    metadata,
    sa.Column("number", sa.Text, primary_key=True),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("answer_url", sa.Text, nullable=True),
    sa.Column("ivr_file", sa.Text, nullable=True),
    sa.Column("notify_completed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# do-not-call lists (migration 12): numbers and prefixes a client's calls may not reach
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("list_name", sa.Text, nullable=False),
    sa.Column("number", sa.Text, nullable=False),
    sa.Column("prefix", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("client_id", "number", "prefix", "list_name", name="suppressions_entry"),
)

# campaign rules (migration 17): frequency caps per callee and allowed caller ids of a client
frequency_caps = sa.Table(
    "frequency_caps",
    metadata,
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), primary_key=True),
    sa.Column("window_seconds", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("max_calls", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)
caller_ids = sa.Table(
    "caller_ids",
    metadata,
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), primary_key=True),
    sa.Column("number", sa.Text, primary_key=True),
    sa.Column("prefix", sa.Boolean, primary_key=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# who changed what, and when (migration 18): written by the application layer with the change
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("occurred_at", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),  # api, console, cli, ivr, system
    sa.Column("credential_id", sa.BigInteger, nullable=True),
    sa.Column("operator", sa.Text, nullable=True),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("object_type", sa.Text, nullable=False),
    sa.Column("object_id", sa.Text, nullable=True),
    sa.Column("summary", Json, nullable=False),
)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("applied_at", sa.BigInteger, nullable=False),
)
