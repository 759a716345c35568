"""The curation workspace: its SQLite store, `studio batch` that fills it, `studio export`."""
