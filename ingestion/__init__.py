"""Reading paper abstracts from files and feeds, normalising them and cutting them into chunks.

``readers`` (read_path, read_bytes), ``hf_feed`` (fetch_daily_papers), ``normalize`` (normalize_text,
make_paper_id, build_paper, deduplicate), ``chunking`` (chunk_paper), ``errors`` (IngestionError).
Nothing is imported here, so that ``from ingestion.errors import IngestionError`` stays cheap.
"""
