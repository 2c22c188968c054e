"""Domain packs and tenant policy packs: schemas, loading, validation, the importer and decisions.

This layer only reads pack files; it has no network, database or web dependencies.
"""
