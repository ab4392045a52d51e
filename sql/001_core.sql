-- entitlement-syncd core schema: the upload queue, per-user sync state, stored keys, entitlements,
-- request_resync() and the user_status view. Applied once by `entitlement-syncd migrate`.

CREATE SCHEMA IF NOT EXISTS entitlement_sync;

-- Every player the daemon has heard of, with the state of their last sync.
CREATE TABLE entitlement_sync.users (
  user_id          text PRIMARY KEY CHECK (user_id <> '' AND length(user_id) <= 256),
  created_at       timestamptz NOT NULL DEFAULT now(),
  watermark        timestamptz,            -- highest modifiedDate written; NULL before the first sync
  last_synced_at   timestamptz,            -- last successful sync
  last_attempt_at  timestamptz,
  last_error       text,                   -- NULL after a success
  last_error_at    timestamptz,
  items            integer NOT NULL DEFAULT 0
);

-- The keys currently held for each player, moved here from key_uploads when an upload is claimed.
CREATE TABLE entitlement_sync.user_keys (
  user_id                    text PRIMARY KEY REFERENCES entitlement_sync.users ON DELETE CASCADE,
  collections_key            text,
  collections_key_issued_at  timestamptz,
  collections_key_expires_at timestamptz,
  purchase_key               text,
  purchase_key_issued_at     timestamptz,
  purchase_key_expires_at    timestamptz,
  updated_at                 timestamptz NOT NULL DEFAULT now()
);

-- The queue. The game backend inserts (user_id, collections_key, purchase_key); every other column
-- belongs to the daemon. request_resync() inserts rows without keys.
CREATE TABLE entitlement_sync.key_uploads (
  event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id         text NOT NULL CHECK (user_id <> '' AND length(user_id) <= 256),
  collections_key text,
  purchase_key    text,
  kind            text NOT NULL DEFAULT 'upload' CHECK (kind IN ('upload', 'resync')),
  full_sync       boolean NOT NULL DEFAULT false,
  state           text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'done', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  run_after       timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  claimed_at      timestamptz,
  claimed_by      text,
  lease_until     timestamptz,             -- a running event whose lease ran out is taken up again
  finished_at     timestamptz,
  coalesced_into  bigint,                  -- set when this upload was folded into a later one's sync
  last_error      text
);

-- Claims scan only waiting rows, oldest due first.
CREATE INDEX key_uploads_waiting ON entitlement_sync.key_uploads (run_after, event_id)
  WHERE state = 'pending';
-- "Is this player already being synced?" and user_status.pending.
CREATE INDEX key_uploads_open_by_user ON entitlement_sync.key_uploads (user_id)
  WHERE state IN ('pending', 'running');

CREATE TABLE entitlement_sync.entitlements (
  user_id                  text NOT NULL REFERENCES entitlement_sync.users ON DELETE CASCADE,
  item_id                  text NOT NULL,
  product_id               text NOT NULL,
  sku_id                   text NOT NULL DEFAULT '',
  product_type             text NOT NULL DEFAULT '',
  status                   text NOT NULL,
  quantity                 integer,
  acquired_date            timestamptz,
  start_date               timestamptz,
  end_date                 timestamptz,
  modified_date            timestamptz NOT NULL,
  transaction_id           text,
  order_id                 text,
  order_line_item_id       text,
  dev_offer_id             text,
  in_app_offer_token       text,
  ownership_type           text,
  sku_type                 text,
  acquisition_type         text,
  purchased_country        text,
  purchaser_identity_type  text,
  purchaser_identity_value text,
  recurrence_id            text,
  local_ticket_reference   text,
  is_trial                 boolean,
  is_in_trial_period       boolean,
  trial_time_remaining     interval,
  tags                     text[] NOT NULL DEFAULT '{}',
  fulfillment_data         text[] NOT NULL DEFAULT '{}',
  satisfied_by_product_ids text[] NOT NULL DEFAULT '{}',
  first_seen_at            timestamptz NOT NULL DEFAULT now(),
  synced_at                timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, item_id)
);
CREATE INDEX entitlements_product ON entitlement_sync.entitlements (product_id);

-- Wake the daemon on every queue insert; make sure the player is known.
CREATE FUNCTION entitlement_sync.key_uploads_enqueued() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO entitlement_sync.users (user_id) VALUES (NEW.user_id) ON CONFLICT DO NOTHING;
  PERFORM pg_notify('entitlement_sync', '');
  RETURN NEW;
END $$;

CREATE TRIGGER key_uploads_enqueued AFTER INSERT ON entitlement_sync.key_uploads
  FOR EACH ROW EXECUTE FUNCTION entitlement_sync.key_uploads_enqueued();

-- Queue a resync of one player with the keys already stored. full = true ignores the watermark.
CREATE FUNCTION entitlement_sync.request_resync(p_user_id text, p_full boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  id bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM entitlement_sync.users WHERE user_id = p_user_id) THEN
    RAISE EXCEPTION 'unknown user %: no key has been uploaded for this player', p_user_id
      USING ERRCODE = 'no_data_found';
  END IF;
  INSERT INTO entitlement_sync.key_uploads (user_id, kind, full_sync)
  VALUES (p_user_id, 'resync', coalesce(p_full, false))
  RETURNING event_id INTO id;
  RETURN id;
END $$;

CREATE VIEW entitlement_sync.user_status AS
SELECT u.user_id,
       u.last_synced_at,
       u.last_error,
       k.collections_key_expires_at,
       k.purchase_key_expires_at,
       (SELECT count(*) FROM entitlement_sync.key_uploads q
         WHERE q.user_id = u.user_id AND q.state IN ('pending', 'running')) AS pending,
       u.last_attempt_at,
       u.last_error_at,
       u.watermark,
       u.items
  FROM entitlement_sync.users u
  LEFT JOIN entitlement_sync.user_keys k USING (user_id);
