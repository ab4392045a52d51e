-- Queue: fenced leases, priorities (uploads before backfills), pruning, resync of many players, backfills.

-- Every claim takes a fresh lease id. Completing, failing, extending or handing back an event needs the
-- lease id it was claimed with, so a worker that lost its lease (and whose events were taken up again,
-- even by the same daemon) can never overwrite the newer outcome.
CREATE SEQUENCE entitlement_sync.lease_ids;
ALTER TABLE entitlement_sync.key_uploads ADD COLUMN lease_id bigint;

-- 0: uploads and admin resyncs; 1: backfill. Lower first.
ALTER TABLE entitlement_sync.key_uploads ADD COLUMN priority smallint NOT NULL DEFAULT 0;
ALTER TABLE entitlement_sync.key_uploads DROP CONSTRAINT key_uploads_kind_check;
ALTER TABLE entitlement_sync.key_uploads ADD CONSTRAINT key_uploads_kind_check
  CHECK (kind IN ('upload', 'resync', 'backfill'));

-- The claim reads due events of one priority at a time, oldest due first: exactly this index's order.
DROP INDEX entitlement_sync.key_uploads_waiting;
CREATE INDEX key_uploads_waiting ON entitlement_sync.key_uploads (priority, run_after, event_id)
  WHERE state = 'pending';
-- Leases that ran out.
CREATE INDEX key_uploads_leases ON entitlement_sync.key_uploads (lease_until) WHERE state = 'running';
-- Pruning of finished events.
CREATE INDEX key_uploads_finished ON entitlement_sync.key_uploads (finished_at)
  WHERE state IN ('done', 'failed');

-- Resync many players at once. Players never seen are skipped with a NOTICE (a bulk request should not
-- fail for one stale id); returns how many were queued.
CREATE FUNCTION entitlement_sync.request_resync(p_user_ids text[], p_full boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
  unknown text[];
BEGIN
  SELECT array_agg(x ORDER BY x) INTO unknown
    FROM (SELECT DISTINCT x FROM unnest(p_user_ids) x) d
   WHERE x IS NULL OR NOT EXISTS (SELECT 1 FROM entitlement_sync.users u WHERE u.user_id = x);
  IF unknown IS NOT NULL THEN
    RAISE NOTICE 'not queued: % unknown user(s): %', cardinality(unknown),
      array_to_string(unknown[1:20], ', ', 'NULL') || CASE WHEN cardinality(unknown) > 20 THEN ', ...' ELSE '' END;
  END IF;
  INSERT INTO entitlement_sync.key_uploads (user_id, kind, full_sync)
  SELECT DISTINCT u.user_id, 'resync', coalesce(p_full, false)
    FROM unnest(p_user_ids) x JOIN entitlement_sync.users u ON u.user_id = x;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- A backfill resyncs every player who has a usable collections key, a few at a time ([sync]
-- backfill_rate players per second, all daemons together), only while no upload or resync waits.
CREATE TABLE entitlement_sync.backfills (
  backfill_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  full_sync     boolean NOT NULL DEFAULT false,
  requested_at  timestamptz NOT NULL DEFAULT now(),
  requested_by  text NOT NULL DEFAULT session_user,
  after_user_id text,                   -- every player up to this one (in user_id order) has been queued
  queued        bigint NOT NULL DEFAULT 0,
  fed_at        timestamptz,            -- when players were last queued: paces the backfill
  finished_at   timestamptz,            -- every player has been queued
  cancelled_at  timestamptz
);

CREATE FUNCTION entitlement_sync.request_backfill(p_full boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  id bigint;
BEGIN
  INSERT INTO entitlement_sync.backfills (full_sync, requested_by) VALUES (coalesce(p_full, false), session_user)
  RETURNING backfill_id INTO id;
  PERFORM pg_notify('entitlement_sync', '');
  RETURN id;
END $$;

-- Stops a backfill; its events not yet started are dropped. Returns false when it had already ended.
CREATE FUNCTION entitlement_sync.cancel_backfill(p_backfill_id bigint)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE entitlement_sync.backfills SET cancelled_at = now()
   WHERE backfill_id = p_backfill_id AND finished_at IS NULL AND cancelled_at IS NULL;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  -- Only one backfill feeds the queue at a time (the oldest), so pending backfill events are its own.
  DELETE FROM entitlement_sync.key_uploads WHERE kind = 'backfill' AND state = 'pending';
  RETURN true;
END $$;

-- Called by the daemon about once a second: queues the next players of the oldest open backfill, at most
-- p_rate per second since it was last fed and at most 2 * p_rate in the queue at once, and nothing while
-- an upload or resync is due. Returns how many were queued.
CREATE FUNCTION entitlement_sync.feed_backfill(p_rate integer)
RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b entitlement_sync.backfills;
  allowed integer;
  open_now bigint;
  n integer;
  last_user text;
BEGIN
  SELECT * INTO b FROM entitlement_sync.backfills
   WHERE finished_at IS NULL AND cancelled_at IS NULL
   ORDER BY backfill_id LIMIT 1 FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  IF EXISTS (SELECT 1 FROM entitlement_sync.key_uploads
              WHERE state = 'pending' AND priority = 0 AND run_after <= now()) THEN
    RETURN 0;
  END IF;
  SELECT count(*) INTO open_now FROM entitlement_sync.key_uploads
   WHERE state IN ('pending', 'running') AND kind = 'backfill';
  allowed := least(2 * p_rate - open_now,
                   floor(p_rate * extract(epoch FROM now() - coalesce(b.fed_at, now() - interval '1 second'))),
                   2 * p_rate)::integer;
  IF allowed < 1 THEN
    RETURN 0;
  END IF;
  WITH next AS (
    SELECT u.user_id
      FROM entitlement_sync.users u
      JOIN entitlement_sync.user_keys k USING (user_id)
     WHERE (b.after_user_id IS NULL OR u.user_id > b.after_user_id)
       AND k.collections_key IS NOT NULL AND k.collections_key_dead_at IS NULL
       AND k.collections_key_expires_at > now()
     ORDER BY u.user_id
     LIMIT allowed
  ), queued AS (
    INSERT INTO entitlement_sync.key_uploads (user_id, kind, full_sync, priority)
    SELECT user_id, 'backfill', b.full_sync, 1 FROM next
    RETURNING user_id
  )
  SELECT count(*), max(user_id) INTO n, last_user FROM queued;
  UPDATE entitlement_sync.backfills
     SET after_user_id = coalesce(last_user, after_user_id), queued = queued + n, fed_at = now(),
         finished_at = CASE WHEN n < allowed THEN now() END
   WHERE backfill_id = b.backfill_id;
  RETURN n;
END $$;

-- user_status shows an open backfill event as pending like any other.

REVOKE ALL ON entitlement_sync.backfills FROM PUBLIC;
REVOKE ALL ON FUNCTION entitlement_sync.request_resync(text[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION entitlement_sync.request_backfill(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION entitlement_sync.cancel_backfill(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION entitlement_sync.feed_backfill(integer) FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON entitlement_sync.backfills TO entitlement_syncd;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA entitlement_sync TO entitlement_syncd;
GRANT EXECUTE ON FUNCTION entitlement_sync.request_resync(text[], boolean), entitlement_sync.request_backfill(boolean),
  entitlement_sync.cancel_backfill(bigint), entitlement_sync.feed_backfill(integer) TO entitlement_syncd;
GRANT EXECUTE ON FUNCTION entitlement_sync.request_resync(text[], boolean), entitlement_sync.request_backfill(boolean),
  entitlement_sync.cancel_backfill(bigint) TO entitlement_admin;
GRANT SELECT ON entitlement_sync.backfills TO entitlement_admin;
GRANT SELECT (lease_id, priority) ON entitlement_sync.key_uploads TO entitlement_admin;
