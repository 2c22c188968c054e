"""Cases: ingestion, background processing, the stored view of each case and its timeline."""
