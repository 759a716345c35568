"""PySide6 widgets that call studio.core; long work runs in worker threads."""
