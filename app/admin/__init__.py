"""Administration: tenants, API keys, pack versions and per-tenant tool switches."""
