-- Not backward compatible: the old release reads `email`, the new one `login`. They cannot run
-- side by side, hence the recreate strategy, and a rollback restores the backup.
ALTER TABLE users RENAME COLUMN email TO login;
