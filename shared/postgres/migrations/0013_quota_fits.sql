-- quota_fits is the quota's one rule of arithmetic in SQL, the twin of
-- document.Quota.Fits (the store contract suite holds them to one
-- behaviour): adding add bytes to used keeps used, reserved and them
-- within lim; taking bytes (add <= 0) always fits. Every statement that
-- checks a fit under its row locks (createDocument's reservation, settle's
-- charge) calls it. A plain SQL function: the planner inlines it.
CREATE OR REPLACE FUNCTION quota_fits(used bigint, reserved bigint, add bigint, lim bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT add <= 0 OR used + reserved + add <= lim $$;
