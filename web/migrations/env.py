"""Alembic's entry point: runs the migrations on the connection :class:`hyperlab.web.db.Database` hands in.

(Alembic loads this file by path; there is no ``alembic.ini`` — the server is the only one that migrates.)
"""

from __future__ import annotations

from alembic import context

from hyperlab.web.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
