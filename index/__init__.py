"""
The index: everything derived from content, and nothing else.

- ``index.search``: search documents, the query reader and one engine with two
  backends (SQLite FTS5, PostgreSQL full text with pg_trgm);
- ``index.similar``: each code's ranked similar-codes list, with reasons;
- ``index.models``: their tables (``SearchDocument``, ``SearchWord``, ``SimilarCode``);
- ``index.changes``: the one change queue, listening to the content apps and
  refreshing both on commit;
- ``manage.py rebuild_search_index`` and ``rebuild_similar_codes`` remake them.

Layers: codes ← content (``procedures``, ``policies``) ← index ← pages. The content
apps never import this package (``make test`` checks it, see ``.importlinter``).
"""
