-- Loading credentials reads the credential events of the audit log (the last recorded binding
-- and revocations of each credential); this index keeps that from scanning the whole log.
CREATE INDEX audit_log_event ON audit_log (event, seq);
