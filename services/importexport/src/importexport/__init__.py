"""CallManager import/export: file readers, header detection, the row pipeline and export writers.

``readers.open_rows`` → ``headers.detect_headers`` → ``rows.classify_rows`` (→ ``rows.merge_duplicates``)
for imports; ``writers.write_xlsx`` / ``writers.write_csv`` for exports. Pure file work: no database,
no network.
"""
