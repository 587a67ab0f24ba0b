"""
Official code sets: parsers that read a release into unsaved rows, and the bulk save.

Each parser (``icd10cm``, ``hcpcs``, ``cpt``) returns a :class:`~.saving.ParsedCodeSet`
of unsaved ``Code`` (and for ICD-10-CM ``CodeSection``) objects plus problems, and
never touches the database. ``saving.save_code_set`` writes one in a transaction,
touching only rows that differ, so importing the same release twice writes nothing.
The ``import_icd10cm``, ``import_hcpcs`` and ``import_cpt`` commands join the two.
"""
