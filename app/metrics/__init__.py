"""Case metrics per tenant, computed in the database from the system of record."""
