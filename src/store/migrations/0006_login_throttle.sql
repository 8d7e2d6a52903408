-- Failed sign-ins, one row per client: the times of its newest failures (at most the window's
-- limit) as a JSON array, rewritten whole when they change. A flood of failures from many
-- clients then costs one small row per client, not one row per failure.
DROP TABLE login_failure;
CREATE TABLE login_throttle (
    client TEXT PRIMARY KEY,
    failures TEXT NOT NULL,
    last_at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_throttle_by_time ON login_throttle (last_at);
