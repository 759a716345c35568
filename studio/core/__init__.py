"""Pure-Python core, grouped by job into wings (docs/architecture.md). Never imports Qt."""
