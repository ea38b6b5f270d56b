"""Alembic environment and versions for the gallery schema (installed as facesearch.migrations)."""
