-- Reviving keys marked dead by mistake: when the Store refused keys for a reason of its own (a service-side
-- outage that slipped past the daemon's guards), an admin brings back every key marked dead since then.

-- Clears the dead mark of every key (collections and purchase) marked dead at or after p_since, of the
-- given players or of all, and queues a resync of each player revived (which wakes the daemon). Returns
-- how many players were revived. A key the Store really refuses is marked dead again by the next sync.
CREATE FUNCTION entitlement_sync.revive_keys(p_since timestamptz, p_user_ids text[] DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  IF p_since IS NULL THEN
    RAISE EXCEPTION 'revive_keys needs a time: keys marked dead at or after it are revived'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  WITH revived AS (
    UPDATE entitlement_sync.user_keys k SET
      collections_key_dead_at = CASE WHEN k.collections_key_dead_at >= p_since THEN NULL
                                     ELSE k.collections_key_dead_at END,
      collections_key_dead_reason = CASE WHEN k.collections_key_dead_at >= p_since THEN NULL
                                         ELSE k.collections_key_dead_reason END,
      purchase_key_dead_at = CASE WHEN k.purchase_key_dead_at >= p_since THEN NULL
                                  ELSE k.purchase_key_dead_at END,
      purchase_key_dead_reason = CASE WHEN k.purchase_key_dead_at >= p_since THEN NULL
                                      ELSE k.purchase_key_dead_reason END,
      updated_at = now()
     WHERE (k.collections_key_dead_at >= p_since OR k.purchase_key_dead_at >= p_since)
       AND (p_user_ids IS NULL OR k.user_id = ANY (p_user_ids))
    RETURNING k.user_id
  ), queued AS (
    INSERT INTO entitlement_sync.key_uploads (user_id, kind, full_sync)
    SELECT user_id, 'resync', false FROM revived
    RETURNING 1
  )
  SELECT count(*) INTO n FROM queued;
  RETURN n;
END $$;

REVOKE ALL ON FUNCTION entitlement_sync.revive_keys(timestamptz, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION entitlement_sync.revive_keys(timestamptz, text[]) TO entitlement_syncd, entitlement_admin;
