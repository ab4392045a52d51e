-- EXECUTE on every function of the schema for the roles that need it, and for nobody else.
--
-- PostgreSQL lets PUBLIC execute a function from the moment it is created, and 002 revoked that only from
-- the functions that existed then: the trigger functions of 004 stayed executable by every role of the
-- cluster. A migration that adds a function revokes PUBLIC's right itself; this one catches up on all.
-- Trigger functions need no grant at all: a trigger runs its function whoever fired it.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA entitlement_sync FROM PUBLIC;

-- What 002 and 003 granted, restated so this file alone says who may call what.
GRANT EXECUTE ON FUNCTION entitlement_sync.request_resync(text, boolean),
  entitlement_sync.request_resync(text[], boolean), entitlement_sync.request_backfill(boolean),
  entitlement_sync.cancel_backfill(bigint) TO entitlement_admin;
GRANT EXECUTE ON FUNCTION entitlement_sync.request_resync(text, boolean),
  entitlement_sync.request_resync(text[], boolean), entitlement_sync.request_backfill(boolean),
  entitlement_sync.cancel_backfill(bigint), entitlement_sync.feed_backfill(integer) TO entitlement_syncd;
