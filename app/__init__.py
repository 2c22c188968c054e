"""The application layer: settings, CLI, and (later) the API, storage and UI that wire real adapters in."""
