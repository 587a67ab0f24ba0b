"""
Signals for writes that bypass ``Model.save()``.

Bulk imports (a code set of 100,000 rows) cannot afford a ``post_save`` per row. They
send these instead, after the transaction's writes, so that derived data (the search
index, similar codes) can catch up without the content layer importing it.
"""

from django.dispatch import Signal

# Sent with ``system`` (a CodeSystem value) and ``ids`` (the primary keys of the Code
# rows created or changed in bulk).
codes_bulk_saved = Signal()

# Sent by the lay-term thesaurus import (procedures.lay_terms.load_thesaurus) inside its
# transaction, with ``phrases`` (the phrases created, changed or deleted), ``targets``
# (the (system, code or prefix) pairs added or removed) and ``synonyms_changed``.
lay_terms_bulk_saved = Signal()
