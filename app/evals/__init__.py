"""The eval suite wired to the app: run contexts, LLM clients and providers, stored cases, what-if."""
