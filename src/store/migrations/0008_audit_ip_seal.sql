-- Client addresses in the audit log are kept whole for a limited time. From here on an entry's
-- chain hash covers SHA-256(salt || address) (`ip_digest`) instead of the address itself; the
-- salt is kept while the address is whole, so the two can be checked, and both are dropped when
-- the address is cut to its network, which the digest then no longer reveals.
ALTER TABLE audit_log ADD COLUMN ip_digest BLOB;
ALTER TABLE audit_log ADD COLUMN ip_salt BLOB;
