"""Migration operations that a live installation can apply while it serves requests."""
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.migrations.operations import AddIndex


class AddIndexLive(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL: a SHARE UPDATE EXCLUSIVE lock, so reads and
    writes of the table go on while it builds (its migration must set `atomic = False`). A
    plain CREATE INDEX elsewhere: SQLite, for development, knows no CONCURRENTLY."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
