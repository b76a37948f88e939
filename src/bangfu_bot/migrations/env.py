"""Alembic environment: always given a live connection by bangfu_bot.db.migrate."""

from alembic import context

from bangfu_bot.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `bangfu-bot db upgrade`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
