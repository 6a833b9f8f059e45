-- Backward compatible (runbook 000: "migration reviewed for backward compatibility"): v1 never
-- reads this table, so v1 and v2 can serve side by side during the rolling update.
CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id));
