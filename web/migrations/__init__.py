"""Alembic migrations of the server's database (``hyperlab.web.db`` runs them at start)."""
