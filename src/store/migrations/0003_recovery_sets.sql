-- Metadata of the recovery share sets the owner has made. The shares themselves never reach
-- the node. `labels` is a JSON array of one label per share.
CREATE TABLE recovery_set (
    set_id TEXT PRIMARY KEY CHECK (length(set_id) = 8),
    kid TEXT NOT NULL,
    threshold INTEGER NOT NULL CHECK (threshold BETWEEN 2 AND 16),
    shares INTEGER NOT NULL CHECK (shares BETWEEN threshold AND 16),
    labels TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
