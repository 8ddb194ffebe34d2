-- Scans older than TESSERA_SCAN_RETENTION_DAYS are deleted by the worker: by time, so by an index on it.
CREATE INDEX scans_scanned_at ON scans (scanned_at);
