#include "sync/daemon.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <functional>
#include <memory>
#include <random>

#include "db/db_pool.hpp"
#include "db/migrations.hpp"
#include "db/notification_listener.hpp"
#include "ops/log.hpp"
#include "ops/log_failure.hpp"
#include "ops/metrics_server.hpp"
#include "ops/systemd_notify.hpp"
#include "store/key_sealing.hpp"
#include "sync/config_reload.hpp"
#include "sync/daemon_metrics.hpp"
#include "sync/dispatcher.hpp"
#include "sync/group_commit.hpp"
#include "sync/housekeeping.hpp"
#include "sync/job_recorder.hpp"
#include "sync/key_sweep.hpp"
#include "sync/upkeep.hpp"

namespace esd::sync {

namespace asio = boost::asio;

namespace {

std::string make_owner_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::random_device rd;
  char suffix[9];
  snprintf(suffix, sizeof suffix, "%08x", rd());
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + suffix;
}

// Fatal setup problems are found before any work starts: the secret, the key ring, the schema version.
bool check_setup(const config::config& cfg, std::string& secret, db::key_codec& codec) {
  try {
    secret = config::read_secret_file(cfg.entra.client_secret_file, "entra.client_secret_file");
    if (!cfg.security.key_encryption_key_file.empty()) {
      codec.replace_ring(store::keyring::load_file(cfg.security.key_encryption_key_file));
      log::info("keys: stored keys are encrypted " + log::field("key_id", codec.current_key_id()));
    }
  } catch (const std::exception& e) {
    log::error(e.what());
    return false;
  }
  try {
    auto c = db::open_connection(cfg.database.url, cfg.database.statement_timeout);
    const int have = db::current_schema_version(*c);
    const int want = db::latest_schema_version();
    if (have < want) {
      log::error("the database schema is at version " + std::to_string(have) + ", this daemon needs " +
                 std::to_string(want) + ": run `entitlement-syncd migrate` first");
      return false;
    }
  } catch (const std::exception& e) {
    log::error(std::string("cannot use the database: ") + e.what());
    return false;
  }
  return true;
}

net::client_options store_client_options(const config::config& cfg) {
  net::client_options copts;
  copts.connect_timeout = cfg.store.connect_timeout;
  copts.request_timeout = cfg.store.request_timeout;
  copts.max_connections_per_host = static_cast<std::size_t>(cfg.store.max_connections_per_host);
  copts.max_idle_per_host = copts.max_connections_per_host;
  copts.user_agent = std::string("entitlement-syncd/") + ESD_VERSION_STRING;
  return copts;
}

}  // namespace

int run_daemon(const config::config& cfg, const run_options& opts) {
  std::string secret;
  db::key_codec codec;
  if (!check_setup(cfg, secret, codec)) return 1;

  asio::io_context io(1);
  std::unique_ptr<asio::ssl::context> tls;
  try {
    tls = std::make_unique<asio::ssl::context>(net::make_client_tls_context(cfg.store.ca_file));
  } catch (const std::exception& e) {
    log::error(std::string("TLS setup failed: ") + e.what());
    return 1;
  }
  net::https_client client(io.get_executor(), *tls, store_client_options(cfg));
  ops::metrics registry;
  metric::describe_all(registry);
  store_gateway gateway(client, cfg, &registry);
  entra_token_cache tokens(gateway, std::move(secret));
  db::db_pool db(cfg.database.url, cfg.database.pool_size, cfg.database.statement_timeout, cfg.database.keepalive);

  // The parts read their limits from `running`, which SIGHUP updates with the keys that apply live.
  config::config running = cfg;
  const std::string owner = make_owner_name();
  group_commit commits(io, db, running, owner);
  job_recorder recorder(running, db, codec, registry, commits, owner);
  dispatcher d(running, opts.drain, io, db, gateway, tokens, codec, registry, recorder, owner);
  housekeeping chores(io.get_executor());
  upkeep chore_tasks(running, db, registry, chores);
  key_sweep sweep(running.keys, db, codec, gateway, tokens, registry, chores);
  db::notification_listener listener(cfg.database.url, cfg.database.keepalive,
                                    [&io, &d] { asio::post(io, [&d] { d.wake(); }); });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec || d.stopping()) return;
    const std::string why = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    ops::notify_stopping("stopping: " + why);
    log::info("stopping: " + why + " " + log::field("in_flight", static_cast<long long>(d.in_flight())));
    chores.stop();
    d.stop();
  });

  log::info("started " + log::field("owner", owner) + " " + log::field("concurrency", cfg.sync.concurrency) +
            (opts.drain ? " mode=drain" : " mode=run"));
  asio::signal_set hangup(io, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      reload(running, tokens, codec, [&d] { d.wake(); });
      on_hangup();
    });
  };
  on_hangup();

  std::unique_ptr<ops::metrics_server> metrics_server;
  if (!cfg.metrics.listen.empty()) {
    try {
      // Ready: the database answers, the listener is connected, and the last Entra token request worked.
      metrics_server = std::make_unique<ops::metrics_server>(
          io.get_executor(), cfg.metrics.listen, registry, [&chore_tasks, &listener, &tokens]() -> ops::health_check {
            if (!chore_tasks.db_reachable()) return {false, "database unreachable"};
            if (!listener.connected()) return {false, "database notifications not connected"};
            if (!tokens.last_failure().empty()) return {false, "Entra token: " + tokens.last_failure()};
            return {true, "ready"};
          });
      metrics_server->start();
      log::info("metrics: listening " + log::field("address", cfg.metrics.listen) + " " +
                log::field("port", static_cast<long long>(metrics_server->port())));
    } catch (const std::exception& e) {
      log::error(std::string("metrics: ") + e.what());
      return 1;
    }
  }
  if (!opts.drain) sweep.start();
  chore_tasks.start(opts.drain, metrics_server != nullptr);
  ops::notify_ready("running: " + log::field("concurrency", cfg.sync.concurrency));
  int status = 1;
  asio::co_spawn(io, d.dispatch(), [&](std::exception_ptr e, int s) {
    status = e ? 1 : s;
    ops::log_exception("fatal", e);
    chores.stop();  // a drain ends here without a signal: nothing periodic may keep the loop running
    signals.cancel();
    hangup.cancel();
    if (metrics_server) metrics_server->stop();
    client.close_idle();
    // Syncs that outlived shutdown_timeout were handed back: don't wait for them.
    if (d.abandoned()) io.stop();
  });
  io.run();
  log::info("stopped " + log::field("status", status));
  return status;
}

}  // namespace esd::sync
