-- The purchase side: free-product grants, consumable fulfilment reports, and subscriptions.
--
-- Grants and consume reports are requests the game backend inserts and the daemon carries out exactly
-- once: each row carries its idempotency key (order_id, tracking_id), fixed when the row is created and
-- sent to the Store on every try, so a retry after a lost answer can never grant or consume twice. An
-- insert queues an event for the player in key_uploads: the request is carried out inside that player's
-- sync (never two at once for a player, leased and fenced like any sync), before the collections query,
-- so the result shows in entitlements when the sync commits.

ALTER TABLE entitlement_sync.key_uploads DROP CONSTRAINT key_uploads_kind_check;
ALTER TABLE entitlement_sync.key_uploads ADD CONSTRAINT key_uploads_kind_check
  CHECK (kind IN ('upload', 'resync', 'backfill', 'grant', 'consume', 'subscriptions'));

CREATE TABLE entitlement_sync.grant_requests (
  request_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id         text NOT NULL CHECK (user_id <> '' AND length(user_id) <= 256),
  product_id      text NOT NULL CHECK (product_id <> ''),
  sku_id          text NOT NULL CHECK (sku_id <> ''),
  availability_id text NOT NULL CHECK (availability_id <> ''),
  dev_offer_id    text,
  language        text NOT NULL DEFAULT 'en-us',
  market          text NOT NULL DEFAULT 'us',
  quantity        integer NOT NULL DEFAULT 1 CHECK (quantity >= 1),
  order_id        uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,  -- the Store's idempotency key
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  run_after       timestamptz NOT NULL DEFAULT now(),
  order_state     text,            -- the Store's orderState, e.g. Purchased
  line_item_id    text,            -- orderLineItems[0].lineItemId
  error           text,            -- why it failed (or, while pending, why the last try did)
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  completed_at    timestamptz
);
CREATE INDEX grant_requests_pending ON entitlement_sync.grant_requests (user_id, request_id)
  WHERE state = 'pending';

CREATE TABLE entitlement_sync.consume_requests (
  request_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id         text NOT NULL CHECK (user_id <> '' AND length(user_id) <= 256),
  item_id         text,            -- the Store item to report; or
  product_id      text,            -- a consumable product: the daemon picks the player's item of it
  tracking_id     uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,  -- the Store's idempotency key
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  run_after       timestamptz NOT NULL DEFAULT now(),
  consumed_item_id text,           -- the item reported (item_id, or the one found for product_id)
  error           text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  completed_at    timestamptz,
  CHECK (item_id IS NOT NULL OR product_id IS NOT NULL)
);
CREATE INDEX consume_requests_pending ON entitlement_sync.consume_requests (user_id, request_id)
  WHERE state = 'pending';

-- The idempotency keys can never change once a row exists: a retry must send the same one.
CREATE FUNCTION entitlement_sync.keep_order_id() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.order_id IS DISTINCT FROM OLD.order_id THEN
    RAISE EXCEPTION 'order_id of grant request % cannot change: it is the Store''s idempotency key', OLD.request_id;
  END IF;
  RETURN NEW;
END $$;
CREATE FUNCTION entitlement_sync.keep_tracking_id() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.tracking_id IS DISTINCT FROM OLD.tracking_id THEN
    RAISE EXCEPTION 'tracking_id of consume request % cannot change: it is the Store''s idempotency key', OLD.request_id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER grant_requests_keep_order_id BEFORE UPDATE OF order_id ON entitlement_sync.grant_requests
  FOR EACH ROW EXECUTE FUNCTION entitlement_sync.keep_order_id();
CREATE TRIGGER consume_requests_keep_tracking_id BEFORE UPDATE OF tracking_id ON entitlement_sync.consume_requests
  FOR EACH ROW EXECUTE FUNCTION entitlement_sync.keep_tracking_id();

-- A new request queues an event for its player (which registers the player and wakes the daemon).
CREATE FUNCTION entitlement_sync.purchase_request_enqueued() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO entitlement_sync.key_uploads (user_id, kind)
  VALUES (NEW.user_id, CASE WHEN TG_TABLE_NAME = 'grant_requests' THEN 'grant' ELSE 'consume' END);
  RETURN NEW;
END $$;
CREATE TRIGGER grant_requests_enqueued AFTER INSERT ON entitlement_sync.grant_requests
  FOR EACH ROW EXECUTE FUNCTION entitlement_sync.purchase_request_enqueued();
CREATE TRIGGER consume_requests_enqueued AFTER INSERT ON entitlement_sync.consume_requests
  FOR EACH ROW EXECUTE FUNCTION entitlement_sync.purchase_request_enqueued();

-- Subscriptions (Store recurrences), read with the player's purchase key at each sync.
CREATE TABLE entitlement_sync.subscriptions (
  user_id                    text NOT NULL REFERENCES entitlement_sync.users ON DELETE CASCADE,
  recurrence_id              text NOT NULL,           -- id, e.g. mdr:0:...:...
  product_id                 text,
  sku_id                     text,
  state                      text,                    -- recurrenceState: Active, Inactive, Canceled, ...
  auto_renew                 boolean,
  is_trial                   boolean,
  market                     text,
  start_time                 timestamptz,
  expiration_time            timestamptz,
  expiration_time_with_grace timestamptz,
  cancellation_date          timestamptz,
  last_modified              timestamptz,
  beneficiary                text,
  first_seen_at              timestamptz NOT NULL DEFAULT now(),
  synced_at                  timestamptz NOT NULL DEFAULT now(),  -- last seen in the Store's answer
  gone_at                    timestamptz,             -- no longer in the Store's answer since then
  PRIMARY KEY (user_id, recurrence_id)
);

ALTER TABLE entitlement_sync.users
  ADD COLUMN subscriptions_synced_at timestamptz,   -- last complete read of the player's subscriptions
  ADD COLUMN subscriptions_error     text,          -- why the last read failed; NULL after a success
  ADD COLUMN subscriptions_failures  integer NOT NULL DEFAULT 0;  -- consecutive failed reads

-- The same columns as before, then the purchase side's.
CREATE OR REPLACE VIEW entitlement_sync.user_status AS
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
       u.items,
       u.subscriptions_synced_at,
       u.subscriptions_error,
       (SELECT count(*) FROM entitlement_sync.grant_requests g
         WHERE g.user_id = u.user_id AND g.state = 'pending') AS grants_pending,
       (SELECT count(*) FROM entitlement_sync.consume_requests c
         WHERE c.user_id = u.user_id AND c.state = 'pending') AS consumes_pending
  FROM entitlement_sync.users u
  LEFT JOIN entitlement_sync.user_keys k USING (user_id);

-- The game backend inserts requests and reads them back, and reads subscriptions; admins read all.
REVOKE ALL ON entitlement_sync.grant_requests, entitlement_sync.consume_requests, entitlement_sync.subscriptions
  FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON entitlement_sync.grant_requests, entitlement_sync.consume_requests,
  entitlement_sync.subscriptions TO entitlement_syncd;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA entitlement_sync TO entitlement_syncd;
GRANT INSERT (user_id, product_id, sku_id, availability_id, dev_offer_id, language, market, quantity, order_id)
  ON entitlement_sync.grant_requests TO entitlement_reader;
GRANT INSERT (user_id, item_id, product_id, tracking_id) ON entitlement_sync.consume_requests TO entitlement_reader;
GRANT SELECT ON entitlement_sync.grant_requests, entitlement_sync.consume_requests, entitlement_sync.subscriptions
  TO entitlement_reader, entitlement_admin;
