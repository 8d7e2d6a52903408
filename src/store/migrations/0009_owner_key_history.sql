-- The owner key's history and the owner record's signature. Every key the owner has had is a
-- row here, oldest first, with the key statement that introduced it: the first is self-signed
-- ("genesis"), each later one is signed by the key before it (or by the new key alone after a
-- reset). The owner row carries the owner key's signature over the record the node serves (the
-- key, the wrapped key and the verifier hash). A node claimed before this has neither: it is
-- served as unsigned until the owner signs it.
CREATE TABLE owner_key_history (
    seq INTEGER PRIMARY KEY CHECK (seq >= 0),
    kid TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    since INTEGER NOT NULL,
    statement TEXT NOT NULL
) STRICT;
ALTER TABLE owner ADD COLUMN record_signature TEXT;
