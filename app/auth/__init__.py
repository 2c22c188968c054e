"""Who is calling: API keys (hashed at rest) and optional JWT bearer tokens, with roles per tenant."""
