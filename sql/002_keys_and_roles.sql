-- Keys: dead keys, renewals, and when each player was last seen; least-privilege roles.

ALTER TABLE entitlement_sync.user_keys
  ADD COLUMN collections_key_dead_at     timestamptz,  -- the Store refused it: never sent again
  ADD COLUMN collections_key_dead_reason text,
  ADD COLUMN collections_key_renewed_at  timestamptz,
  ADD COLUMN purchase_key_dead_at        timestamptz,
  ADD COLUMN purchase_key_dead_reason    text,
  ADD COLUMN purchase_key_renewed_at     timestamptz;

-- The renewal sweep keeps keys alive only for players seen (an upload) within [keys] keep_alive_for.
ALTER TABLE entitlement_sync.users ADD COLUMN last_upload_at timestamptz;
UPDATE entitlement_sync.users u SET last_upload_at =
  (SELECT max(created_at) FROM entitlement_sync.key_uploads q WHERE q.user_id = u.user_id AND q.kind = 'upload');

-- Runs as its owner, so a game backend that may only INSERT into key_uploads can still register players.
CREATE OR REPLACE FUNCTION entitlement_sync.key_uploads_enqueued() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO entitlement_sync.users AS u (user_id, last_upload_at)
  VALUES (NEW.user_id, CASE WHEN NEW.kind = 'upload' THEN now() END)
  ON CONFLICT (user_id) DO UPDATE SET last_upload_at = coalesce(EXCLUDED.last_upload_at, u.last_upload_at);
  PERFORM pg_notify('entitlement_sync', '');
  RETURN NEW;
END $$;

-- Admins may queue resyncs without any right on the queue table itself.
ALTER FUNCTION entitlement_sync.request_resync(text, boolean) SECURITY DEFINER;
ALTER FUNCTION entitlement_sync.request_resync(text, boolean) SET search_path = pg_catalog, pg_temp;

CREATE INDEX user_keys_expiry ON entitlement_sync.user_keys (collections_key_expires_at);

-- Roles (NOLOGIN groups: grant them to the login roles you create).
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['entitlement_syncd', 'entitlement_reader', 'entitlement_admin'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END $$;

REVOKE ALL ON ALL TABLES IN SCHEMA entitlement_sync FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA entitlement_sync FROM PUBLIC;
GRANT USAGE ON SCHEMA entitlement_sync TO entitlement_syncd, entitlement_reader, entitlement_admin;

-- The daemon: everything in its schema.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA entitlement_sync TO entitlement_syncd;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA entitlement_sync TO entitlement_syncd;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA entitlement_sync TO entitlement_syncd;

-- The game backend: hand over keys, read entitlements. It can never read a stored key back.
GRANT INSERT (user_id, collections_key, purchase_key) ON entitlement_sync.key_uploads TO entitlement_reader;
GRANT SELECT ON entitlement_sync.entitlements TO entitlement_reader;

-- Admins and support: resync and status, and the queue without its key columns.
GRANT EXECUTE ON FUNCTION entitlement_sync.request_resync(text, boolean) TO entitlement_admin;
GRANT SELECT ON entitlement_sync.user_status, entitlement_sync.entitlements TO entitlement_admin;
GRANT SELECT (event_id, user_id, kind, full_sync, state, attempts, run_after, created_at, claimed_at, claimed_by,
              lease_until, finished_at, coalesced_into, last_error)
  ON entitlement_sync.key_uploads TO entitlement_admin;
