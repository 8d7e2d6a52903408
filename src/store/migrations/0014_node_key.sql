-- The node key (issue 16): the owner key's binding of the node's own key. The key itself lives
-- in `node.key` in the data directory, never here; the binding is public.
CREATE TABLE node_key_binding (
    node_kid TEXT PRIMARY KEY,
    binding TEXT NOT NULL,
    bound_at INTEGER NOT NULL
) STRICT;
