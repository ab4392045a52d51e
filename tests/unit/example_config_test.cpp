// conf/entitlement-syncd.conf lists every key with its default: parsing it gives the built-in defaults.
#define BOOST_TEST_MODULE example_config
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "config/config.hpp"

BOOST_AUTO_TEST_CASE(the_example_config_is_valid_and_shows_the_defaults) {
  std::ifstream in(std::string(ESD_SOURCE_DIR) + "/conf/entitlement-syncd.conf");
  BOOST_TEST_REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  auto c = esd::config::parse_config(text.str(), "entitlement-syncd.conf");
  const esd::config::config d;
  BOOST_TEST(c.database.pool_size == d.database.pool_size);
  BOOST_TEST(c.database.statement_timeout.count() == d.database.statement_timeout.count());
  BOOST_TEST(c.entra.client_secret_file == d.entra.client_secret_file);
  BOOST_TEST(c.entra.audience == d.entra.audience);
  BOOST_TEST(c.entra.refresh_before.count() == d.entra.refresh_before.count());
  BOOST_TEST(c.effective_token_url() == "https://login.microsoftonline.com/" + c.entra.tenant_id + "/oauth2/v2.0/token");
  BOOST_TEST(c.store.collections_url == d.store.collections_url);
  BOOST_TEST(c.store.purchase_url == d.store.purchase_url);
  BOOST_TEST(c.store.ca_file == d.store.ca_file);
  BOOST_TEST(c.store.product_types == d.store.product_types);
  BOOST_TEST(c.store.max_page_size == d.store.max_page_size);
  BOOST_TEST(c.store.connect_timeout.count() == d.store.connect_timeout.count());
  BOOST_TEST(c.store.request_timeout.count() == d.store.request_timeout.count());
  BOOST_TEST(c.store.max_connections_per_host == d.store.max_connections_per_host);
  BOOST_TEST(c.store.max_pages == d.store.max_pages);
  BOOST_TEST(c.store.max_collection_bytes == d.store.max_collection_bytes);
  BOOST_TEST(c.store.subscriptions == d.store.subscriptions);
  BOOST_TEST(c.sync.concurrency == d.sync.concurrency);
  BOOST_TEST(c.sync.poll_interval.count() == d.sync.poll_interval.count());
  BOOST_TEST(c.sync.drain_grace.count() == d.sync.drain_grace.count());
  BOOST_TEST(c.sync.watermark_overlap.count() == d.sync.watermark_overlap.count());
  BOOST_TEST(c.sync.max_attempts == d.sync.max_attempts);
  BOOST_TEST(c.sync.retry_base.count() == d.sync.retry_base.count());
  BOOST_TEST(c.sync.retry_cap.count() == d.sync.retry_cap.count());
  BOOST_TEST(c.sync.max_inline_wait.count() == d.sync.max_inline_wait.count());
  BOOST_TEST(c.sync.shutdown_timeout.count() == d.sync.shutdown_timeout.count());
  BOOST_TEST(c.sync.lease.count() == d.sync.lease.count());
  BOOST_TEST(c.sync.backfill_rate == d.sync.backfill_rate);
  BOOST_TEST(c.sync.keep_done.count() == d.sync.keep_done.count());
  BOOST_TEST(c.sync.keep_failed.count() == d.sync.keep_failed.count());
  BOOST_TEST(c.sync.prune_interval.count() == d.sync.prune_interval.count());
  BOOST_TEST(c.sync.prune_batch == d.sync.prune_batch);
  BOOST_TEST(c.store.player_requests == d.store.player_requests);
  BOOST_TEST(c.store.player_window.count() == d.store.player_window.count());
  BOOST_TEST(c.store.max_requests_per_second == d.store.max_requests_per_second);
  BOOST_TEST(c.database.keepalive.count() == d.database.keepalive.count());
  BOOST_TEST(c.keys.renew_after.count() == d.keys.renew_after.count());
  BOOST_TEST(c.keys.renew_before_expiry.count() == d.keys.renew_before_expiry.count());
  BOOST_TEST(c.keys.keep_alive_for.count() == d.keys.keep_alive_for.count());
  BOOST_TEST(c.keys.sweep_interval.count() == d.keys.sweep_interval.count());
  BOOST_TEST(c.keys.sweep_batch == d.keys.sweep_batch);
  BOOST_TEST(c.keys.refusal_burst_players == d.keys.refusal_burst_players);
  BOOST_TEST(c.keys.refusal_burst_window.count() == d.keys.refusal_burst_window.count());
  BOOST_TEST(c.security.key_encryption_key_file == d.security.key_encryption_key_file);
  BOOST_TEST(c.metrics.listen == d.metrics.listen);
  BOOST_TEST(c.log.level == d.log.level);
}
